// Shared pieces of the float64 reference: the problem description, the mask rule of libflash/api/problem.h,
// ALiBi, and one row of softmax probabilities. attention.ts (forward) and backward.ts both build on
// rowProbs() so the two can never disagree about which keys a row sees or how a score is formed.
import { dropoutKeepRow, dropoutScale } from "./philox.ts";

/** Options shared by every reference entry point (names follow flash_fwd_params). */
export interface AttnOptions {
  /** Softmax scale; default 1/sqrt(d). Rounded to f32 like the ABI's float field. */
  scale?: number;
  /** Causal = window right 0, bottom-right aligned. */
  causal?: boolean;
  /** Sliding window; negative or absent = unbounded on that side. */
  windowLeft?: number;
  windowRight?: number;
  /** Tanh soft cap (0 / absent = off). */
  softcap?: number;
  /** ALiBi slopes: length h (shared by every sequence) or b*h (row-major [b, h]). */
  alibiSlopes?: ArrayLike<number>;
  /** Drop probability (0 = off) and the Philox stream of include/flash.h. */
  dropoutP?: number;
  seed?: bigint;
  offset?: bigint;
}

/** One attention problem in logical layout: q[i] is sequence i as row-major [sq_i, h, d], k[i] [sk_i, hk, d],
 *  v[i] [sk_i, hk, dv]. seqlensQ/K are the ACTUAL lengths (after seqused/leftpad); the mask uses them. */
export interface AttnProblem extends AttnOptions {
  b: number;
  h: number;
  hk: number;
  d: number;
  dv?: number; // default d
  seqlensQ: number[];
  seqlensK: number[];
  q: ArrayLike<number>[];
  k: ArrayLike<number>[];
  v: ArrayLike<number>[];
}

/** Per-sequence forward outputs: o[i] is [sq_i, h, dv] row-major, lse[i] is [h, sq_i] (the library's LSE
 *  order within a sequence). */
export interface AttnResult {
  o: Float64Array[];
  lse: Float64Array[];
}

/** Per-sequence gradients: dq[i] [sq_i, h, d], dk[i] [sk_i, hk, d], dv[i] [sk_i, hk, dv] (summed over the
 *  query heads of each KV head), softmaxD[i] [h, sq_i] = rowsum(dO * O). */
export interface Grads {
  dq: Float64Array[];
  dk: Float64Array[];
  dv: Float64Array[];
  softmaxD: Float64Array[];
}

/** The resolved parameters every routine reads (all defaults applied, f32 values rounded). */
export interface Resolved {
  b: number; h: number; hk: number; d: number; dv: number; group: number;
  scale: number; softcap: number; left: number; right: number;
  alibi: Float64Array | null; p: number; rpKeep: number; seed: bigint; offset: bigint;
  /** The inputs as Float64Array (copied only when given as another array type): keeps the hot loops monomorphic. */
  q: Float64Array[]; k: Float64Array[]; v: Float64Array[];
}

const asF64 = (x: ArrayLike<number>): Float64Array => (x instanceof Float64Array ? x : Float64Array.from(x));

export function resolve(pr: AttnProblem): Resolved {
  const { b, h, hk, d } = pr;
  const dv = pr.dv ?? d;
  if (!(h >= 1 && hk >= 1 && h % hk === 0)) throw new Error(`hk=${hk} must divide h=${h}`);
  for (const [name, arr] of [["seqlensQ", pr.seqlensQ], ["seqlensK", pr.seqlensK], ["q", pr.q], ["k", pr.k], ["v", pr.v]] as const) {
    if (arr.length !== b) throw new Error(`${name} has ${arr.length} entries, expected b=${b}`);
  }
  for (let i = 0; i < b; i++) {
    const sq = pr.seqlensQ[i]!, sk = pr.seqlensK[i]!;
    if (pr.q[i]!.length < sq * h * d) throw new Error(`q[${i}] shorter than [${sq}, ${h}, ${d}]`);
    if (pr.k[i]!.length < sk * hk * d) throw new Error(`k[${i}] shorter than [${sk}, ${hk}, ${d}]`);
    if (pr.v[i]!.length < sk * hk * dv) throw new Error(`v[${i}] shorter than [${sk}, ${hk}, ${dv}]`);
  }
  const p = pr.dropoutP ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`dropoutP=${p} must be in [0, 1)`);
  let alibi: Float64Array | null = null;
  if (pr.alibiSlopes) {
    const n = pr.alibiSlopes.length;
    if (n !== h && n !== b * h) throw new Error(`alibiSlopes has ${n} entries, expected h=${h} or b*h=${b * h}`);
    alibi = Float64Array.from(pr.alibiSlopes, Math.fround); // the ABI takes f32 slopes
  }
  return {
    b, h, hk, d, dv, group: h / hk,
    scale: Math.fround(pr.scale ?? 1 / Math.sqrt(d)),
    softcap: Math.fround(pr.softcap ?? 0),
    left: pr.windowLeft !== undefined && pr.windowLeft >= 0 ? pr.windowLeft : -1,
    right: pr.causal ? 0 : pr.windowRight !== undefined && pr.windowRight >= 0 ? pr.windowRight : -1,
    alibi, p, rpKeep: p > 0 ? dropoutScale(p) : 1,
    seed: pr.seed ?? 0n, offset: pr.offset ?? 0n,
    q: pr.q.map(asF64), k: pr.k.map(asF64), v: pr.v.map(asF64),
  };
}

/** problem.h's mask rule: col is 0-based after leftpad; sq/sk are the sequence's actual lengths. */
export function visible(left: number, right: number, row: number, col: number, sq: number, sk: number): boolean {
  if (col >= sk) return false;
  const a = row + sk - sq;
  if (left >= 0 && col < a - left) return false;
  if (right >= 0 && col > a + right) return false;
  return true;
}

/** ALiBi slope of (sequence bi, query head hi), 0 without ALiBi. */
export function alibiSlope(r: Resolved, bi: number, hi: number): number {
  if (!r.alibi) return 0;
  return r.alibi.length === r.h ? r.alibi[hi]! : r.alibi[bi * r.h + hi]!;
}

/** Everything about one query row (bi, hi, row) that forward and backward need. */
export interface RowProbs {
  /** scale * q.k per key (pre-softcap), 0 where masked. */
  x: Float64Array;
  /** Normalized softmax probabilities BEFORE dropout; 0 where masked; all 0 for a fully masked row. */
  p: Float64Array;
  /** Dropout factor per key: 1/(1-p) kept, 0 dropped; null without dropout. */
  z: Float64Array | null;
  /** Natural-log LSE of the scores (+inf for a fully masked row). */
  lse: number;
}

export function rowProbs(pr: AttnProblem, r: Resolved, bi: number, hi: number, row: number): RowProbs {
  const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
  const { d, hk } = r;
  const kh = Math.floor(hi / r.group);
  const q = r.q[bi]!, k = r.k[bi]!;
  const x = new Float64Array(sk);
  const s = new Float64Array(sk).fill(-Infinity);
  const slope = alibiSlope(r, bi, hi);
  const qo = (row * r.h + hi) * d;
  let m = -Infinity;
  for (let j = 0; j < sk; j++) {
    if (!visible(r.left, r.right, row, j, sq, sk)) continue;
    const ko = (j * hk + kh) * d;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qo + c]! * k[ko + c]!;
    x[j] = r.scale * dot;
    // FA2 order: soft cap the scaled score, then add the ALiBi bias, then mask.
    let sj = r.softcap > 0 ? r.softcap * Math.tanh(x[j]! / r.softcap) : x[j]!;
    sj -= slope * Math.abs(row + sk - sq - j);
    s[j] = sj;
    if (sj > m) m = sj;
  }
  const p = new Float64Array(sk);
  let z: Float64Array | null = null;
  if (m === -Infinity) return { x, p, z, lse: Infinity };
  let sum = 0;
  for (let j = 0; j < sk; j++) {
    const e = s[j] === -Infinity ? 0 : Math.exp(s[j]! - m);
    p[j] = e;
    sum += e;
  }
  for (let j = 0; j < sk; j++) p[j] = p[j]! / sum;
  if (r.p > 0) {
    const keep = dropoutKeepRow(r.seed, r.offset, r.h, bi, hi, row, sk, r.p);
    z = new Float64Array(sk);
    for (let j = 0; j < sk; j++) z[j] = keep[j] ? r.rpKeep : 0;
  }
  return { x, p, z, lse: m + Math.log(sum) };
}
