// flashAttnWithKVCache with cacheSeqlens given as one number: the library's cached per-(stream, device) buffer
// must hold the number of *this* call. A decode loop (the number grows every step, repeats, b changes) is run
// twice on the same inputs, once with numbers and once with int32 tensors; out, LSE and the appended cache must
// be bitwise equal. On the CPU always; on the GPU (legacy stream and a user Stream) when one is present.
import { describe, expect, test } from "bun:test";
import { Stream, Tensor, flashAttnWithKVCache, hasCuda, synchronizeSync, type Device } from "../ts/index.ts";

const H = 4, HK = 2, D = 32, CAP = 64;
// (b, rows in the cache before the step): growing, repeated (no upload needed), smaller b, larger b again
const STEPS: [number, number][] = [[3, 5], [3, 6], [3, 7], [3, 7], [2, 9], [4, 12]];

function vals(n: number, seed: number) {
  return Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed * 1.3));
}

function decode(dev: Device, asNumber: boolean, stream?: Stream): Float32Array[] {
  const got: Float32Array[] = [];
  using kc = Tensor.from(vals(4 * CAP * HK * D, 1), [4, CAP, HK, D], "bfloat16", dev);
  using vc = Tensor.from(vals(4 * CAP * HK * D, 2), [4, CAP, HK, D], "bfloat16", dev);
  for (const [s, [b, rows]] of STEPS.entries()) {
    using q = Tensor.from(vals(b * H * D, 10 + s), [b, 1, H, D], "bfloat16", dev);
    using k = Tensor.from(vals(b * HK * D, 20 + s), [b, 1, HK, D], "bfloat16", dev);
    using v = Tensor.from(vals(b * HK * D, 30 + s), [b, 1, HK, D], "bfloat16", dev);
    using cs = asNumber ? undefined : Tensor.from(new Array(b).fill(rows), [b], "int32", dev);
    using bidx = Tensor.from(Array.from({ length: b }, (_, i) => i), [b], "int32", dev); // cache rows 0..b-1
    const { out, lse } = flashAttnWithKVCache(q, kc, vc, {
      k, v, cacheSeqlens: cs ?? rows, cacheBatchIdx: bidx, causal: true, returnLse: true, stream,
    });
    if (stream) stream.synchronizeSync();
    got.push(out.toFloat32Array(), lse!.toFloat32Array());
    out.dispose();
    lse!.dispose();
  }
  if (dev !== "cpu") synchronizeSync();
  got.push(kc.toFloat32Array(), vc.toFloat32Array());
  return got;
}

function expectSame(a: Float32Array[], b: Float32Array[]) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    let bad = 0;
    for (let j = 0; j < x.length; j++) if (!Object.is(x[j], y[j])) bad++;
    expect(`array ${i}: ${bad} differences`).toBe(`array ${i}: 0 differences`);
  }
}

describe("cacheSeqlens as a number", () => {
  test("cpu: decode steps equal the int32-tensor form", () => expectSame(decode("cpu", true), decode("cpu", false)));
  test.skipIf(!hasCuda())("cuda legacy stream: decode steps equal the int32-tensor form", () =>
    expectSame(decode(0, true), decode(0, false)));
  test.skipIf(!hasCuda())("cuda user stream: decode steps equal the int32-tensor form", () => {
    using s = new Stream();
    expectSame(decode(0, true, s), decode(0, false, s));
  });
});
