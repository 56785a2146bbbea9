// Float64 analytic gradients of the reference forward (attention.ts), for an upstream gradient dO.
// Per row with probabilities P (before dropout), dropout factors Z (1/(1-p) kept, 0 dropped; 1 without
// dropout), x = scale*q.k and s = softcap(x) + alibi:
//   O = sum_j P_j Z_j V_j
//   dV_j += P_j Z_j dO            dP_j = Z_j (dO . V_j)
//   D    = sum_j P_j dP_j = dO . O            (FA2's softmax_d / dsoftmax_sum)
//   dS_j = P_j (dP_j - D)         dX_j = dS_j * (1 - tanh^2(x_j / softcap))   (softcap only)
//   dQ   += scale * dX_j K_j      dK_j += scale * dX_j Q
// ALiBi and the mask are constants, so they have no gradient of their own. GQA sums dK/dV over the query
// heads that share a KV head.
import { type AttnProblem, type Grads, resolve, rowProbs } from "./core.ts";

export type { Grads } from "./core.ts";
export { attentionBackwardLowPrecision } from "./lowprec.ts";

/** dO[i] is [sq_i, h, dv]. Returns dq/dk/dv per sequence and softmaxD[i] [h, sq_i] (0 for rows that see no key). */
export function attentionBackward(pr: AttnProblem, dO: ArrayLike<number>[]): Grads {
  const r = resolve(pr);
  const { h, hk, d, dv, scale, softcap } = r;
  if (dO.length !== r.b) throw new Error(`dO has ${dO.length} entries, expected b=${r.b}`);
  const res: Grads = { dq: [], dk: [], dv: [], softmaxD: [] };
  for (let bi = 0; bi < r.b; bi++) {
    const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
    const q = r.q[bi]!, k = r.k[bi]!, v = r.v[bi]!, go = dO[bi]!;
    if (go.length < sq * h * dv) throw new Error(`dO[${bi}] shorter than [${sq}, ${h}, ${dv}]`);
    const dq = new Float64Array(sq * h * d);
    const dk = new Float64Array(sk * hk * d);
    const dvv = new Float64Array(sk * hk * dv);
    const D = new Float64Array(h * sq);
    for (let hi = 0; hi < h; hi++) {
      const kh = Math.floor(hi / r.group);
      for (let row = 0; row < sq; row++) {
        const rp = rowProbs(pr, r, bi, hi, row);
        if (rp.lse === Infinity) continue; // no visible key: O = 0, every gradient 0, D = 0
        const oo = (row * h + hi) * dv, qo = (row * h + hi) * d;
        const dP = new Float64Array(sk);
        let Dr = 0;
        for (let j = 0; j < sk; j++) {
          const pj = rp.p[j]!;
          if (pj === 0) continue;
          const zj = rp.z ? rp.z[j]! : 1;
          const vo = (j * hk + kh) * dv;
          let dot = 0;
          for (let e = 0; e < dv; e++) {
            dot += go[oo + e]! * v[vo + e]!;
            dvv[vo + e] = dvv[vo + e]! + pj * zj * go[oo + e]!;
          }
          dP[j] = zj * dot;
          Dr += pj * dP[j]!;
        }
        D[hi * sq + row] = Dr;
        for (let j = 0; j < sk; j++) {
          const pj = rp.p[j]!;
          if (pj === 0) continue;
          let g = pj * (dP[j]! - Dr);
          if (softcap > 0) {
            const th = Math.tanh(rp.x[j]! / softcap);
            g *= 1 - th * th;
          }
          g *= scale;
          const ko = (j * hk + kh) * d;
          for (let e = 0; e < d; e++) {
            dq[qo + e] = dq[qo + e]! + g * k[ko + e]!;
            dk[ko + e] = dk[ko + e]! + g * q[qo + e]!;
          }
        }
      }
    }
    res.dq.push(dq);
    res.dk.push(dk);
    res.dv.push(dvv);
    res.softmaxD.push(D);
  }
  return res;
}
