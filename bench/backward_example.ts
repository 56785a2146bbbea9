// Training step through libflash: forward with the LSE kept, then flashAttnBackward, on the GPU when one is
// present, else on the CPU backend (same code). The gradients are then checked two independent ways:
//   (a) against the float64 oracle of test/ref with FlashAttention's own rule (max error <= 3x the error of
//       a plain same-precision implementation + atol), and
//   (b) by central finite differences of L = sum(O * dO) along random directions (float32, CPU backend),
//       which needs no reference implementation at all.
//   bun bench/backward_example.ts        (or `npm run example:bwd`); exits 1 if a check fails.
import { Tensor, buildInfo, flashAttn, flashAttnBackward, hasCuda, lastKernel, type AttnDType, type Device } from "../ts/index.ts";
import * as ref from "../test/ref/index.ts";

const gpu = hasCuda() && buildInfo().backends.includes("cuda");
const device: Device = gpu ? 0 : "cpu";
const dtype: AttnDType = "bfloat16"; // the training dtype; the CUDA backend runs fp16/bf16 only
// Causal (bottom-right aligned), GQA (8 query heads share 2 KV heads), odd sequence lengths.
const [b, sq, sk, h, hk, d] = [2, 77, 93, 8, 2, 64];
const causal = true;
const shapes = { q: [b, sq, h, d], kv: [b, sk, hk, d] };

// Inputs rounded to bf16 up front so that the oracle sees exactly the values the library reads.
const rng = new ref.Rng(2024);
const pr = ref.randomProblem(rng, { h, hk, d, causal, dtype, seqlensQ: [sq, sq], seqlensK: [sk, sk] });
const dO = ref.randomDout(rng, pr, dtype);

let ok = true;
const line = (pass: boolean, text: string) => {
  ok &&= pass;
  console.log(`${pass ? "ok  " : "FAIL"} ${text}`);
};

// ---- (a) the training step on the chosen device, against the float64 oracle -------------------------
console.log(`backward example on ${gpu ? "cuda:0" : `the CPU backend (${buildInfo().cpu_simd})`}: ` +
  `b=${b} sq=${sq} sk=${sk} h=${h}/${hk} d=${d} causal ${dtype}`);
{
  using q = Tensor.from(ref.flat(pr.q), shapes.q, dtype, device);
  using k = Tensor.from(ref.flat(pr.k), shapes.kv, dtype, device);
  using v = Tensor.from(ref.flat(pr.v), shapes.kv, dtype, device);
  using dout = Tensor.from(ref.flat(dO), shapes.q, dtype, device);
  // The backward must get the forward's own out and LSE, and the same options (causal here).
  const fwd = flashAttn(q, k, v, { causal, returnLse: true });
  using out = fwd.out, lse = fwd.lse!;
  const g = flashAttnBackward(dout, q, k, v, out, lse, { causal });
  using dq = g.dq, dk = g.dk, dv = g.dv;
  const kernel = lastKernel(); // read before anything else calls the library
  const want = ref.attentionBackward(pr, dO); // float64 analytic gradients
  const plain = ref.attentionBackwardLowPrecision(pr, dO, dtype); // the yardstick: ordinary bf16 attention
  console.log(`(a) vs the float64 oracle, kernel "${kernel}", rule max|lib-f64| <= 3*max|plain bf16-f64| + 1e-5:`);
  for (const [n, t] of [["dq", dq], ["dk", dk], ["dv", dv]] as const) {
    const r = ref.checkClose(n, t.toFloat32Array(), ref.flat(want[n]), ref.flat(plain[n]), 3, 1e-5);
    line(r.ok, `  ${n}: max err ${r.maxErr.toExponential(2)}, bound ${r.bound.toExponential(2)} ` +
      `(plain bf16 err ${r.lowpErr.toExponential(2)})`);
  }
}

// ---- (b) central finite differences, float32 on the CPU backend ----------------------------------------
// L(x) = sum(O(x) * dO), so dL/dx = the gradient flashAttnBackward returns for upstream gradient dO.
// For a direction u: L(x + eps u) - L(x - eps u) = <grad, 2 eps u> + O(eps^3). The perturbed inputs are
// rounded to float32, so the exact step taken, x+ - x-, is what the gradient is dotted with.
const f32 = { q: Float32Array.from(ref.flat(pr.q)), k: Float32Array.from(ref.flat(pr.k)), v: Float32Array.from(ref.flat(pr.v)) };
const dO32 = Float32Array.from(ref.flat(dO));
using dout32 = Tensor.from(dO32, shapes.q, "float32", "cpu");
const loss = (x: typeof f32) => {
  using q = Tensor.from(x.q, shapes.q, "float32", "cpu");
  using k = Tensor.from(x.k, shapes.kv, "float32", "cpu");
  using v = Tensor.from(x.v, shapes.kv, "float32", "cpu");
  using out = flashAttn(q, k, v, { causal }).out;
  const o = out.toFloat32Array();
  let s = 0; // summed in float64 so that the sum adds no noise of its own
  for (let i = 0; i < o.length; i++) s += o[i]! * dO32[i]!;
  return s;
};
const grads = (() => {
  using q = Tensor.from(f32.q, shapes.q, "float32", "cpu");
  using k = Tensor.from(f32.k, shapes.kv, "float32", "cpu");
  using v = Tensor.from(f32.v, shapes.kv, "float32", "cpu");
  const fwd = flashAttn(q, k, v, { causal, returnLse: true });
  using out = fwd.out, lse = fwd.lse!;
  const g = flashAttnBackward(dout32, q, k, v, out, lse, { causal });
  using dq = g.dq, dk = g.dk, dv = g.dv;
  return { q: dq.toFloat32Array(), k: dk.toFloat32Array(), v: dv.toFloat32Array(), kernel: lastKernel() };
})();
// Error measure: the relative error of the gradient projected onto the 3 directions, |fd - an|_2 / |an|_2,
// so that one direction nearly orthogonal to the gradient cannot inflate it. It is (float32 noise of L) / eps
// plus O(eps^2) truncation; measured here, eps = 1e-2 gives 2e-6 (dq) .. 5e-5 (dk) and eps = 3e-3 or 2e-2 up to
// ~2e-4, so tol = 1e-3 leaves a >= 5x margin. Bugs it catches (measured): dk 1% too large -> 1e-2, one KV
// head's dk 25% off -> 1e-1. A bug confined to one key row can stay under it: check (a) sees every element.
const eps = 1e-2, tol = 1e-3;
console.log(`(b) finite differences, float32 on the CPU backend, kernel "${grads.kernel}", eps=${eps}, ` +
  `rule |fd - <grad, step>|_2 <= ${tol} * |<grad, step>|_2 over 3 random directions:`);
for (const name of ["q", "k", "v"] as const) {
  let err2 = 0, norm2 = 0;
  for (let dir = 0; dir < 3; dir++) {
    const u = ref.randn(f32[name].length, rng);
    const plus = Float32Array.from(f32[name], (x, i) => x + eps * u[i]!);
    const minus = Float32Array.from(f32[name], (x, i) => x - eps * u[i]!);
    const fd = loss({ ...f32, [name]: plus }) - loss({ ...f32, [name]: minus });
    let an = 0;
    for (let i = 0; i < plus.length; i++) an += grads[name][i]! * (plus[i]! - minus[i]!);
    err2 += (fd - an) ** 2;
    norm2 += an ** 2;
  }
  const rel = Math.sqrt(err2 / norm2);
  line(rel <= tol, `  d${name}: relative error ${rel.toExponential(2)} (limit ${tol})`);
}

console.log(ok ? "backward example: PASS" : "backward example: FAIL");
process.exit(ok ? 0 : 1);
