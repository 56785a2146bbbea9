// Random attention problems for tests: normal q/k/v per sequence, optionally rounded to a storage dtype so
// that the reference sees exactly the values a library buffer would hold.
import { roundTo, type AttnDType as DType } from "../../ts/dtype.ts";
import type { AttnOptions, AttnProblem } from "./core.ts";
import { randn, type Rng } from "./rng.ts";

export interface ProblemShape extends AttnOptions {
  h: number;
  hk?: number; // default h
  d: number;
  dv?: number; // default d
  seqlensQ: number[];
  seqlensK: number[];
  dtype?: DType; // round the inputs to this dtype
  std?: number;  // input scale, default 1
}

export function randomProblem(rng: Rng, s: ProblemShape): AttnProblem {
  const { h, d, seqlensQ, seqlensK } = s;
  const hk = s.hk ?? h, dv = s.dv ?? d, b = seqlensQ.length;
  const mk = (n: number) => {
    const x = randn(n, rng, s.std ?? 1);
    return s.dtype ? x.map((v) => roundTo(s.dtype!, v)) : x;
  };
  const { dtype: _dtype, std: _std, ...opts } = s;
  return {
    ...opts, b, h, hk, d, dv, seqlensQ, seqlensK,
    q: seqlensQ.map((sq) => mk(sq * h * d)),
    k: seqlensK.map((sk) => mk(sk * hk * d)),
    v: seqlensK.map((sk) => mk(sk * hk * dv)),
  };
}

/** Random dO matching a problem's outputs ([sq_i, h, dv] per sequence). */
export function randomDout(rng: Rng, pr: AttnProblem, dtype?: DType): Float64Array[] {
  return pr.seqlensQ.map((sq) => {
    const x = randn(sq * pr.h * (pr.dv ?? pr.d), rng);
    return dtype ? x.map((v) => roundTo(dtype, v)) : x;
  });
}
