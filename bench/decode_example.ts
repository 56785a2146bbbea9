// A decode loop over a paged KV cache (PagedKVCache): a batch of sequences is prefilled with a prompt chunk,
// then decoded token by token (each step appends the new token's K/V, rotated by RoPE inside the library, and
// attends over the whole cache in one call); a finished sequence is freed and a new one takes its place, so
// pages are recycled. Prints the per-step latency (host overhead included).
//   bun bench/decode_example.ts [--device cpu|0] [--steps N] [--batch B] [--page P]
// Random weights stand in for a model: q/k/v of each step are random tensors.
import { PagedKVCache, Tensor, hasCuda, synchronizeSync, type Device } from "../ts/index.ts";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
};
const devArg = arg("device", hasCuda() ? "0" : "cpu");
const device: Device = devArg === "cpu" ? "cpu" : Number(devArg);
const gpu = device !== "cpu";
const steps = Number(arg("steps", gpu ? "200" : "20"));
const batch = Number(arg("batch", "4"));
const pageSize = Number(arg("page", "16"));
const [h, hk, d] = gpu ? [32, 8, 128] : [8, 2, 64];
const prompt = gpu ? 1000 : 100;
const dtype = gpu ? "bfloat16" : "float32";
const maxLen = prompt + steps + 16;

let seed = 12345;
const rand = (n: number) => Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5));

// RoPE tables [maxLen, d/2] (NeoX pairs).
const cos: number[] = [], sin: number[] = [];
for (let p = 0; p < maxLen; p++)
  for (let j = 0; j < d / 2; j++) {
    const a = p * Math.pow(10000, (-2 * j) / d);
    cos.push(Math.cos(a));
    sin.push(Math.sin(a));
  }
using rotCos = Tensor.from(cos, [maxLen, d / 2], dtype, device);
using rotSin = Tensor.from(sin, [maxLen, d / 2], dtype, device);

using cache = new PagedKVCache({
  numPages: Math.ceil((batch * maxLen) / pageSize) + batch, pageSize, kvHeads: hk, headDim: d, dtype, device, maxSeqLen: maxLen,
});
let ids = Array.from({ length: batch }, () => cache.addSequence());
const rope = { rotaryCos: rotCos, rotarySin: rotSin, rotaryInterleaved: false };

function step(n: number) {
  using q = Tensor.from(rand(batch * n * h * d), [batch, n, h, d], dtype, device);
  using k = Tensor.from(rand(batch * n * hk * d), [batch, n, hk, d], dtype, device);
  using v = Tensor.from(rand(batch * n * hk * d), [batch, n, hk, d], dtype, device);
  const { out } = cache.attend(ids, q, { k, v, causal: true, ...rope });
  out.dispose();
}

step(prompt); // prefill (chunked prefill of the prompt: causal over the new rows)
const times: number[] = [];
for (let s = 0; s < steps; s++) {
  if (s === Math.floor(steps / 2)) {
    // Sequence 0 finished: free its pages, start a new one and prefill it alone.
    cache.freeSequence(ids[0]!);
    const fresh = cache.addSequence();
    const keep = ids.slice(1);
    ids = [fresh];
    const saved = batch;
    using q = Tensor.from(rand(prompt * h * d), [1, prompt, h, d], dtype, device);
    using k = Tensor.from(rand(prompt * hk * d), [1, prompt, hk, d], dtype, device);
    using v = Tensor.from(rand(prompt * hk * d), [1, prompt, hk, d], dtype, device);
    cache.attend(ids, q, { k, v, causal: true, ...rope }).out.dispose();
    ids = [fresh, ...keep];
    if (ids.length !== saved) throw new Error("batch changed");
  }
  const t0 = performance.now();
  step(1);
  if (gpu) synchronizeSync();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const med = times[Math.floor(times.length / 2)]!;
console.log(
  `decode on ${gpu ? `cuda:${device}` : "cpu"}: batch ${batch}, h ${h}/${hk}, d ${d}, page ${pageSize}, ${steps} steps; ` +
    `lengths now [${ids.map((i) => cache.length(i))}], free pages ${cache.freePages}; ` +
    `step latency median ${(med * 1000).toFixed(0)} us (p90 ${(times[Math.floor(times.length * 0.9)]! * 1000).toFixed(0)} us, ` +
    `host overhead and the random q/k/v uploads included)`,
);
