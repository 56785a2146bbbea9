// CPU flash_fwd_kvcache against the float64 oracle (test/ref/kvcache.ts): dense and paged caches with page
// sizes {1, 3, 16, 256}, new KV, rotary (interleaved / NeoX, half / full), leftpad, cache_batch_idx, GQA,
// masks, ALiBi, softcap and num_splits {1, 2, 5, 0}; the updated cache is checked as well.
import { describe, expect, test } from "bun:test";
import { flashAttnWithKVCache, Tensor } from "../ts/index.ts";
import { roundTo, type AttnDType } from "../ts/dtype.ts";
import * as ref from "./ref/index.ts";

interface Cfg {
  dtype: AttnDType; b: number; h: number; hk: number; d: number; sq: number; cap: number; knew: number;
  page?: number; rotary?: "half" | "full"; interleaved?: boolean; leftpad?: boolean; batchIdx?: boolean;
  causal?: boolean; window?: [number, number]; softcap?: number; alibi?: boolean; splits: number;
}
const name = (c: Cfg) =>
  `${c.dtype} b=${c.b} h=${c.h}/${c.hk} d=${c.d} sq=${c.sq} cap=${c.cap} new=${c.knew} page=${c.page ?? "none"}` +
  `${c.rotary ? ` rot=${c.rotary}${c.interleaved ? "/il" : "/neox"}` : ""}${c.leftpad ? " leftpad" : ""}` +
  `${c.batchIdx ? " batch_idx" : ""}${c.causal ? " causal" : ""}${c.window ? ` win=${c.window}` : ""}` +
  `${c.softcap ? " softcap" : ""}${c.alibi ? " alibi" : ""} splits=${c.splits}`;

function check(c: Cfg, seed: number) {
  const rng = new ref.Rng(seed);
  const { b, h, hk, d, sq, cap, dtype } = c;
  const round = (x: Float64Array) => x.map((v) => roundTo(dtype, v));
  const bK = c.batchIdx ? b + 2 : b;
  const cacheSeqlens = Array.from({ length: b }, () => ref.randInt(rng, 0, cap - c.knew + 1));
  const leftpad = c.leftpad ? cacheSeqlens.map((s) => ref.randInt(rng, 0, s + 1)) : undefined;
  const batchIdx = c.batchIdx ? Array.from({ length: b }, (_, i) => (i * 3 + 1) % bK) : undefined;
  let paged: ref.PagedCache | undefined;
  let rows = bK * cap;
  if (c.page) {
    const maxBlocks = Math.ceil(cap / c.page), numPages = b * maxBlocks + 3;
    const perm = Array.from({ length: numPages }, (_, i) => i);
    for (let i = numPages - 1; i > 0; i--) { const j = ref.randInt(rng, 0, i + 1); [perm[i], perm[j]] = [perm[j]!, perm[i]!]; }
    paged = { blockTable: perm.slice(0, b * maxBlocks), maxBlocks, pageSize: c.page, numPages };
    rows = numPages * c.page;
  }
  const capacity = paged ? paged.maxBlocks * paged.pageSize : cap;
  const kCache = round(ref.randn(rows * hk * d, rng)), vCache = round(ref.randn(rows * hk * d, rng));
  const q = Array.from({ length: b }, () => round(ref.randn(sq * h * d, rng)));
  const knew = c.knew ? Array.from({ length: b }, () => round(ref.randn(c.knew * hk * d, rng))) : undefined;
  const vnew = c.knew ? Array.from({ length: b }, () => round(ref.randn(c.knew * hk * d, rng))) : undefined;
  const rdim = c.rotary === "full" ? d & ~1 : c.rotary === "half" ? (d / 2) & ~1 : 0;
  const ro = capacity + 1;
  const ang = Array.from({ length: ro * (rdim / 2) }, (_, i) => Math.floor(i / (rdim / 2)) * Math.pow(10000, -(i % (rdim / 2)) / (rdim / 2)));
  const rotary = rdim ? { cos: round(Float64Array.from(ang, Math.cos)), sin: round(Float64Array.from(ang, Math.sin)), dim: rdim, interleaved: !!c.interleaved } : undefined;
  const slopes = c.alibi ? ref.randu(b * h, rng, 0, 0.3) : undefined;
  const pr: ref.KvCacheProblem = {
    b, h, hk, d, seqlenQ: sq, q, kCache, vCache, cap: paged ? undefined : cap, bK, paged, cacheSeqlens,
    knew, vnew, seqlenKnew: c.knew, rotary, leftpad, cacheBatchIdx: batchIdx, dtype,
    causal: c.causal, windowLeft: c.window?.[0], windowRight: c.window?.[1], softcap: c.softcap, alibiSlopes: slopes,
  };
  const want = ref.kvcacheForward(pr);
  const lp = ref.attentionLowPrecision(want.problem, dtype);

  const shape = paged ? [paged.numPages, c.page!, hk, d] : [bK, cap, hk, d];
  using kc = Tensor.from(kCache, shape, dtype);
  using vc = Tensor.from(vCache, shape, dtype);
  using qt = Tensor.from(ref.flat(q), [b, sq, h, d], dtype);
  using kn = knew ? Tensor.from(ref.flat(knew), [b, c.knew, hk, d], dtype) : undefined;
  using vn = vnew ? Tensor.from(ref.flat(vnew), [b, c.knew, hk, d], dtype) : undefined;
  using cs = Tensor.from(cacheSeqlens, [b], "int32");
  using lpad = leftpad ? Tensor.from(leftpad, [b], "int32") : undefined;
  using bidx = batchIdx ? Tensor.from(batchIdx, [b], "int32") : undefined;
  using bt = paged ? Tensor.from(paged.blockTable, [b, paged.maxBlocks], "int32") : undefined;
  using cos = rotary ? Tensor.from(rotary.cos, [ro, rdim / 2], dtype) : undefined;
  using sin = rotary ? Tensor.from(rotary.sin, [ro, rdim / 2], dtype) : undefined;
  using al = slopes ? Tensor.from(slopes, [b, h], "float32") : undefined;
  const res = flashAttnWithKVCache(qt, kc, vc, {
    k: kn, v: vn, cacheSeqlens: cs, cacheLeftpad: lpad, cacheBatchIdx: bidx, blockTable: bt,
    rotaryCos: cos, rotarySin: sin, rotaryInterleaved: !!c.interleaved, alibiSlopes: al,
    causal: c.causal, windowSize: c.window, softcap: c.softcap, numSplits: c.splits, returnLse: true,
  });
  const n = name(c), mult = c.alibi ? 5 : 3;
  ref.assertClose(`${n} out`, res.out.toFloat32Array(), ref.flat(want.o), ref.flat(lp.o), mult, 1e-5);
  ref.assertClose(`${n} lse`, res.lse!.toFloat32Array(), ref.flat(want.lse), ref.flat(lp.lse), mult, 1e-5);
  // The appended rows: V bit-exact, K (rotated) within 1e-3 as FA's test.
  const gotK = kc.toFloat32Array(), gotV = vc.toFloat32Array();
  let kErr = 0;
  for (let i = 0; i < gotV.length; i++) {
    expect(gotV[i]).toBe(Math.fround(want.vCache[i]!));
    kErr = Math.max(kErr, Math.abs(gotK[i]! - want.kCache[i]!));
  }
  expect(kErr).toBeLessThanOrEqual(1e-3 * 8);
  res.out.dispose();
  res.lse!.dispose();
}

describe("cpu kvcache", () => {
  const DT: AttnDType[] = ["float16", "bfloat16", "float32"];
  const PAGES = [undefined, 1, 3, 16, 256];
  const SPLITS = [1, 2, 5, 0];
  const DS = [32, 59, 64, 80, 128, 256];
  const SQ = [1, 1, 3, 17, 64];
  for (let i = 0; i < 30; i++) {
    const page = PAGES[i % 5];
    const d = DS[i % DS.length]!;
    const layout = i % 3;
    const c: Cfg = {
      dtype: DT[(i >> 1) % 3]!, b: 2 + (i % 2), h: layout === 0 ? 2 : 4, hk: layout === 0 ? 2 : layout === 1 ? 1 : 2, d,
      sq: SQ[i % SQ.length]!, cap: page === 256 ? 300 : 150 + (i % 4) * 37, knew: i % 4 === 3 ? 0 : 1 + (i % 5),
      page, rotary: i % 3 === 0 ? undefined : i % 3 === 1 ? "half" : "full", interleaved: i % 2 === 0,
      leftpad: i % 4 === 1, batchIdx: !page && i % 3 === 2,
      causal: i % 5 === 1 || i % 5 === 2, window: i % 7 === 4 ? [20 + i, 0] : undefined,
      softcap: i % 6 === 5 ? 4 : undefined, alibi: i % 8 === 3, splits: SPLITS[i % 4]!,
    };
    if (c.rotary && !c.knew) c.rotary = undefined; // rotary requires new keys (as FlashAttention)
    test(name(c), () => check(c, 3000 + i), 60_000);
  }
  test("num_splits never changes the answer beyond rounding", () => {
    for (const splits of [1, 2, 5, 0])
      check({ dtype: "float32", b: 1, h: 8, hk: 1, d: 64, sq: 1, cap: 2000, knew: 1, page: 16, splits, causal: true }, 42);
  }, 60_000);
});
