import { describe, expect, test } from "bun:test";
import { attention } from "./attention.ts";
import { attentionBackward, attentionBackwardLowPrecision } from "./backward.ts";
import type { AttnProblem } from "./core.ts";
import { randomDout, randomProblem, type ProblemShape } from "./gen.ts";
import { Rng } from "./rng.ts";
import { flat } from "./tolerance.ts";

/** L = sum(O * dO): its gradient w.r.t. q/k/v is exactly what attentionBackward returns for dO. */
function loss(pr: AttnProblem, dO: Float64Array[]): number {
  const o = attention(pr).o;
  let s = 0;
  o.forEach((ob, i) => ob.forEach((x, e) => (s += x * dO[i]![e]!)));
  return s;
}

/** Checks every element of every gradient against a central difference with step eps. */
function checkFiniteDiff(shape: ProblemShape, seed: number, tol = 1e-6) {
  const rng = new Rng(seed);
  const pr = randomProblem(rng, shape);
  const dO = randomDout(rng, pr);
  const g = attentionBackward(pr, dO);
  const eps = 1e-5;
  let worst = 0;
  for (const which of ["q", "k", "v"] as const) {
    const grads = which === "q" ? g.dq : which === "k" ? g.dk : g.dv;
    for (let bi = 0; bi < pr.b; bi++) {
      const x = pr[which][bi] as Float64Array;
      for (let e = 0; e < x.length; e++) {
        const x0 = x[e]!;
        x[e] = x0 + eps;
        const lp = loss(pr, dO);
        x[e] = x0 - eps;
        const lm = loss(pr, dO);
        x[e] = x0;
        const fd = (lp - lm) / (2 * eps);
        const err = Math.abs(fd - grads[bi]![e]!);
        worst = Math.max(worst, err);
        if (err > tol) throw new Error(`d${which}[${bi}][${e}]: analytic ${grads[bi]![e]} vs finite difference ${fd}`);
      }
    }
  }
  return { pr, dO, g, worst };
}

describe("reference backward vs central finite differences", () => {
  test("plain", () => { checkFiniteDiff({ h: 2, d: 3, seqlensQ: [3], seqlensK: [4] }, 1); });
  test("causal, sq > sk (fully masked rows), GQA", () => {
    checkFiniteDiff({ h: 4, hk: 2, d: 3, dv: 2, seqlensQ: [5], seqlensK: [3], causal: true }, 2);
  });
  test("local window + ALiBi, varlen", () => {
    checkFiniteDiff({ h: 2, d: 3, seqlensQ: [4, 2], seqlensK: [6, 5], windowLeft: 1, windowRight: 2, alibiSlopes: [0.3, 0.7] }, 3);
  });
  test("softcap", () => { checkFiniteDiff({ h: 2, hk: 1, d: 4, seqlensQ: [3], seqlensK: [5], softcap: 1.5, std: 1.5, scale: 0.8 }, 4); });
  test("dropout (fixed mask), GQA, varlen", () => {
    checkFiniteDiff({ h: 4, hk: 1, d: 3, seqlensQ: [4, 3], seqlensK: [5, 7], dropoutP: 0.3, seed: 99n, offset: 5n, causal: true }, 5);
  });

  test("softmax_d = rowsum(dO * O) with dropout-applied O", () => {
    const rng = new Rng(6);
    const pr = randomProblem(rng, { h: 3, d: 4, dv: 5, seqlensQ: [6], seqlensK: [7], dropoutP: 0.25, seed: 3n });
    const dO = randomDout(rng, pr);
    const o = attention(pr).o[0]!;
    const D = attentionBackward(pr, dO).softmaxD[0]!;
    for (let hi = 0; hi < 3; hi++)
      for (let i = 0; i < 6; i++) {
        let s = 0;
        for (let c = 0; c < 5; c++) s += dO[0]![(i * 3 + hi) * 5 + c]! * o[(i * 3 + hi) * 5 + c]!;
        expect(Math.abs(D[hi * 6 + i]! - s)).toBeLessThan(1e-12);
      }
  });
});

describe("low-precision backward", () => {
  const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    return m;
  };
  for (const opts of [{}, { causal: true, softcap: 4 }, { alibiSlopes: [0.2, 0.4], dropoutP: 0.2, seed: 8n }] as Partial<ProblemShape>[]) {
    test(`fp32 near f64, fp16 off by dtype-size error ${JSON.stringify(opts, (_k, v) => (typeof v === "bigint" ? `${v}` : v))}`, () => {
      const rng = new Rng(7);
      const pr = randomProblem(rng, { h: 2, hk: 1, d: 8, seqlensQ: [9, 4], seqlensK: [11, 6], dtype: "float16", ...opts });
      const dO = randomDout(rng, pr, "float16");
      const ref = attentionBackward(pr, dO);
      const g32 = attentionBackwardLowPrecision(pr, dO, "float32");
      const g16 = attentionBackwardLowPrecision(pr, dO, "float16");
      for (const k of ["dq", "dk", "dv"] as const) {
        const scaleOf = Math.max(1e-3, ...flat(ref[k]).map(Math.abs));
        expect(maxAbs(flat(ref[k]), flat(g32[k])) / scaleOf).toBeLessThan(1e-5);
        const e16 = maxAbs(flat(ref[k]), flat(g16[k])) / scaleOf;
        expect(e16).toBeGreaterThan(1e-6);
        expect(e16).toBeLessThan(2e-2);
      }
      expect(maxAbs(flat(ref.softmaxD), flat(g32.softmaxD))).toBeLessThan(1e-4);
    });
  }
});
