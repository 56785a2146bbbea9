// The argument errors documented on flashAttnBackward (ts/backward.ts): raised in TS before any library call,
// as FlashInvalidArgumentError naming the tensor.
import { describe, expect, test } from "bun:test";
import { FlashInvalidArgumentError, Tensor, flashAttn, flashAttnBackward } from "../ts/index.ts";

const [b, sq, sk, h, hk, d] = [1, 5, 7, 4, 2, 16];
const T = (shape: number[], dtype: "float32" | "float16" = "float32") => Tensor.from(new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(0.25), shape, dtype);

describe("flashAttnBackward argument checks", () => {
  // Small host tensors shared by the tests (freed with the process).
  const q = T([b, sq, h, d]), k = T([b, sk, hk, d]), v = T([b, sk, hk, d]), dout = T([b, sq, h, d]);
  const { out, lse } = flashAttn(q, k, v, { returnLse: true }) as { out: Tensor; lse: Tensor };
  const bad = (fn: () => unknown, msg: RegExp) => {
    expect(fn).toThrow(FlashInvalidArgumentError);
    expect(fn).toThrow(msg);
  };

  test("valid call runs", () => {
    const g = flashAttnBackward(dout, q, k, v, out, lse);
    expect(g.dk.shape).toEqual([b, sk, hk, d]);
    for (const t of [g.dq, g.dk, g.dv]) t.dispose();
  });
  test("lse of the wrong shape or dtype", () => {
    using l2 = T([b, sq, h]);
    bad(() => flashAttnBackward(dout, q, k, v, out, l2), /lse must have shape \[1,4,5\]/);
    using l3 = T([b, h, sq], "float16");
    bad(() => flashAttnBackward(dout, q, k, v, out, l3), /lse.dtype=float16 must be float32/);
  });
  test("dout of another dtype, preallocated dq of another shape", () => {
    using d16 = T([b, sq, h, d], "float16");
    bad(() => flashAttnBackward(d16, q, k, v, out, lse), /dout.dtype=float16 must be float32/);
    using dq = T([b, sq, h, d + 1]);
    bad(() => flashAttnBackward(dout, q, k, v, out, lse, { dq }), /dq must have shape/);
  });
  test("non-contiguous lse (the ABI has no LSE strides)", () => {
    // Device tensors over a dummy address: the check must fire before anything touches the memory.
    const dev = (shape: number[], strides?: number[]) => Tensor.fromDevicePtr(0x1000, "float16", shape, { strides });
    const l = Tensor.fromDevicePtr(0x1000, "float32", [b, h, sq], { strides: [h * sq * 2, sq * 2, 1] });
    bad(() => flashAttnBackward(dev([b, sq, h, d]), dev([b, sq, h, d]), dev([b, sk, hk, d]), dev([b, sk, hk, d]), dev([b, sq, h, d]), l),
      /lse must be contiguous/);
  });
});
