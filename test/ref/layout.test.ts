import { describe, expect, test } from "bun:test";
import { roundTo } from "../../ts/dtype.ts";
import {
  allocStorage, batchIdxRows, contiguousStrides, cuSeqlens, decodeAll, denseRows, gather, gatherLse, pagedRows,
  roundArray, scatter, scatterLse, varlenRows,
} from "./layout.ts";
import { randn, Rng } from "./rng.ts";

const rng = new Rng(11);
const lens = [3, 0, 5];
const h = 2, d = 3;
const seqs = lens.map((s) => randn(s * h * d, rng));

describe("layout", () => {
  for (const dtype of ["float16", "bfloat16", "float32"] as const) {
    test(`dense with padded strides round-trips (${dtype}), padding untouched`, () => {
      const st = { batch: 7 * 20, row: 20, head: 8 }; // rows of 20 elements, heads 8 apart, dim 3
      const buf = allocStorage(dtype, 3 * st.batch);
      scatter(dtype, buf, seqs, lens, h, d, st.head, denseRows(st));
      const back = gather(dtype, buf, lens, h, d, st.head, denseRows(st));
      back.forEach((x, i) => expect(Array.from(x)).toEqual(Array.from(roundArray(dtype, seqs[i]!))));
      let touched = 0;
      decodeAll(dtype, buf).forEach((x) => (touched += x !== 0 ? 1 : 0));
      expect(touched).toBeLessThanOrEqual((3 + 5) * h * d);
    });
  }

  test("varlen packed rows follow cu_seqlens", () => {
    const cu = cuSeqlens(lens);
    expect(Array.from(cu)).toEqual([0, 3, 3, 8]);
    const st = contiguousStrides(0, h, d);
    const buf = allocStorage("float32", 8 * h * d);
    scatter("float32", buf, seqs, lens, h, d, st.head, varlenRows(cu, st));
    // Sequence 2, row 1, head 1, dim 2 lives at packed row 3 + 1.
    expect(buf[(4 * h + 1) * d + 2]).toBe(Math.fround(seqs[2]![(1 * h + 1) * d + 2]!));
  });

  test("paged gather equals dense gather; batch-idx rows", () => {
    const pageSize = 2, maxBlocks = 3, st = contiguousStrides(pageSize, h, d);
    const bt = [4, 0, 2, /**/ 1, 5, 6, /**/ 3, 7, 8]; // sequence 2 needs 3 pages
    const pool = allocStorage("bfloat16", 9 * st.batch);
    scatter("bfloat16", pool, seqs, lens, h, d, st.head, pagedRows(bt, maxBlocks, pageSize, st));
    const paged = gather("bfloat16", pool, lens, h, d, st.head, pagedRows(bt, maxBlocks, pageSize, st));
    const dst = contiguousStrides(6, h, d);
    const dense = allocStorage("bfloat16", 3 * dst.batch);
    scatter("bfloat16", dense, seqs, lens, h, d, dst.head, denseRows(dst));
    const dg = gather("bfloat16", dense, lens, h, d, dst.head, denseRows(dst));
    paged.forEach((x, i) => expect(Array.from(x)).toEqual(Array.from(dg[i]!)));
    // token 3 of sequence 2 is in page bt[2*3 + 1] = 7, row 1.
    expect(pool[7 * st.batch + 1 * st.row]).toBe(dense[2 * dst.batch + 3 * dst.row]!);
    // cache_batch_idx: sequence i in batch row idx[i]
    const idx = [2, 0, 1];
    const viaIdx = gather("bfloat16", dense, [3, 5, 0], h, d, dst.head, batchIdxRows(idx, dst));
    expect(Array.from(viaIdx[0]!)).toEqual(Array.from(dg[2]!.subarray(0, 3 * h * d)));
    expect(() => pagedRows(bt, maxBlocks, pageSize, st)(0, 6)).toThrow(); // column 3 of a 3-column table
  });

  test("LSE dense [b, h, sq] and varlen [h, total] round-trip", () => {
    const lse = lens.map((s) => randn(h * s, rng).map((x) => roundTo("float32", x)));
    const dense = new Float32Array(3 * h * 5);
    scatterLse(dense, lse, lens, h, { seqlenQ: 5 });
    expect(gatherLse(dense, lens, h, { seqlenQ: 5 }).map((x) => Array.from(x))).toEqual(lse.map((x) => Array.from(x)));
    expect(dense[(2 * h + 1) * 5 + 4]).toBe(lse[2]![1 * 5 + 4]!);
    const cu = cuSeqlens(lens), vl = new Float32Array(h * 8);
    scatterLse(vl, lse, lens, h, { cu, totalQ: 8 });
    expect(vl[1 * 8 + 3 + 4]).toBe(lse[2]![1 * 5 + 4]!);
    expect(gatherLse(vl, lens, h, { cu, totalQ: 8 }).map((x) => Array.from(x))).toEqual(lse.map((x) => Array.from(x)));
  });
});
