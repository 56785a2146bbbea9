// flash_fwd_kvcache on the GPU against the CPU backend through flashAttnWithKVCache (same inputs, same
// options): dense and paged caches (page 1, 16, 256), new KV with rotary, leftpad, cache_batch_idx, GQA,
// causal / local, ALiBi, num_splits {1, 3, 0}; the output, the LSE and the updated cache are compared.
// Skipped without a CUDA device.
import { describe, expect, test } from "bun:test";
import { Tensor, flashAttnWithKVCache, hasCuda, PagedKVCache } from "../ts/index.ts";
import type { AttnDType } from "../ts/dtype.ts";

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

interface Cfg {
  b: number; h: number; hk: number; d: number; sq: number; cap: number; knew: number; page?: number;
  rotary?: boolean; leftpad?: boolean; batchIdx?: boolean; causal?: boolean; window?: [number, number];
  alibi?: boolean; splits: number; dtype: AttnDType;
}

function run(c: Cfg) {
  const r = rng(c.b * 1000 + c.d * 7 + c.cap + (c.page ?? 0));
  const randn = (n: number) => Array.from({ length: n }, () => (r() + r() + r() - 1.5) * 2);
  const { b, h, hk, d, sq, cap, dtype } = c;
  const bK = c.batchIdx ? b + 1 : b;
  const seqlens = Array.from({ length: b }, () => Math.floor(r() * (cap - c.knew + 1)));
  const leftpad = c.leftpad ? seqlens.map((s) => Math.floor(r() * (s + 1))) : undefined;
  const batchIdx = c.batchIdx ? Array.from({ length: b }, (_, i) => (i + 1) % bK) : undefined;
  let shape = [bK, cap, hk, d], table: number[] | undefined, maxBlocks = 0;
  if (c.page) {
    maxBlocks = Math.ceil(cap / c.page);
    const n = b * maxBlocks + 2;
    const perm = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
    table = perm.slice(0, b * maxBlocks);
    shape = [n, c.page, hk, d];
  }
  const rows = shape.reduce((a, x) => a * x, 1);
  const kData = randn(rows), vData = randn(rows), qData = randn(b * sq * h * d);
  const knData = randn(b * c.knew * hk * d), vnData = randn(b * c.knew * hk * d);
  const rd = c.rotary ? d : 0, ro = (c.page ? maxBlocks * c.page : cap) + sq;
  const cosData = Array.from({ length: ro * (rd / 2) }, (_, i) => Math.cos(i * 0.173));
  const sinData = Array.from({ length: ro * (rd / 2) }, (_, i) => Math.sin(i * 0.173));
  const slopes = c.alibi ? Array.from({ length: b * h }, () => r() * 0.3) : undefined;

  const outs: { o: Float32Array; l: Float32Array; k: Float32Array; v: Float32Array }[] = [];
  for (const dev of ["cpu", 0] as const) {
    using kc = Tensor.from(kData, shape, dtype, dev);
    using vc = Tensor.from(vData, shape, dtype, dev);
    using q = Tensor.from(qData, [b, sq, h, d], dtype, dev);
    using kn = c.knew ? Tensor.from(knData, [b, c.knew, hk, d], dtype, dev) : undefined;
    using vn = c.knew ? Tensor.from(vnData, [b, c.knew, hk, d], dtype, dev) : undefined;
    using cs = Tensor.from(seqlens, [b], "int32", dev);
    using lp = leftpad ? Tensor.from(leftpad, [b], "int32", dev) : undefined;
    using bi = batchIdx ? Tensor.from(batchIdx, [b], "int32", dev) : undefined;
    using bt = table ? Tensor.from(table, [b, maxBlocks], "int32", dev) : undefined;
    using cos = rd ? Tensor.from(cosData, [ro, rd / 2], dtype, dev) : undefined;
    using sin = rd ? Tensor.from(sinData, [ro, rd / 2], dtype, dev) : undefined;
    using al = slopes ? Tensor.from(slopes, [b, h], "float32", dev) : undefined;
    const res = flashAttnWithKVCache(q, kc, vc, {
      k: kn, v: vn, cacheSeqlens: cs, cacheLeftpad: lp, cacheBatchIdx: bi, blockTable: bt, rotaryCos: cos,
      rotarySin: sin, rotaryInterleaved: false, alibiSlopes: al, causal: c.causal, windowSize: c.window,
      numSplits: c.splits, returnLse: true,
    });
    outs.push({ o: res.out.toFloat32Array(), l: res.lse!.toFloat32Array(), k: kc.toFloat32Array(), v: vc.toFloat32Array() });
    res.out.dispose();
    res.lse!.dispose();
  }
  const [cpu, gpu] = outs as [typeof outs[0], typeof outs[0]];
  const tol = dtype === "bfloat16" ? 2e-2 : 3e-3;
  let oErr = 0, lErr = 0, kErr = 0;
  for (let i = 0; i < cpu.o.length; i++) oErr = Math.max(oErr, Math.abs(cpu.o[i]! - gpu.o[i]!));
  for (let i = 0; i < cpu.l.length; i++) {
    if (cpu.l[i] === Infinity || gpu.l[i] === Infinity) expect(gpu.l[i]).toBe(cpu.l[i]!);
    else lErr = Math.max(lErr, Math.abs(cpu.l[i]! - gpu.l[i]!) / (1 + Math.abs(cpu.l[i]!)));
  }
  for (let i = 0; i < cpu.k.length; i++) kErr = Math.max(kErr, Math.abs(cpu.k[i]! - gpu.k[i]!) / (1 + Math.abs(cpu.k[i]!)));
  for (let i = 0; i < cpu.v.length; i++) if (cpu.v[i] !== gpu.v[i]) expect(gpu.v[i]).toBe(cpu.v[i]!);
  expect(oErr).toBeLessThan(tol);
  expect(lErr).toBeLessThan(1e-3);
  expect(kErr).toBeLessThan(dtype === "bfloat16" ? 8e-3 : 1e-3);
}

describe.skipIf(!hasCuda())("flash_fwd_kvcache GPU vs CPU", () => {
  const cases: Cfg[] = [
    { b: 2, h: 8, hk: 2, d: 128, sq: 1, cap: 700, knew: 1, page: 16, rotary: true, causal: true, splits: 0, dtype: "bfloat16" },
    { b: 3, h: 4, hk: 4, d: 64, sq: 3, cap: 300, knew: 3, rotary: true, leftpad: true, batchIdx: true, causal: true, splits: 3, dtype: "float16" },
    { b: 2, h: 6, hk: 1, d: 59, sq: 5, cap: 257, knew: 0, page: 1, window: [40, 2], alibi: true, splits: 1, dtype: "bfloat16" },
    { b: 1, h: 4, hk: 2, d: 128, sq: 16, cap: 1024, knew: 16, page: 256, leftpad: true, causal: true, splits: 0, dtype: "bfloat16" },
  ];
  for (const c of cases)
    test(`b=${c.b} h=${c.h}/${c.hk} d=${c.d} sq=${c.sq} cap=${c.cap} new=${c.knew} page=${c.page ?? "none"} splits=${c.splits} ${c.dtype}`, () => run(c));

  test("PagedKVCache on the GPU: decode steps match the CPU", () => {
    const results: Float32Array[][] = [];
    for (const dev of ["cpu", 0] as const) {
      using cache = new PagedKVCache({ numPages: 64, pageSize: 16, kvHeads: 2, headDim: 64, dtype: "bfloat16", device: dev, maxSeqLen: 512 });
      const ids = [cache.addSequence(), cache.addSequence()];
      const r = rng(9);
      const outs: Float32Array[] = [];
      for (let step = 0; step < 6; step++) {
        const n = step === 0 ? 37 : 1;
        using q = Tensor.from(Array.from({ length: 2 * n * 8 * 64 }, () => r() - 0.5), [2, n, 8, 64], "bfloat16", dev);
        using k = Tensor.from(Array.from({ length: 2 * n * 2 * 64 }, () => r() - 0.5), [2, n, 2, 64], "bfloat16", dev);
        using v = Tensor.from(Array.from({ length: 2 * n * 2 * 64 }, () => r() - 0.5), [2, n, 2, 64], "bfloat16", dev);
        const { out } = cache.attend(ids, q, { k, v, causal: true });
        outs.push(out.toFloat32Array());
        out.dispose();
      }
      results.push(outs);
    }
    for (let s = 0; s < results[0]!.length; s++)
      for (let i = 0; i < results[0]![s]!.length; i++) expect(Math.abs(results[0]![s]![i]! - results[1]![s]![i]!)).toBeLessThan(2e-2);
  });
});
