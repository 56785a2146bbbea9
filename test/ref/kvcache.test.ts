import { describe, expect, test } from "bun:test";
import { attention } from "./attention.ts";
import { kvcacheForward, type KvCacheProblem } from "./kvcache.ts";
import { randInt, randn, Rng } from "./rng.ts";

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** cos/sin tables [seqlenRo, dim/2] with theta(pos, j) = pos * 10000^(-2j/dim), as RoPE defines them. */
function ropeTables(seqlenRo: number, dim: number) {
  const half = dim / 2, cos = new Float64Array(seqlenRo * half), sin = new Float64Array(seqlenRo * half);
  for (let p = 0; p < seqlenRo; p++)
    for (let j = 0; j < half; j++) {
      const th = p * 10000 ** ((-2 * j) / dim);
      cos[p * half + j] = Math.cos(th);
      sin[p * half + j] = Math.sin(th);
    }
  return { cos, sin };
}

/** Independent rotation: multiply the complex number (x[i1] + i x[i2]) by e^{i theta}. */
function rotateComplex(x: ArrayLike<number>, d: number, dim: number, pos: number, interleaved: boolean): Float64Array {
  const out = Float64Array.from(x).subarray(0, d);
  for (let j = 0; j < dim / 2; j++) {
    const th = pos * 10000 ** ((-2 * j) / dim);
    const [i1, i2] = interleaved ? [2 * j, 2 * j + 1] : [j, j + dim / 2];
    const re = x[i1]! * Math.cos(th) - x[i2]! * Math.sin(th);
    const im = x[i1]! * Math.sin(th) + x[i2]! * Math.cos(th);
    out[i1] = re;
    out[i2] = im;
  }
  return out;
}

function denseProblem(rng: Rng, over: Partial<KvCacheProblem> = {}): KvCacheProblem {
  const b = 2, h = 4, hk = 2, d = 8, cap = 12, seqlenQ = 3, nNew = 2;
  return {
    b, h, hk, d, seqlenQ, cap,
    q: [0, 1].map(() => randn(seqlenQ * h * d, rng)),
    kCache: randn(b * cap * hk * d, rng),
    vCache: randn(b * cap * hk * d, rng),
    cacheSeqlens: [5, 9],
    knew: [0, 1].map(() => randn(nNew * hk * d, rng)),
    vnew: [0, 1].map(() => randn(nNew * hk * d, rng)),
    seqlenKnew: nNew,
    ...over,
  };
}

describe("kvcache reference", () => {
  for (const interleaved of [true, false])
    for (const dim of [8, 4]) // full and partial rotary
      for (const causal of [true, false])
        test(`rotary ${interleaved ? "interleaved" : "NeoX"} dim=${dim} causal=${causal}: append + q positions`, () => {
          const rng = new Rng(1);
          const { cos, sin } = ropeTables(16, dim);
          const pr = denseProblem(rng, { rotary: { cos, sin, dim, interleaved }, causal, leftpad: [1, 0] });
          const res = kvcacheForward(pr);
          const { hk, d, h, cap } = { hk: 2, d: 8, h: 4, cap: 12 };
          for (let i = 0; i < 2; i++) {
            const cs = pr.cacheSeqlens[i]!;
            // Cache rows [cs, cs + 2) hold rotated knew (position cs + r); V is copied; other rows unchanged.
            for (let t = 0; t < cap; t++)
              for (let kh = 0; kh < hk; kh++) {
                const at = ((i * cap + t) * hk + kh) * d;
                const got = res.kCache.subarray(at, at + d), gotV = res.vCache.subarray(at, at + d);
                if (t >= cs && t < cs + 2) {
                  const src = (pr.knew![i]! as Float64Array).slice(((t - cs) * hk + kh) * d, ((t - cs) * hk + kh + 1) * d);
                  expect(maxAbsDiff(got, rotateComplex(src, d, dim, t, interleaved))).toBeLessThan(1e-12);
                  expect(Array.from(gotV)).toEqual(Array.from((pr.vnew![i]! as Float64Array).slice(((t - cs) * hk + kh) * d, ((t - cs) * hk + kh + 1) * d)));
                } else {
                  expect(Array.from(got)).toEqual(Array.from(Float64Array.from(pr.kCache).subarray(at, at + d)));
                }
              }
            // q row r at position cs + r (causal) or cs (not).
            for (let r = 0; r < 3; r++)
              for (let hh = 0; hh < h; hh++) {
                const at = (r * h + hh) * d;
                const want = rotateComplex((pr.q[i]! as Float64Array).slice(at, at + d) as Float64Array, d, dim, causal ? cs + r : cs, interleaved);
                expect(maxAbsDiff(res.qRot[i]!.subarray(at, at + d), want)).toBeLessThan(1e-12);
              }
          }
        });

  test("local window also rotates q row r at cs + r; rounding to dtype applies", () => {
    const rng = new Rng(2);
    const { cos, sin } = ropeTables(16, 8);
    const pr = denseProblem(rng, { rotary: { cos, sin, dim: 8, interleaved: false }, windowLeft: 3, dtype: "bfloat16" });
    const res = kvcacheForward(pr);
    const at = (2 * 4 + 1) * 8;
    const want = rotateComplex((pr.q[1]! as Float64Array).slice(at, at + 8) as Float64Array, 8, 8, 9 + 2, false);
    expect(maxAbsDiff(res.qRot[1]!.subarray(at, at + 8), want)).toBeLessThan(2 ** -7 * 4);
  });

  test("attends over buffer rows [leftpad, cache_seqlens + knew) with the right mask", () => {
    const rng = new Rng(3);
    const pr = denseProblem(rng, { causal: true, leftpad: [2, 4] });
    const res = kvcacheForward(pr);
    const k: Float64Array[] = [], v: Float64Array[] = [], sks: number[] = [];
    for (let i = 0; i < 2; i++) {
      const lp = pr.leftpad![i]!, end = pr.cacheSeqlens[i]! + 2;
      k.push(res.kCache.slice((i * 12 + lp) * 16, (i * 12 + end) * 16));
      v.push(res.vCache.slice((i * 12 + lp) * 16, (i * 12 + end) * 16));
      sks.push(end - lp);
    }
    expect(sks).toEqual([5, 7]);
    const want = attention({ b: 2, h: 4, hk: 2, d: 8, seqlensQ: [3, 3], seqlensK: sks, q: pr.q, k, v, causal: true });
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(res.o[i]!, want.o[i]!)).toBe(0);
    // The knew rows really are part of the keys: changing vnew changes the output.
    const pr2 = { ...pr, vnew: pr.vnew!.map((x) => Float64Array.from(x, (y) => y + 1)) };
    expect(maxAbsDiff(kvcacheForward(pr2).o[0]!, res.o[0]!)).toBeGreaterThan(1e-3);
  });

  test("paged gather equals dense gather (append, rotary, causal)", () => {
    const rng = new Rng(4);
    const { cos, sin } = ropeTables(16, 8);
    const dense = denseProblem(rng, { rotary: { cos, sin, dim: 8, interleaved: true }, causal: true });
    const pageSize = 3, maxBlocks = 4, numPages = 10, row = 2 * 8;
    const bt = [7, 2, 9, 0, /**/ 5, 1, 8, 3];
    const pool = (src: ArrayLike<number>) => {
      const p = randn(numPages * pageSize * row, rng); // garbage in unused pages
      for (let i = 0; i < 2; i++)
        for (let t = 0; t < 12; t++) {
          const pr = bt[i * maxBlocks + Math.floor(t / pageSize)]! * pageSize + (t % pageSize);
          for (let e = 0; e < row; e++) p[pr * row + e] = src[(i * 12 + t) * row + e]!;
        }
      return p;
    };
    const paged: KvCacheProblem = {
      ...dense, cap: undefined, kCache: pool(dense.kCache), vCache: pool(dense.vCache), paged: { blockTable: bt, maxBlocks, pageSize, numPages },
    };
    const a = kvcacheForward(dense), b = kvcacheForward(paged);
    for (let i = 0; i < 2; i++) {
      expect(maxAbsDiff(a.o[i]!, b.o[i]!)).toBe(0);
      expect(Array.from(a.lse[i]!)).toEqual(Array.from(b.lse[i]!));
    }
    // the appended rows went to the right page: seq 1 token 9 -> page bt[4 + 3] = 3, row 0
    expect(Array.from(b.kCache.subarray(3 * pageSize * row, 3 * pageSize * row + row)))
      .toEqual(Array.from(a.kCache.subarray((12 + 9) * row, (12 + 10) * row)));
    expect(() => kvcacheForward({ ...paged, cacheBatchIdx: [0, 1] })).toThrow();
  });

  test("cache_batch_idx reads and writes the named cache row", () => {
    const rng = new Rng(5);
    const base = denseProblem(rng, { bK: 3, kCache: randn(3 * 12 * 16, rng), vCache: randn(3 * 12 * 16, rng) });
    const res = kvcacheForward({ ...base, cacheBatchIdx: [2, 0] });
    // Same as running with cache rows permuted so that row i holds what idx names.
    const perm = (c: ArrayLike<number>) => Float64Array.from({ length: 2 * 12 * 16 }, (_, e) => c[(e < 192 ? 2 * 192 : 0) + (e % 192)]!);
    const ref = kvcacheForward({ ...base, kCache: perm(base.kCache), vCache: perm(base.vCache) });
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(res.o[i]!, ref.o[i]!)).toBe(0);
    expect(Array.from(res.kCache.subarray(192, 384))).toEqual(Array.from(Float64Array.from(base.kCache).subarray(192, 384))); // row 1 untouched
    expect(Array.from(res.vCache.subarray(2 * 192 + 5 * 16, 2 * 192 + 6 * 16))).toEqual(Array.from((base.vnew![0]! as Float64Array).slice(0, 16)));
  });

  test("no knew: attends over [leftpad, cache_seqlens); capacity is checked", () => {
    const rng = new Rng(6);
    const pr = denseProblem(rng, { knew: undefined, vnew: undefined, seqlenKnew: 0, cacheSeqlens: [randInt(rng, 1, 12), 12] });
    const res = kvcacheForward(pr);
    expect(res.problem.seqlensK).toEqual([pr.cacheSeqlens[0]!, 12]);
    expect(() => kvcacheForward(denseProblem(rng, { cacheSeqlens: [11, 3] }))).toThrow(/capacity/);
  });
});
