// CPU forward/backward throughput with tinybench: GFLOP/s for fp32 and bf16, d 64/128, seqlen 512..8k.
// Default run is short (seqlen 512 and 2048); BENCH_FULL=1 adds 4k and 8k. FLASH_NUM_THREADS caps threads.
//   node_modules/.bin/bun bench/cpu/fwd.bench.ts
import { Bench } from "tinybench";
import { flashAttn, flashAttnBackward, Tensor } from "../../ts/index.ts";
import type { AttnDType } from "../../ts/dtype.ts";

const full = process.env.BENCH_FULL === "1";
const seqlens = full ? [512, 2048, 4096, 8192] : [512, 2048];
const rows: Record<string, string | number>[] = [];

for (const dtype of ["float32", "bfloat16"] as AttnDType[]) {
  for (const d of [64, 128]) {
    for (const s of seqlens) {
      const h = Math.max(1, Math.round((8 * 2048) / s)), b = 1; // roughly constant work per seqlen
      const n = b * s * h * d;
      const rand = () => Float32Array.from({ length: n }, () => Math.random() - 0.5);
      const q = Tensor.from(rand(), [b, s, h, d], dtype), k = Tensor.from(rand(), [b, s, h, d], dtype);
      const v = Tensor.from(rand(), [b, s, h, d], dtype), dout = Tensor.from(rand(), [b, s, h, d], dtype);
      const out = Tensor.empty([b, s, h, d], dtype), lse = Tensor.empty([b, h, s], "float32");
      const dq = Tensor.empty([b, s, h, d], dtype), dk = Tensor.empty([b, s, h, d], dtype), dv = Tensor.empty([b, s, h, d], dtype);
      const flops = 4 * b * h * s * s * d; // two matmuls; backward counts 2.5x (FA's convention)
      const bench = new Bench({ iterations: s >= 4096 ? 2 : 4, warmupIterations: 1, time: 0 });
      bench.add("fwd", () => { flashAttn(q, k, v, { out, lse }); });
      bench.add("bwd", () => { flashAttnBackward(dout, q, k, v, out, lse, { dq, dk, dv }); });
      await bench.run();
      for (const t of bench.tasks) {
        const ms = (t.result as { latency: { p50: number } }).latency.p50; // median, as the GPU benches report
        const gf = (t.name === "bwd" ? 2.5 : 1) * flops / (ms * 1e6);
        rows.push({ pass: t.name, dtype, d, seqlen: s, h, ms: +ms.toFixed(2), "GFLOP/s": +gf.toFixed(1) });
      }
      for (const t of [q, k, v, dout, out, lse, dq, dk, dv]) t.dispose();
    }
  }
}
console.table(rows);
