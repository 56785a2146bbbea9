// Float64 reference forward: O = softmax(mask(softcap(scale*QK^T) + alibi)) * dropout * V, per sequence,
// with GQA. Every number is a double; the inputs are taken at face value (round them to the storage dtype
// first, with layout.ts / roundArray, when comparing with the library).
import { type AttnProblem, type AttnResult, resolve, rowProbs } from "./core.ts";

export type { AttnOptions, AttnProblem, AttnResult } from "./core.ts";
export { attentionLowPrecision } from "./lowprec.ts";

/** Reference forward. A row with no visible key has O = 0 and LSE = +inf. LSE is taken before dropout. */
export function attention(pr: AttnProblem): AttnResult {
  const r = resolve(pr);
  const { h, hk, dv } = r;
  const o: Float64Array[] = [];
  const lse: Float64Array[] = [];
  for (let bi = 0; bi < r.b; bi++) {
    const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
    const v = r.v[bi]!;
    const ob = new Float64Array(sq * h * dv);
    const lb = new Float64Array(h * sq);
    for (let hi = 0; hi < h; hi++) {
      const kh = Math.floor(hi / r.group);
      for (let row = 0; row < sq; row++) {
        const rp = rowProbs(pr, r, bi, hi, row);
        lb[hi * sq + row] = rp.lse;
        const oo = (row * h + hi) * dv;
        for (let j = 0; j < sk; j++) {
          const w = rp.z ? rp.p[j]! * rp.z[j]! : rp.p[j]!;
          if (w === 0) continue;
          const vo = (j * hk + kh) * dv;
          for (let c = 0; c < dv; c++) ob[oo + c] = ob[oo + c]! + w * v[vo + c]!;
        }
      }
    }
    o.push(ob);
    lse.push(lb);
  }
  return { o, lse };
}

/** The full probability matrix of (sequence bi, head hi): [sq, sk], after dropout when `afterDropout`
 *  (dropped = 0, kept scaled by 1/(1-p)). For tests of the mask, the softmax and the dropout fraction. */
export function attentionProbs(pr: AttnProblem, bi: number, hi: number, afterDropout = false): Float64Array {
  const r = resolve(pr);
  const sq = pr.seqlensQ[bi]!, sk = pr.seqlensK[bi]!;
  const out = new Float64Array(sq * sk);
  for (let row = 0; row < sq; row++) {
    const rp = rowProbs(pr, r, bi, hi, row);
    for (let j = 0; j < sk; j++) out[row * sk + j] = afterDropout && rp.z ? rp.p[j]! * rp.z[j]! : rp.p[j]!;
  }
  return out;
}
