// The main example: attention on the GPU when one is present, else on the CPU, checked against the
// float64 reference with FlashAttention's tolerance rule, and timed.
//   bun bench/example.ts            (or `npm run example`, which builds first)
import { Event, Tensor, flashAttn, hasCuda, synchronizeSync, deviceProperties, buildInfo } from "../ts/index.ts";
import { Rng, attention, attentionLowPrecision, checkClose, randn } from "../test/ref/index.ts";

const gpu = hasCuda() && buildInfo().backends.includes("cuda");
const device = gpu ? 0 : "cpu";
const dtype = "bfloat16";
const [b, s, h, d] = [2, 512, 8, 64];
console.log(`libflash ${buildInfo().version} on ${gpu ? deviceProperties(0).name : `the CPU (${buildInfo().cpu_simd})`}`);

const rng = new Rng(1);
const data = [randn(b * s * h * d, rng), randn(b * s * h * d, rng), randn(b * s * h * d, rng)];
const [q, k, v] = data.map((x) => Tensor.from(x, [b, s, h, d], dtype, device)) as [Tensor, Tensor, Tensor];
const out = Tensor.empty([b, s, h, d], dtype, device);

// Time the call (CUDA events on the GPU, wall clock on the CPU), median of a few runs.
const times: number[] = [];
for (let i = 0; i < 7; i++) {
  if (gpu) {
    using start = new Event(), end = new Event();
    start.record();
    flashAttn(q, k, v, { causal: true, out });
    end.record();
    synchronizeSync();
    times.push(start.elapsedMs(end));
  } else {
    const t0 = performance.now();
    flashAttn(q, k, v, { causal: true, out });
    times.push(performance.now() - t0);
  }
}
const ms = times.sort((x, y) => x - y)[3]!;
const flops = (4 * b * h * s * s * d) / 2;
console.log(`flashAttn causal b=${b} s=${s} h=${h} d=${d} ${dtype}: ${ms.toFixed(3)} ms, ${(flops / ms / 1e9).toFixed(2)} TFLOP/s`);

// Check against the float64 reference (inputs rounded to bf16 first, as the library sees them).
const seq = (x: Float64Array, i: number) => Array.from(Tensor.from(x.subarray(i * s * h * d, (i + 1) * s * h * d), [s * h * d], dtype).toFloat32Array());
const problem = { b, h, hk: h, d, causal: true, seqlensQ: [s, s], seqlensK: [s, s], q: [0, 1].map((i) => seq(data[0]!, i)), k: [0, 1].map((i) => seq(data[1]!, i)), v: [0, 1].map((i) => seq(data[2]!, i)) };
const ref = attention(problem);
const low = attentionLowPrecision(problem, dtype);
const flat = (a: ArrayLike<number>[]) => Float64Array.from(a.flatMap((x) => Array.from(x)));
const report = checkClose("out", out.toFloat32Array(), flat(ref.o), flat(low.o));
console.log(report.message);
for (const t of [q, k, v, out]) t.dispose();
process.exit(report.ok ? 0 : 1);
