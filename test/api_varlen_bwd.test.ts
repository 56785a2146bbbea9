// The varlen backward binding: packed sequences of different lengths must give, row for row, the
// gradients of separate dense calls on each sequence (the CPU backend is deterministic, so bit-equal).
import { expect, test } from "bun:test";
import { Tensor, flashAttn, flashAttnBackward, flashAttnVarlen, flashAttnVarlenBackward } from "../ts/index.ts";
import { Rng, randn } from "./ref/index.ts";

test("flashAttnVarlenBackward equals per-sequence flashAttnBackward (CPU, bitwise)", () => {
  const lens = [5, 17, 1], lensK = [9, 3, 12];
  const h = 4, hk = 2, d = 24;
  const rng = new Rng(7);
  const tq = lens.reduce((a, b) => a + b), tk = lensK.reduce((a, b) => a + b);
  const q = randn(tq * h * d, rng), k = randn(tk * hk * d, rng), v = randn(tk * hk * d, rng), dO = randn(tq * h * d, rng);
  const T = (x: Float64Array, n: number, heads: number) => Tensor.from(x, [n, heads, d], "float32");
  const cu = (l: number[]) => Tensor.from([0, ...l.map((_, i) => l.slice(0, i + 1).reduce((a, b) => a + b))], [l.length + 1], "int32");
  const opts = { cuSeqlensQ: cu(lens), cuSeqlensK: cu(lensK), maxSeqlenQ: 17, maxSeqlenK: 12, causal: true };
  const f = flashAttnVarlen(T(q, tq, h), T(k, tk, hk), T(v, tk, hk), { ...opts, returnLse: true });
  const g = flashAttnVarlenBackward(T(dO, tq, h), T(q, tq, h), T(k, tk, hk), T(v, tk, hk), f.out, f.lse!, opts);
  const [dq, dk] = [g.dq.toFloat32Array(), g.dk.toFloat32Array()];
  let q0 = 0, k0 = 0;
  for (let i = 0; i < lens.length; i++) {
    const [sq, sk] = [lens[i]!, lensK[i]!];
    const part = (x: Float64Array, r0: number, n: number, heads: number) => Tensor.from(x.subarray(r0 * heads * d, (r0 + n) * heads * d), [1, n, heads, d], "float32");
    const fi = flashAttn(part(q, q0, sq, h), part(k, k0, sk, hk), part(v, k0, sk, hk), { causal: true, returnLse: true });
    const gi = flashAttnBackward(part(dO, q0, sq, h), part(q, q0, sq, h), part(k, k0, sk, hk), part(v, k0, sk, hk), fi.out, fi.lse!, { causal: true });
    expect(Array.from(dq.subarray(q0 * h * d, (q0 + sq) * h * d))).toEqual(Array.from(gi.dq.toFloat32Array()));
    expect(Array.from(dk.subarray(k0 * hk * d, (k0 + sk) * hk * d))).toEqual(Array.from(gi.dk.toFloat32Array()));
    q0 += sq;
    k0 += sk;
  }
});
