// Forward attention throughput with tinybench. On a GPU each sample is the CUDA-event time of one call
// (L2 flushed by a 256 MiB memset before it, outside the timed region), reported as the median; on the
// CPU, wall time. FLOPs = 4·b·h·sq·sk·d (÷2 causal), FlashAttention's convention.
//   bun bench/fwd.bench.ts [--quick] [--out results.json]
import { Bench } from "tinybench";
import {
  Event, Tensor, buildInfo, deviceFree, deviceMalloc, deviceProperties, flashAttn, hasCuda, memset, type AttnDType,
} from "../ts/index.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outPath = args.includes("--out") ? args[args.indexOf("--out") + 1] : undefined;
const gpu = hasCuda() && buildInfo().backends.includes("cuda");
const device = gpu ? 0 : ("cpu" as const);

const tokens = gpu ? 16384 : 2048, hidden = gpu ? 2048 : 256;
const seqlens = gpu ? (quick ? [1024, 8192] : [512, 1024, 2048, 4096, 8192, 16384]) : [512, 2048];
const dims = gpu ? (quick ? [128] : [64, 128, 256]) : [64];
const dtypes: AttnDType[] = gpu ? (quick ? ["bfloat16"] : ["bfloat16", "float16"]) : ["bfloat16"];

const flushBytes = 256 << 20;
const flush = gpu ? deviceMalloc(flushBytes) : 0;
const rows: Record<string, string | number>[] = [];

for (const dtype of dtypes)
  for (const d of dims)
    for (const s of seqlens)
      for (const causal of [false, true]) {
        const b = Math.max(1, tokens / s), h = hidden / d;
        const shape = [b, s, h, d];
        using q = Tensor.empty(shape, dtype, device), k = Tensor.empty(shape, dtype, device), v = Tensor.empty(shape, dtype, device);
        using out = Tensor.empty(shape, dtype, device);
        for (const t of [q, k, v]) t.fillBytes(0x3c); // small finite values in both fp16 and bf16
        using e0 = gpu ? new Event() : undefined, e1 = gpu ? new Event() : undefined;
        const bench = new Bench({ time: gpu ? 400 : 1500, iterations: gpu ? 20 : 3, warmupIterations: 3, throws: true });
        bench.add("fwd", () => {
          if (!gpu) {
            flashAttn(q, k, v, { causal, out });
            return;
          }
          memset(flush, 0, flushBytes, null);
          e0!.record();
          flashAttn(q, k, v, { causal, out });
          e1!.record();
          e1!.synchronizeSync();
          return { overriddenDuration: e0!.elapsedMs(e1!) };
        });
        await bench.run();
        const ms = (bench.tasks[0]!.result as { latency: { p50: number } }).latency.p50;
        const flops = (4 * b * h * s * s * d) / (causal ? 2 : 1);
        rows.push({ dtype, d, seqlen: s, b, h, causal: String(causal), ms: +ms.toFixed(4), "TFLOP/s": +(flops / ms / 1e9).toFixed(1) });
        console.log(rows.at(-1));
      }
if (gpu) deviceFree(flush);

const where = gpu ? deviceProperties(0).name : `CPU (${buildInfo().cpu_simd})`;
console.log(`\nlibflash ${buildInfo().version} forward on ${where}, ${new Date().toISOString().slice(0, 10)}`);
console.table(rows);
if (outPath) await Bun.write(outPath, JSON.stringify({ device: where, date: new Date().toISOString(), command: `bun bench/fwd.bench.ts ${args.join(" ")}`, rows }, null, 2));
