import { describe, expect, test } from "bun:test";
import { attention, attentionLowPrecision, attentionProbs } from "./attention.ts";
import { randomProblem } from "./gen.ts";
import { dropoutKeep } from "./philox.ts";
import { Rng } from "./rng.ts";
import { flat } from "./tolerance.ts";

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** Textbook attention for one (sequence 0, head hi): explicit score matrix, explicit mask predicate. */
function naive(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, sq: number, sk: number, h: number, hk: number,
  d: number, hi: number, scale: number, allow: (i: number, j: number) => boolean, bias = (_i: number, _j: number) => 0,
) {
  const kh = Math.floor(hi / (h / hk));
  const o = new Float64Array(sq * d), lse = new Float64Array(sq);
  for (let i = 0; i < sq; i++) {
    const sc: number[] = [];
    for (let j = 0; j < sk; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[(i * h + hi) * d + c]! * k[(j * hk + kh) * d + c]!;
      sc.push(allow(i, j) ? scale * dot + bias(i, j) : -Infinity);
    }
    const z = sc.reduce((acc, x) => acc + Math.exp(x), 0); // inputs are small: no max subtraction needed
    lse[i] = z === 0 ? Infinity : Math.log(z);
    for (let j = 0; j < sk; j++) {
      const p = z === 0 ? 0 : Math.exp(sc[j]!) / z;
      for (let c = 0; c < d; c++) o[i * d + c] = o[i * d + c]! + p * v[(j * hk + kh) * d + c]!;
    }
  }
  return { o, lse };
}

/** Head hi of a [sq, h, d] array. */
const head = (x: Float64Array, sq: number, h: number, d: number, hi: number) => {
  const out = new Float64Array(sq * d);
  for (let i = 0; i < sq; i++) for (let c = 0; c < d; c++) out[i * d + c] = x[(i * h + hi) * d + c]!;
  return out;
};

describe("reference forward", () => {
  test("softmax rows sum to 1 (masks, alibi, softcap, varlen, GQA)", () => {
    const pr = randomProblem(new Rng(1), {
      h: 4, hk: 2, d: 8, seqlensQ: [5, 9, 1], seqlensK: [7, 9, 13], causal: true, windowLeft: 3,
      alibiSlopes: [0.1, 0.2, 0.3, 0.4], softcap: 5,
    });
    for (let bi = 0; bi < 3; bi++)
      for (let hi = 0; hi < 4; hi++) {
        const P = attentionProbs(pr, bi, hi);
        const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
        for (let i = 0; i < sq; i++) {
          let s = 0;
          for (let j = 0; j < sk; j++) s += P[i * sk + j]!;
          expect(Math.abs(s - 1)).toBeLessThan(1e-12);
        }
      }
  });

  for (const [sq, sk] of [[6, 6], [3, 8], [8, 3]] as const) {
    test(`causal equals a naive masked computation (sq=${sq}, sk=${sk}, GQA)`, () => {
      const pr = randomProblem(new Rng(2), { h: 4, hk: 2, d: 5, seqlensQ: [sq], seqlensK: [sk], causal: true, scale: 0.3 });
      const res = attention(pr);
      for (let hi = 0; hi < 4; hi++) {
        const ref = naive(pr.q[0]!, pr.k[0]!, pr.v[0]!, sq, sk, 4, 2, 5, hi, Math.fround(0.3), (i, j) => j <= i + sk - sq);
        expect(maxAbsDiff(head(res.o[0]!, sq, 4, 5, hi), ref.o)).toBeLessThan(1e-12);
        const l = res.lse[0]!.subarray(hi * sq, (hi + 1) * sq);
        for (let i = 0; i < sq; i++) {
          if (ref.lse[i] === Infinity) expect(l[i]).toBe(Infinity);
          else expect(Math.abs(l[i]! - ref.lse[i]!)).toBeLessThan(1e-12);
        }
      }
    });
  }

  test("sliding window + ALiBi ([b, h] slopes) equal the naive formula", () => {
    const sq = 5, sk = 9, h = 2, d = 4;
    const slopes = [0.25, 0.5, 0.75, 1.0]; // [b=2, h=2]
    const pr = randomProblem(new Rng(3), { h, d, seqlensQ: [sq, sq], seqlensK: [sk, sk], windowLeft: 2, windowRight: 1, alibiSlopes: slopes });
    const res = attention(pr);
    for (let bi = 0; bi < 2; bi++)
      for (let hi = 0; hi < h; hi++) {
        const a = (i: number) => i + sk - sq;
        const ref = naive(pr.q[bi]!, pr.k[bi]!, pr.v[bi]!, sq, sk, h, h, d, hi, Math.fround(1 / 2),
          (i, j) => j >= a(i) - 2 && j <= a(i) + 1, (i, j) => -Math.fround(slopes[bi * h + hi]!) * Math.abs(a(i) - j));
        expect(maxAbsDiff(head(res.o[bi]!, sq, h, d, hi), ref.o)).toBeLessThan(1e-12);
      }
  });

  test("softcap equals softcap*tanh(score/softcap)", () => {
    const pr = randomProblem(new Rng(4), { h: 1, d: 4, seqlensQ: [3], seqlensK: [4], softcap: 2, std: 3 });
    const P = attentionProbs(pr, 0, 0);
    const e: number[] = [];
    for (let j = 0; j < 4; j++) {
      let dot = 0;
      for (let c = 0; c < 4; c++) dot += pr.q[0]![c]! * pr.k[0]![j * 4 + c]!;
      e.push(Math.exp(2 * Math.tanh((dot * 0.5) / 2)));
    }
    const z = e.reduce((x, y) => x + y);
    for (let j = 0; j < 4; j++) expect(Math.abs(P[j]! - e[j]! / z)).toBeLessThan(1e-12);
  });

  test("a fully masked row gives O = 0 and LSE = +inf", () => {
    // sq > sk with causal: rows i < sq - sk see nothing.
    const pr = randomProblem(new Rng(5), { h: 2, d: 3, seqlensQ: [5, 2], seqlensK: [2, 0], causal: true });
    const res = attention(pr);
    for (let hi = 0; hi < 2; hi++) {
      for (let i = 0; i < 5; i++) {
        const masked = i < 3;
        expect(res.lse[0]![hi * 5 + i]! === Infinity).toBe(masked);
        if (masked) for (let c = 0; c < 3; c++) expect(res.o[0]![(i * 2 + hi) * 3 + c]).toBe(0);
      }
      // sk = 0: every row masked.
      for (let i = 0; i < 2; i++) expect(res.lse[1]![hi * 2 + i]).toBe(Infinity);
    }
    expect(res.o[1]!.length).toBe(2 * 2 * 3);
    expect(res.o[1]!.every((x) => x === 0)).toBe(true);
  });

  test("GQA equals MHA with K/V heads repeated", () => {
    const rng = new Rng(6);
    const g = randomProblem(rng, { h: 6, hk: 2, d: 4, seqlensQ: [4], seqlensK: [6], causal: true });
    const rep = (x: ArrayLike<number>, s: number) => {
      const out = new Float64Array(s * 6 * 4);
      for (let t = 0; t < s; t++) for (let hi = 0; hi < 6; hi++) for (let c = 0; c < 4; c++)
        out[(t * 6 + hi) * 4 + c] = x[(t * 2 + Math.floor(hi / 3)) * 4 + c]!;
      return out;
    };
    const m = { ...g, hk: 6, k: [rep(g.k[0]!, 6)], v: [rep(g.v[0]!, 6)] };
    expect(maxAbsDiff(attention(g).o[0]!, attention(m).o[0]!)).toBe(0);
  });

  test("dropout: fraction within 0.01 of p; O = (P * keep / (1-p)) V; LSE unchanged", () => {
    const p = 0.17, seed = 1234n, offset = 77n;
    const base = randomProblem(new Rng(7), { h: 2, d: 4, seqlensQ: [300, 200], seqlensK: [257, 300] });
    const pr = { ...base, dropoutP: p, seed, offset };
    let dropped = 0, total = 0;
    for (let bi = 0; bi < 2; bi++)
      for (let hi = 0; hi < 2; hi++) {
        const P = attentionProbs(pr, bi, hi), Pd = attentionProbs(pr, bi, hi, true);
        const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
        for (let i = 0; i < sq; i += 7)
          for (let j = 0; j < sk; j++) {
            const keep = dropoutKeep(seed, offset, 2, bi, hi, i, j, p);
            expect(Pd[i * sk + j]).toBe(keep ? P[i * sk + j]! * (1 / (1 - Math.fround(p))) : 0);
          }
        for (let i = 0; i < sq * sk; i++) { dropped += Pd[i] === 0 ? 1 : 0; total++; }
      }
    expect(Math.abs(dropped / total - p)).toBeLessThan(0.01);
    const a = attention(base), b = attention(pr);
    expect(maxAbsDiff(flat(a.lse), flat(b.lse))).toBe(0);
    expect(maxAbsDiff(flat(a.o), flat(b.o))).toBeGreaterThan(1e-3);
  });

  test("low-precision variant: fp32 is near f64, fp16/bf16 errors are of dtype size", () => {
    const pr = randomProblem(new Rng(8), { h: 2, hk: 1, d: 16, seqlensQ: [33], seqlensK: [47], causal: true, dtype: "float16" });
    const ref = flat(attention(pr).o);
    const e32 = maxAbsDiff(ref, flat(attentionLowPrecision(pr, "float32").o));
    const e16 = maxAbsDiff(ref, flat(attentionLowPrecision(pr, "float16").o));
    const ebf = maxAbsDiff(ref, flat(attentionLowPrecision(pr, "bfloat16").o));
    expect(e32).toBeLessThan(1e-5);
    expect(e16).toBeGreaterThan(1e-5);
    expect(e16).toBeLessThan(1e-2);
    expect(ebf).toBeGreaterThan(e16); // bf16 inputs rounding too, 8x coarser mantissa
    expect(ebf).toBeLessThan(6e-2);
  });
});
