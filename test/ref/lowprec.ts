// "Plain same-precision attention": what FlashAttention's tests call out_pt, i.e. attention_ref(upcast=False,
// reorder_ops=True) run in fp16/bf16 by PyTorch. It is not more accurate than the library; it measures how
// much error an ordinary implementation in the same dtype makes, which is the yardstick of the tolerance rule
// (tolerance.ts). Emulated step by step, every tensor PyTorch would materialize in dtype is rounded to dtype:
//   ks = rT(k*scale)                      (K scaled instead of Q: "reorder_ops")
//   S  = rT(q.ks)                         (GEMM: fp32 accumulation, one rounding)
//   softcap: a = rT(S/c), t = rT(tanh a), S = rT(t*c)
//   alibi: S = f32(S + f32 bias)          (the bias tensor is fp32, so the sum promotes to fp32)
//   P  = rT(softmax_fp32(S)), dropped -> 0, vs = rT(v/(1-p)), O = rT(P.vs)
// The backward follows PyTorch autograd through the same graph (each op's gradient rounded to dtype, GQA
// gradients rounded per query head, then summed over the group and rounded once).
import { roundTo, type AttnDType as DType } from "../../ts/dtype.ts";
import { type AttnProblem, type AttnResult, type Grads, type Resolved, alibiSlope, resolve, visible } from "./core.ts";
import { dropoutKeepRow } from "./philox.ts";

interface SeqLp {
  q: Float64Array; ks: Float64Array; vs: Float64Array; // rounded inputs, ks = rT(k*scale), vs = rT(v*rp)
}

function prepSeq(pr: AttnProblem, r: Resolved, T: DType, bi: number): SeqLp {
  const rt = (x: number) => roundTo(T, x);
  const q = Float64Array.from(pr.q[bi]!, rt);
  const ks = Float64Array.from(pr.k[bi]!, (x) => rt(rt(x) * r.scale));
  const vs = Float64Array.from(pr.v[bi]!, (x) => (r.p > 0 ? rt(rt(x) * r.rpKeep) : rt(x)));
  return { q, ks, vs };
}

interface RowLp {
  t: Float64Array | null; // tanh values (softcap only), for the backward
  p32: Float64Array;      // fp32 softmax output (0 masked)
  pT: Float64Array;       // rT(p32), with dropped entries zeroed (what multiplies vs)
  keep: Uint8Array | null;
  lse: number;
}

function rowLp(pr: AttnProblem, r: Resolved, T: DType, s: SeqLp, bi: number, hi: number, row: number): RowLp {
  const rt = (x: number) => roundTo(T, x);
  const f = Math.fround;
  const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
  const { d, h, hk } = r;
  const kh = Math.floor(hi / r.group);
  const slope = alibiSlope(r, bi, hi);
  const c = r.softcap;
  const S = new Float64Array(sk).fill(-Infinity);
  const t = c > 0 ? new Float64Array(sk) : null;
  let m = -Infinity;
  for (let j = 0; j < sk; j++) {
    if (!visible(r.left, r.right, row, j, sq, sk)) continue;
    let dot = 0;
    const qo = (row * h + hi) * d, ko = (j * hk + kh) * d;
    for (let e = 0; e < d; e++) dot += s.q[qo + e]! * s.ks[ko + e]!;
    let sj = rt(dot);
    if (t) {
      t[j] = rt(Math.tanh(rt(sj / c)));
      sj = rt(t[j]! * c);
    }
    if (r.alibi) sj = f(sj + f(-slope * Math.abs(row + sk - sq - j)));
    S[j] = sj;
    if (sj > m) m = sj;
  }
  const p32 = new Float64Array(sk);
  const pT = new Float64Array(sk);
  if (m === -Infinity) return { t, p32, pT, keep: null, lse: Infinity };
  let sum = 0;
  for (let j = 0; j < sk; j++) {
    p32[j] = S[j] === -Infinity ? 0 : f(Math.exp(f(S[j]! - m)));
    sum = f(sum + p32[j]!);
  }
  const keep = r.p > 0 ? dropoutKeepRow(r.seed, r.offset, h, bi, hi, row, sk, r.p) : null;
  for (let j = 0; j < sk; j++) {
    p32[j] = f(p32[j]! / sum);
    pT[j] = keep && !keep[j] ? 0 : rt(p32[j]!);
  }
  return { t, p32, pT, keep, lse: f(m + Math.log(sum)) };
}

/** out_pt of FA's tests, in `dtype`. Returns values as doubles (each one representable in dtype). */
export function attentionLowPrecision(pr: AttnProblem, dtype: DType): AttnResult {
  const r = resolve(pr);
  const { h, hk, dv } = r;
  const o: Float64Array[] = [], lse: Float64Array[] = [];
  for (let bi = 0; bi < r.b; bi++) {
    const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
    const s = prepSeq(pr, r, dtype, bi);
    const ob = new Float64Array(sq * h * dv), lb = new Float64Array(h * sq);
    for (let hi = 0; hi < h; hi++) {
      const kh = Math.floor(hi / r.group);
      for (let row = 0; row < sq; row++) {
        const rl = rowLp(pr, r, dtype, s, bi, hi, row);
        lb[hi * sq + row] = rl.lse;
        const acc = new Float64Array(dv);
        for (let j = 0; j < sk; j++) {
          const w = rl.pT[j]!;
          if (w === 0) continue;
          const vo = (j * hk + kh) * dv;
          for (let e = 0; e < dv; e++) acc[e] = acc[e]! + w * s.vs[vo + e]!;
        }
        for (let e = 0; e < dv; e++) ob[(row * h + hi) * dv + e] = roundTo(dtype, acc[e]!);
      }
    }
    o.push(ob);
    lse.push(lb);
  }
  return { o, lse };
}

/** Gradients of out_pt in `dtype` for upstream dO (per sequence [sq, h, dv]). softmaxD is rowsum(dO*O) in
 *  fp32 over the rounded out_pt. Compare the library's grads with tolerance mult 3 (FA's test_flash_attn_output). */
export function attentionBackwardLowPrecision(pr: AttnProblem, dO: ArrayLike<number>[], dtype: DType): Grads {
  const r = resolve(pr);
  const { h, hk, d, dv, group } = r;
  const rt = (x: number) => roundTo(dtype, x);
  const fwd = attentionLowPrecision(pr, dtype);
  const res: Grads = { dq: [], dk: [], dv: [], softmaxD: [] };
  for (let bi = 0; bi < r.b; bi++) {
    const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
    const s = prepSeq(pr, r, dtype, bi);
    const go = Float64Array.from(dO[bi]!, rt);
    const dq = new Float64Array(sq * h * d);
    const dksH = new Float64Array(sk * h * d);  // grad of the expanded, scaled k, per QUERY head
    const dvsH = new Float64Array(sk * h * dv); // grad of the expanded, scaled v, per query head
    const D = new Float64Array(h * sq);
    for (let hi = 0; hi < h; hi++) {
      const kh = Math.floor(hi / group);
      for (let row = 0; row < sq; row++) {
        const rl = rowLp(pr, r, dtype, s, bi, hi, row);
        const oo = (row * h + hi) * dv, qo = (row * h + hi) * d;
        let dsum = 0;
        for (let e = 0; e < dv; e++) dsum += go[oo + e]! * fwd.o[bi]![oo + e]!;
        D[hi * sq + row] = Math.fround(dsum);
        if (rl.lse === Infinity) continue;
        // dP (dropped entries get no gradient), then the softmax backward on the probabilities autograd saved.
        const dP = new Float64Array(sk);
        const pb = r.alibi ? rl.p32 : Float64Array.from(rl.p32, rt);
        let dot = 0;
        for (let j = 0; j < sk; j++) {
          const vo = (j * hk + kh) * dv;
          let acc = 0;
          for (let e = 0; e < dv; e++) {
            acc += go[oo + e]! * s.vs[vo + e]!;
            dvsH[(j * h + hi) * dv + e] = dvsH[(j * h + hi) * dv + e]! + rl.pT[j]! * go[oo + e]!;
          }
          dP[j] = rl.keep && !rl.keep[j] ? 0 : rt(acc);
          dot += dP[j]! * pb[j]!;
        }
        dot = Math.fround(dot);
        for (let j = 0; j < sk; j++) {
          if (pb[j] === 0) continue;
          let g = rt(pb[j]! * (dP[j]! - dot));
          if (rl.t) {
            const c = r.softcap;
            const dt = rt(g * c);
            const da = rt(dt * (1 - rl.t[j]! * rl.t[j]!));
            g = rt(da / c);
          }
          const ko = (j * hk + kh) * d;
          for (let e = 0; e < d; e++) {
            dq[qo + e] = dq[qo + e]! + g * s.ks[ko + e]!;
            dksH[(j * h + hi) * d + e] = dksH[(j * h + hi) * d + e]! + g * s.q[qo + e]!;
          }
        }
      }
    }
    res.dq.push(dq.map(rt));
    res.dk.push(sumGroups(dksH, sk, h, hk, d, (x) => rt(rt(x) * r.scale), rt));
    res.dv.push(sumGroups(dvsH, sk, h, hk, dv, (x) => (r.p > 0 ? rt(rt(x) * r.rpKeep) : rt(x)), rt));
    res.softmaxD.push(D);
  }
  return res;
}

/** [sk, h, n] per-query-head grads -> [sk, hk, n]: each one mapped by `perHead`, summed over the group,
 *  rounded once by `fin` (the backward of einops.repeat is a sum reduction). */
function sumGroups(g: Float64Array, sk: number, h: number, hk: number, n: number,
                   perHead: (x: number) => number, fin: (x: number) => number): Float64Array {
  const out = new Float64Array(sk * hk * n);
  const group = h / hk;
  for (let j = 0; j < sk; j++)
    for (let hi = 0; hi < h; hi++) {
      const kh = Math.floor(hi / group);
      for (let e = 0; e < n; e++) out[(j * hk + kh) * n + e] = out[(j * hk + kh) * n + e]! + perHead(g[(j * h + hi) * n + e]!);
    }
  return out.map(fin);
}
