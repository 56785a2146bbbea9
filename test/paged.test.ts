// PagedKVCache on the CPU backend: a multi-sequence decode loop (prefill chunk, then token by token, with
// sequences freed and added in between so pages get recycled) against a dense cache driven through
// flashAttnWithKVCache with the same keys and values; page bookkeeping, errors and dispose.
import { describe, expect, test } from "bun:test";
import { PagedKVCache, Tensor, flashAttnWithKVCache } from "../ts/index.ts";

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}
const randn = (r: () => number, n: number) => Array.from({ length: n }, () => 2 * r());

interface Cfg { page: number; h: number; hk: number; d: number; rotary: boolean; causal: boolean }

function decodeLoop(c: Cfg) {
  const r = rng(c.page * 131 + c.h * 7 + c.d);
  const { h, hk, d } = c;
  const cap = 96; // dense reference capacity per slot
  const slots = 3;
  using cache = new PagedKVCache({ numPages: Math.ceil((slots * cap) / c.page) + 2, pageSize: c.page, kvHeads: hk, headDim: d, dtype: "float32", device: "cpu", maxSeqLen: cap });
  // Dense reference: one cache row per slot; sequence ids map to slots.
  using kd = Tensor.from(new Array(slots * cap * hk * d).fill(0), [slots, cap, hk, d], "float32");
  using vd = Tensor.from(new Array(slots * cap * hk * d).fill(0), [slots, cap, hk, d], "float32");
  const rd = c.rotary ? d / 2 : 0;
  using cos = rd ? Tensor.from(Array.from({ length: (cap + 8) * (rd / 2) }, (_, i) => Math.cos(i * 0.37)), [cap + 8, rd / 2], "float32") : undefined;
  using sin = rd ? Tensor.from(Array.from({ length: (cap + 8) * (rd / 2) }, (_, i) => Math.sin(i * 0.37)), [cap + 8, rd / 2], "float32") : undefined;
  const slotOf = new Map<number, number>();
  const lens = new Map<number, number>();
  const live: number[] = [];
  for (let s = 0; s < slots; s++) {
    const id = cache.addSequence();
    slotOf.set(id, s);
    lens.set(id, 0);
    live.push(id);
  }
  let worst = 0;
  for (let step = 0; step < 14; step++) {
    if (step === 6) {
      // Free one sequence, start a new one in its slot: its pages return to the pool and are reused.
      const gone = live.shift()!;
      const slot = slotOf.get(gone)!;
      const freeBefore = cache.freePages;
      const had = cache.pages(gone).length;
      cache.freeSequence(gone);
      expect(cache.freePages).toBe(freeBefore + had);
      const id = cache.addSequence();
      slotOf.set(id, slot);
      lens.set(id, 0);
      live.push(id);
    }
    const n = step === 0 || step === 6 ? 5 : 1; // a prefill chunk, then one token at a time
    const b = live.length, sq = n;
    const qv = randn(r, b * sq * h * d), kv = randn(r, b * n * hk * d), vv = randn(r, b * n * hk * d);
    using q = Tensor.from(qv, [b, sq, h, d], "float32");
    using k = Tensor.from(kv, [b, n, hk, d], "float32");
    using v = Tensor.from(vv, [b, n, hk, d], "float32");
    const opts = { k, v, causal: c.causal, rotaryCos: cos, rotarySin: sin, rotaryInterleaved: false, numSplits: 1, returnLse: true };
    const got = cache.attend(live, q, opts);
    using bidx = Tensor.from(live.map((id) => slotOf.get(id)!), [b], "int32");
    using cs = Tensor.from(live.map((id) => lens.get(id)!), [b], "int32");
    const want = flashAttnWithKVCache(q, kd, vd, { ...opts, cacheSeqlens: cs, cacheBatchIdx: bidx });
    const a = got.out.toFloat32Array(), w = want.out.toFloat32Array();
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - w[i]!));
    const la = got.lse!.toFloat32Array(), lw = want.lse!.toFloat32Array();
    for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs(la[i]! - lw[i]!));
    for (const t of [got.out, got.lse!, want.out, want.lse!]) t.dispose();
    for (const id of live) {
      lens.set(id, lens.get(id)! + n);
      expect(cache.length(id)).toBe(lens.get(id)!);
      expect(cache.pages(id).length).toBe(Math.ceil(lens.get(id)! / c.page));
    }
  }
  // The paged pool holds exactly the dense cache's rows (K rotated the same way).
  const kp = cache.k.toFloat32Array(), kdf = kd.toFloat32Array();
  for (const id of live) {
    const slot = slotOf.get(id)!, pages = cache.pages(id);
    for (let t = 0; t < cache.length(id); t++) {
      const pr = (pages[Math.floor(t / c.page)]! * c.page + (t % c.page)) * hk * d, dr = (slot * cap + t) * hk * d;
      for (let x = 0; x < hk * d; x++) expect(kp[pr + x]).toBe(kdf[dr + x]!);
    }
  }
  expect(worst).toBeLessThan(1e-5);
}

describe("PagedKVCache (cpu)", () => {
  for (const c of [
    { page: 1, h: 4, hk: 2, d: 16, rotary: false, causal: true },
    { page: 3, h: 2, hk: 2, d: 24, rotary: true, causal: true },
    { page: 16, h: 6, hk: 1, d: 32, rotary: true, causal: false },
    { page: 64, h: 4, hk: 4, d: 8, rotary: false, causal: false },
  ] as Cfg[]) {
    test(`decode loop page=${c.page} h=${c.h}/${c.hk} d=${c.d}${c.rotary ? " rotary" : ""}${c.causal ? " causal" : ""}`, () => decodeLoop(c));
  }

  test("append without attending, then attend", () => {
    using cache = new PagedKVCache({ numPages: 8, pageSize: 4, kvHeads: 1, headDim: 8, dtype: "float32", device: "cpu" });
    const id = cache.addSequence();
    const r = rng(5);
    using k = Tensor.from(randn(r, 6 * 8), [1, 6, 1, 8], "float32");
    using v = Tensor.from(randn(r, 6 * 8), [1, 6, 1, 8], "float32");
    cache.append([id], k, v);
    expect(cache.length(id)).toBe(6);
    expect(cache.pages(id).length).toBe(2);
    // Attention of a zero query over V = the mean of V's rows.
    using q = Tensor.from(new Array(8).fill(0), [1, 1, 1, 8], "float32");
    const { out } = cache.attend([id], q);
    const vv = v.toFloat32Array(), o = out.toFloat32Array();
    for (let x = 0; x < 8; x++) {
      let m = 0;
      for (let t = 0; t < 6; t++) m += vv[t * 8 + x]! / 6;
      expect(Math.abs(o[x]! - m)).toBeLessThan(1e-5);
    }
    out.dispose();
  });

  test("pool exhaustion throws and allocates nothing; freed ids are rejected; dispose", () => {
    const cache = new PagedKVCache({ numPages: 3, pageSize: 2, kvHeads: 1, headDim: 4, dtype: "float32", device: "cpu" });
    const a = cache.addSequence(), b = cache.addSequence();
    using k = Tensor.from(new Array(2 * 4 * 4).fill(1), [2, 4, 1, 4], "float32");
    using v = Tensor.from(new Array(2 * 4 * 4).fill(1), [2, 4, 1, 4], "float32");
    expect(() => cache.append([a, b], k, v)).toThrow(/pages/);
    expect(cache.freePages).toBe(3);
    expect(cache.length(a)).toBe(0);
    cache.freeSequence(b);
    expect(() => cache.length(b)).toThrow(/does not exist/);
    expect(() => cache.attend([a, a], Tensor.empty([2, 1, 1, 4], "float32"))).toThrow(/twice/);
    cache.dispose();
    expect(() => cache.addSequence()).toThrow(/dispose/);
    cache.dispose();
  });
});
