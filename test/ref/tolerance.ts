// FlashAttention's tolerance rule (fa-api.md §5.1): the library may be at most `mult` times as wrong as a
// plain same-precision implementation, both measured against the high-precision reference:
//     max|out - ref| <= mult * max|lowp - ref| + atol
// Equal infinities count as equal (fully masked rows have LSE = +inf everywhere); NaN in `out` or `ref`, or
// an infinity on one side only, always fails.

export interface CloseReport {
  name: string;
  ok: boolean;
  n: number;
  maxErr: number;     // max|out - ref| (Infinity for a one-sided inf or NaN)
  where: number;      // flat index of maxErr (-1 when n = 0)
  outAt: number;      // out[where]
  refAt: number;      // ref[where]
  lowpErr: number;    // max|lowp - ref|
  bound: number;      // mult * lowpErr + atol
  message: string;
}

/** |a - b| with the infinity and NaN rules above. */
function absDiff(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  if (a === b) return 0; // covers equal infinities
  return Math.abs(a - b); // a one-sided infinity gives Infinity
}

/** Applies the rule; never throws. `index` formats a flat index for the message (e.g. "b=0 row=3 h=1 c=5"). */
export function checkClose(
  name: string, out: ArrayLike<number>, ref: ArrayLike<number>, refLowPrec: ArrayLike<number>,
  mult = 2, atol = 1e-5, index?: (i: number) => string,
): CloseReport {
  const n = ref.length;
  const fail = (message: string): CloseReport => ({
    name, ok: false, n, maxErr: NaN, where: -1, outAt: NaN, refAt: NaN, lowpErr: NaN, bound: NaN, message: `${name}: ${message}`,
  });
  if (out.length !== n || refLowPrec.length !== n) {
    return fail(`length mismatch: out ${out.length}, ref ${n}, lowp ${refLowPrec.length}`);
  }
  let maxErr = 0, where = n > 0 ? 0 : -1, lowpErr = 0, nan = -1;
  for (let i = 0; i < n; i++) {
    const e = absDiff(out[i]!, ref[i]!);
    if (Number.isNaN(e)) {
      if (nan < 0) nan = i;
      continue;
    }
    if (e > maxErr) { maxErr = e; where = i; }
    const el = absDiff(refLowPrec[i]!, ref[i]!);
    if (el > lowpErr) lowpErr = el; // NaN in lowp is skipped: it must not loosen the bound
  }
  const bound = mult * lowpErr + atol;
  const at = (i: number) => (index ? index(i) : `[${i}]`);
  if (nan >= 0) {
    return { ...fail(`NaN at ${at(nan)}: out=${out[nan]} ref=${ref[nan]}`), maxErr: NaN, where: nan, outAt: out[nan]!, refAt: ref[nan]!, lowpErr, bound };
  }
  const ok = maxErr <= bound;
  const message =
    `${name}: ${ok ? "ok" : "FAIL"} max|out-ref|=${maxErr.toExponential(3)} at ${n > 0 ? at(where) : "-"}` +
    (n > 0 ? ` (out=${out[where]}, ref=${ref[where]})` : "") +
    ` bound=${mult}*${lowpErr.toExponential(3)}+${atol}=${bound.toExponential(3)}`;
  return { name, ok, n, maxErr, where, outAt: n > 0 ? out[where]! : NaN, refAt: n > 0 ? ref[where]! : NaN, lowpErr, bound, message };
}

/** checkClose that throws an Error with the report's message on failure; returns the report otherwise. */
export function assertClose(
  name: string, out: ArrayLike<number>, ref: ArrayLike<number>, refLowPrec: ArrayLike<number>,
  mult = 2, atol = 1e-5, index?: (i: number) => string,
): CloseReport {
  const rep = checkClose(name, out, ref, refLowPrec, mult, atol, index);
  if (!rep.ok) throw new Error(rep.message);
  return rep;
}

/** Concatenates per-sequence arrays (e.g. AttnResult.o) into one flat array for checkClose. */
export function flat(parts: ArrayLike<number>[]): Float64Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float64Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
