// Latency of one decode step from Bun (issue 5): flashAttnWithKVCache appending one token per sequence
// (K rotated by RoPE inside the library) and attending over the cache, bf16, d 128, 32 q heads over 8 KV
// heads, dense cache, every tensor preallocated (the steady state of an inference loop). Per shape:
//   step  wall time of the call + stream synchronize, host overhead included (what a Bun program waits);
//   host  wall time of the call alone (validation, packing, the FFI call and the launches);
//   gpu   CUDA-event time around the call, measured in a second pass where a ~0.1 ms forward attention call
//         is enqueued first, so the GPU is still busy when the host has finished enqueueing the step: the
//         events then time the step's kernels alone (that forward only reads, so it leaves the L2 clean).
// Medians over tinybench samples. Each sample uses the next of several cache copies (together > 2x the
// L2), so K/V come from memory as in a real model where other layers run in between.
//   bun bench/decode.bench.ts [--out results.json]
import { Bench } from "tinybench";
import {
  Event, Tensor, buildInfo, deviceProperties, flashAttn, flashAttnWithKVCache, hasCuda, synchronizeSync,
} from "../ts/index.ts";

const args = process.argv.slice(2);
const outPath = args.includes("--out") ? args[args.indexOf("--out") + 1] : undefined;
if (!hasCuda() || !buildInfo().backends.includes("cuda")) {
  console.log("decode.bench.ts: no CUDA device or no CUDA backend in this build; nothing to time");
  process.exit(0);
}
const H = 32, HK = 8, D = 128, dtype = "bfloat16" as const;
const shapes: [number, number][] = [[1, 1024], [1, 8192], [1, 32768], [8, 8192], [32, 4096]];
const l2Rotation = 160 << 20; // bytes of cache copies cycled through (H100/H200 L2: 50 MB)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// cos/sin tables for RoPE over every position (values do not matter for timing, only finiteness).
function ropeTables(maxLen: number): [Tensor, Tensor] {
  const n = maxLen * (D / 2);
  const cos = new Float32Array(n), sin = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    cos[i] = Math.cos(i * 1e-3);
    sin[i] = Math.sin(i * 1e-3);
  }
  return [Tensor.from(cos, [maxLen, D / 2], dtype, 0), Tensor.from(sin, [maxLen, D / 2], dtype, 0)];
}

// The busy-GPU preamble of the "gpu" pass: b=1, 2048 tokens, 16 heads, d 128, non-causal.
using bq = Tensor.empty([1, 2048, 16, D], dtype, 0).fillBytes(0x3c);
using bo = Tensor.empty([1, 2048, 16, D], dtype, 0);
const busy = () => flashAttn(bq, bq, bq, { out: bo });

const rows: Record<string, number | string>[] = [];
for (const [b, sk] of shapes) {
  const cap = sk + 1;
  const cacheBytes = 2 * b * cap * HK * D * 2;
  const copies = Math.max(2, Math.ceil(l2Rotation / cacheBytes));
  const caches: [Tensor, Tensor][] = [];
  for (let i = 0; i < copies; i++) {
    const k = Tensor.empty([b, cap, HK, D], dtype, 0).fillBytes(0x3c);
    const v = Tensor.empty([b, cap, HK, D], dtype, 0).fillBytes(0x3c);
    caches.push([k, v]);
  }
  using q = Tensor.empty([b, 1, H, D], dtype, 0).fillBytes(0x3c);
  using knew = Tensor.empty([b, 1, HK, D], dtype, 0).fillBytes(0x3c);
  using vnew = Tensor.empty([b, 1, HK, D], dtype, 0).fillBytes(0x3c);
  using out = Tensor.empty([b, 1, H, D], dtype, 0);
  // The step appends at row sk - 1 and attends over sk rows; the same row is rewritten every sample.
  using seqlens = Tensor.from(new Array(b).fill(sk - 1), [b], "int32", 0);
  const [cos, sin] = ropeTables(cap);
  using _cos = cos, _sin = sin;
  using e0 = new Event(), e1 = new Event();
  let which = 0;
  const call = () => {
    const [kc, vc] = caches[which]!;
    which = (which + 1) % copies;
    flashAttnWithKVCache(q, kc, vc, {
      k: knew, v: vnew, cacheSeqlens: seqlens, rotaryCos: cos, rotarySin: sin, rotaryInterleaved: false, out,
    });
  };
  const host: number[] = [], gpu: number[] = [];
  const bench = new Bench({ time: 300, iterations: 50, warmupIterations: 10, throws: true });
  bench.add("step", () => {
    const t0 = performance.now();
    call();
    const t1 = performance.now();
    synchronizeSync();
    const t2 = performance.now();
    host.push(t1 - t0);
    return { overriddenDuration: t2 - t0 };
  });
  bench.add("gpu", () => {
    busy();
    e0.record();
    call();
    e1.record();
    e1.synchronizeSync();
    gpu.push(e0.elapsedMs(e1));
  });
  await bench.run();
  for (const [k, v] of caches) {
    k.dispose();
    v.dispose();
  }
  const step = (bench.tasks[0]!.result as { latency: { p50: number } }).latency.p50;
  const gpuMs = median(gpu);
  rows.push({
    b, sk, "step us": +(step * 1e3).toFixed(1), "host us": +(median(host) * 1e3).toFixed(1),
    "gpu us": +(gpuMs * 1e3).toFixed(1), "KV TB/s (gpu)": +(((2 * b * sk * HK * D * 2) / (gpuMs * 1e-3)) / 1e12).toFixed(2),
    copies,
  });
  console.log(rows.at(-1));
}

const where = deviceProperties(0).name;
console.log(`\nlibflash ${buildInfo().version} decode step (append 1 token + rotary + attend), bf16 d${D} h${H}/hk${HK}, on ${where}, ${new Date().toISOString()}`);
console.table(rows);
if (outPath) await Bun.write(outPath, JSON.stringify({ device: where, date: new Date().toISOString(), command: `bun bench/decode.bench.ts ${args.join(" ")}`, rows }, null, 2));
