// CUDA backward (issue 6) against the CPU backend through the TS API: the same q, k, v, dO, O and LSE go to
// flashAttnBackward on both devices; the GPU gradients must match the CPU ones within the low-precision
// yardstick of the float64 oracle (3x, FA's rule). Skipped without a CUDA device.
import { describe, expect, test } from "bun:test";
import { flashAttn, flashAttnBackward, hasCuda, lastKernel, Tensor } from "../ts/index.ts";
import type { AttnDType } from "../ts/dtype.ts";
import * as ref from "./ref/index.ts";

interface Cfg {
  dtype: AttnDType; b: number; h: number; hk: number; d: number; sq: number; sk: number;
  dv?: number; // V / O head dim (default d); MLA's 192 / 128 runs on the narrow-V kernel (cuda.sm80.bwd.dv128)
  causal?: boolean; window?: [number, number]; softcap?: number; dropoutP?: number; deterministic?: boolean;
}

function maxAbsDiff(a: Float32Array, b: Float32Array) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function check(c: Cfg, seed: number) {
  const dv = c.dv ?? c.d;
  const rng = new ref.Rng(seed);
  const opts = { causal: c.causal, windowLeft: c.window?.[0], windowRight: c.window?.[1], softcap: c.softcap, dropoutP: c.dropoutP, seed: 5n, offset: 9n };
  const pr = ref.randomProblem(rng, {
    h: c.h, hk: c.hk, d: c.d, dv, dtype: c.dtype, seqlensQ: Array(c.b).fill(c.sq), seqlensK: Array(c.b).fill(c.sk), ...opts,
  });
  const dO = ref.randomDout(rng, pr, c.dtype);
  const shapes = { q: [c.b, c.sq, c.h, c.d], k: [c.b, c.sk, c.hk, c.d], v: [c.b, c.sk, c.hk, dv], o: [c.b, c.sq, c.h, dv] };
  const o = { causal: c.causal, windowSize: c.window, softcap: c.softcap, dropoutP: c.dropoutP, seed: 5n, offset: 9n };
  // CPU: forward, then backward; the GPU gets the CPU's O and LSE so both backwards see the same inputs.
  using q = Tensor.from(ref.flat(pr.q), shapes.q, c.dtype);
  using k = Tensor.from(ref.flat(pr.k), shapes.k, c.dtype);
  using v = Tensor.from(ref.flat(pr.v), shapes.v, c.dtype);
  using dout = Tensor.from(ref.flat(dO), shapes.o, c.dtype);
  const fwd = flashAttn(q, k, v, { ...o, returnLse: true });
  const gc = flashAttnBackward(dout, q, k, v, fwd.out, fwd.lse!, o);
  // Exact copies (every value is representable in its dtype).
  const gpu = (t: Tensor) => Tensor.from(t.toFloat32Array(), t.shape, t.dtype, 0);
  using qg = gpu(q), kg = gpu(k), vg = gpu(v), dg = gpu(dout);
  using og = gpu(fwd.out), lg = gpu(fwd.lse!);
  const gg = flashAttnBackward(dg, qg, kg, vg, og, lg, { ...o, deterministic: c.deterministic });
  if (c.dv !== undefined) expect(lastKernel()).toBe("cuda.sm80.bwd.dv128");
  const lp = ref.attentionBackwardLowPrecision(pr, dO, c.dtype);
  const want = ref.attentionBackward(pr, dO);
  for (const n of ["dq", "dk", "dv"] as const) {
    const cpu = gc[n].toFloat32Array();
    const g32 = gg[n].toFloat32Array();
    const yard = maxAbsDiff(Float32Array.from(ref.flat(lp[n])), Float32Array.from(ref.flat(want[n])));
    const err = maxAbsDiff(g32, cpu);
    expect(Number.isFinite(err)).toBe(true);
    expect(err).toBeLessThanOrEqual(3 * yard + 1e-3);
  }
  for (const t of [fwd.out, fwd.lse!, gc.dq, gc.dk, gc.dv, gg.dq, gg.dk, gg.dv]) t.dispose();
}

describe.skipIf(!hasCuda())("gpu backward vs cpu backward", () => {
  const cases: Cfg[] = [
    { dtype: "bfloat16", b: 2, h: 2, hk: 2, d: 64, sq: 37, sk: 70 },
    { dtype: "float16", b: 1, h: 4, hk: 2, d: 128, sq: 65, sk: 65, causal: true },
    { dtype: "bfloat16", b: 1, h: 3, hk: 1, d: 59, sq: 33, sk: 90, window: [10, 4], dropoutP: 0.17 },
    { dtype: "float16", b: 1, h: 2, hk: 2, d: 32, sq: 17, sk: 17, softcap: 5, deterministic: true },
    { dtype: "bfloat16", b: 1, h: 4, hk: 2, d: 192, dv: 128, sq: 41, sk: 75, causal: true },
  ];
  cases.forEach((c, i) => test(`${c.dtype} d=${c.d}${c.dv ? ` dv=${c.dv}` : ""} ${c.sq}x${c.sk} h=${c.h}/${c.hk}${c.causal ? " causal" : ""}${c.window ? " local" : ""}${c.dropoutP ? " dropout" : ""}${c.softcap ? " softcap" : ""}${c.deterministic ? " det" : ""}`, () => check(c, 100 + i)));
});
