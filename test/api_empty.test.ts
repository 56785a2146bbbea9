// Empty problems (b, seqlen_q or seqlen_k of 0) are valid: they must not crash, and they follow the
// documented shortcuts (seqlen_k == 0: O = 0, LSE = +inf).
import { expect, test } from "bun:test";
import { Tensor, flashAttn, flashAttnWithKVCache } from "../ts/index.ts";

const T = (shape: number[]) => Tensor.from(new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape, "float32");

test("flashAttn with b, seqlen_q or seqlen_k of 0", () => {
  expect(flashAttn(T([0, 4, 2, 8]), T([0, 4, 2, 8]), T([0, 4, 2, 8])).out.shape).toEqual([0, 4, 2, 8]);
  expect(flashAttn(T([1, 0, 2, 8]), T([1, 4, 2, 8]), T([1, 4, 2, 8]), { numSplits: 0 }).out.shape).toEqual([1, 0, 2, 8]);
  const out = Tensor.empty([1, 3, 2, 8], "float32").fillBytes(0xff);
  const r = flashAttn(T([1, 3, 2, 8]), T([1, 0, 2, 8]), T([1, 0, 2, 8]), { out, returnLse: true });
  expect(Array.from(r.out.toFloat32Array()).every((x) => x === 0)).toBe(true);
  expect(Array.from(r.lse!.toFloat32Array()).every((x) => x === Infinity)).toBe(true);
});

test("flashAttnWithKVCache with seqlen_q of 0 and the split heuristic", () => {
  const cache = T([2, 16, 1, 8]);
  const knew = Tensor.from(new Array(2 * 1 * 1 * 8).fill(0.25), [2, 1, 1, 8], "float32");
  const r = flashAttnWithKVCache(T([2, 0, 2, 8]), cache, T([2, 16, 1, 8]), { cacheSeqlens: 3, k: knew, v: knew, numSplits: 0 });
  expect(r.out.shape).toEqual([2, 0, 2, 8]);
  // the new row was still appended at position 3 of each sequence
  expect(Array.from(cache.toFloat32Array().slice(3 * 8, 4 * 8))).toEqual(new Array(8).fill(0.25));
});
