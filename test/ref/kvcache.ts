// Reference for flash_fwd_kvcache (include/flash.h; fa-api.md §3.6). Steps, per sequence i:
//   1. knew/vnew rows are appended to the cache at buffer rows cache_seqlens[i] .. + seqlen_knew - 1 (of cache
//      batch row cache_batch_idx[i], or through block_table when paged); knew is rotated on the way in.
//   2. q is rotated: row r at position cache_seqlens[i] + r when causal or local, else every row at
//      cache_seqlens[i]. Positions are absolute buffer rows (leftpad included). knew row r: cache_seqlens[i] + r.
//   3. Attention (attention.ts) over the buffer rows [leftpad[i], cache_seqlens[i] + seqlen_knew).
// Rotary on a pair (x1, x2) with (cos, sin) of the position and pair index j < rotary_dim/2:
//   x1' = x1 cos - x2 sin,  x2' = x1 sin + x2 cos;  pairs (2j, 2j+1) interleaved, else (j, j + rotary_dim/2).
import { roundTo, type AttnDType as DType } from "../../ts/dtype.ts";
import { attention } from "./attention.ts";
import type { AttnOptions, AttnProblem, AttnResult } from "./core.ts";

export interface Rotary {
  cos: ArrayLike<number>; // [seqlen_ro, dim/2] row-major
  sin: ArrayLike<number>;
  dim: number;            // rotary_dim: even, <= d; dims >= dim pass through
  interleaved: boolean;   // true: GPT-J pairs (2j, 2j+1); false: GPT-NeoX pairs (j, j + dim/2)
}

export interface PagedCache {
  blockTable: ArrayLike<number>; // [b, maxBlocks] row-major
  maxBlocks: number;
  pageSize: number;
  numPages: number;
}

/** Caches are logical contiguous arrays: dense [bK, cap, hk, d] (v: dv), or paged pools
 *  [numPages, pageSize, hk, d]. q[i] is [seqlenQ, h, d]; knew[i] [seqlenKnew, hk, d]. */
export interface KvCacheProblem extends Omit<AttnOptions, "dropoutP" | "seed" | "offset"> {
  b: number; h: number; hk: number; d: number; dv?: number;
  seqlenQ: number;
  q: ArrayLike<number>[];
  kCache: ArrayLike<number>;
  vCache: ArrayLike<number>;
  cap?: number;            // dense: rows per cache batch row (the ABI's seqlen_k)
  bK?: number;             // dense: cache batch rows, default b
  paged?: PagedCache;
  cacheSeqlens: number[];
  knew?: ArrayLike<number>[];
  vnew?: ArrayLike<number>[];
  seqlenKnew?: number;
  rotary?: Rotary;
  leftpad?: number[];
  cacheBatchIdx?: number[];
  /** When set, values the library stores in dtype (rotated knew in the cache, rotated q) are rounded to it. */
  dtype?: DType;
}

export interface KvCacheResult extends AttnResult {
  kCache: Float64Array;  // updated copies, same layout as the inputs
  vCache: Float64Array;
  qRot: Float64Array[];  // q as attended (rotated when rotary is given)
  problem: AttnProblem;  // the attention problem that was run (hand it to attentionLowPrecision)
}

/** Rotates one head vector x[off .. off+d) in place at rotary row `pos`. */
export function rotateHead(x: Float64Array, off: number, rot: Rotary, pos: number, round: (v: number) => number): void {
  const half = rot.dim / 2;
  if ((pos + 1) * half > rot.cos.length) throw new Error(`rotary position ${pos} is past cos/sin (${rot.cos.length / half} rows)`);
  for (let j = 0; j < half; j++) {
    const i1 = rot.interleaved ? off + 2 * j : off + j;
    const i2 = rot.interleaved ? i1 + 1 : i1 + half;
    const c = rot.cos[pos * half + j]!, s = rot.sin[pos * half + j]!;
    const x1 = x[i1]!, x2 = x[i2]!;
    x[i1] = round(x1 * c - x2 * s);
    x[i2] = round(x1 * s + x2 * c);
  }
}

export function kvcacheForward(pr: KvCacheProblem): KvCacheResult {
  const { b, h, hk, d, seqlenQ } = pr;
  const dv = pr.dv ?? d;
  const round = pr.dtype ? (x: number) => roundTo(pr.dtype!, x) : (x: number) => x;
  const nNew = pr.knew ? pr.seqlenKnew ?? 0 : 0;
  if (pr.knew && !pr.vnew) throw new Error("knew without vnew");
  if (pr.paged && pr.cacheBatchIdx) throw new Error("paged cache does not take cacheBatchIdx");
  if (pr.rotary && (pr.rotary.dim % 2 !== 0 || pr.rotary.dim > d)) throw new Error(`rotary dim ${pr.rotary.dim} must be even and <= d=${d}`);
  const bK = pr.bK ?? b;
  const cap = pr.paged ? pr.paged.maxBlocks * pr.paged.pageSize : pr.cap;
  if (cap === undefined) throw new Error("dense cache needs cap");
  const kCache = Float64Array.from(pr.kCache);
  const vCache = Float64Array.from(pr.vCache);
  // Cache row (in units of one [hk, d] row) of token t of sequence i.
  const cacheRow = (i: number, t: number): number => {
    if (t < 0 || t >= cap) throw new Error(`sequence ${i}: token ${t} outside the cache capacity ${cap}`);
    if (pr.paged) {
      const pg = pr.paged;
      const page = pg.blockTable[i * pg.maxBlocks + Math.floor(t / pg.pageSize)]!;
      if (!(page >= 0 && page < pg.numPages)) throw new Error(`block_table[${i}] has page ${page} outside [0, ${pg.numPages})`);
      return page * pg.pageSize + (t % pg.pageSize);
    }
    const kb = pr.cacheBatchIdx ? pr.cacheBatchIdx[i]! : i;
    if (!(kb >= 0 && kb < bK)) throw new Error(`cache batch row ${kb} outside [0, ${bK})`);
    return kb * cap + t;
  };
  const local = !!pr.causal || (pr.windowLeft ?? -1) >= 0 || (pr.windowRight ?? -1) >= 0;
  const qRot: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
  const seqlensK: number[] = [];
  for (let i = 0; i < b; i++) {
    const cs = pr.cacheSeqlens[i]!;
    // 1. Append (k rotated on the way in, v copied).
    for (let r = 0; r < nNew; r++) {
      const kr = Float64Array.from({ length: hk * d }, (_, e) => pr.knew![i]![r * hk * d + e]!);
      if (pr.rotary) for (let hh = 0; hh < hk; hh++) rotateHead(kr, hh * d, pr.rotary, cs + r, round);
      const row = cacheRow(i, cs + r);
      kCache.set(kr, row * hk * d);
      for (let e = 0; e < hk * dv; e++) vCache[row * hk * dv + e] = pr.vnew![i]![r * hk * dv + e]!;
    }
    // 2. Rotate q.
    const q = Float64Array.from({ length: seqlenQ * h * d }, (_, e) => pr.q[i]![e]!);
    if (pr.rotary) {
      for (let r = 0; r < seqlenQ; r++)
        for (let hh = 0; hh < h; hh++) rotateHead(q, (r * h + hh) * d, pr.rotary, local ? cs + r : cs, round);
    }
    qRot.push(q);
    // 3. Gather the valid keys [leftpad, cs + nNew).
    const lp = pr.leftpad?.[i] ?? 0;
    const sk = cs + nNew - lp;
    if (sk < 0) throw new Error(`sequence ${i}: leftpad ${lp} > cache_seqlens + seqlen_knew = ${cs + nNew}`);
    const kk = new Float64Array(sk * hk * d), vv = new Float64Array(sk * hk * dv);
    for (let t = 0; t < sk; t++) {
      const row = cacheRow(i, lp + t);
      kk.set(kCache.subarray(row * hk * d, (row + 1) * hk * d), t * hk * d);
      vv.set(vCache.subarray(row * hk * dv, (row + 1) * hk * dv), t * hk * dv);
    }
    ks.push(kk);
    vs.push(vv);
    seqlensK.push(sk);
  }
  const problem: AttnProblem = {
    b, h, hk, d, dv, seqlensQ: new Array(b).fill(seqlenQ), seqlensK, q: qRot, k: ks, v: vs,
    scale: pr.scale, causal: pr.causal, windowLeft: pr.windowLeft, windowRight: pr.windowRight,
    softcap: pr.softcap, alibiSlopes: pr.alibiSlopes,
  };
  const { o, lse } = attention(problem);
  return { o, lse, kCache, vCache, qRot, problem };
}
