// flash_last_kernel(): the GPU suites assert which forward path ran through it, so its own contract is
// checked here on the CPU backend: the path of a successful call, "" after a failed one.
import { expect, test } from "bun:test";
import { FlashInvalidArgumentError, Tensor, flashAttn, lastKernel } from "../ts/index.ts";

const T = (shape: number[]) => Tensor.from(new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape, "float32");

test("lastKernel names the CPU path after a call and is empty after a failure", () => {
  flashAttn(T([1, 3, 2, 8]), T([1, 5, 2, 8]), T([1, 5, 2, 8]));
  expect(lastKernel()).toBe("cpu");
  // h_k = 3 does not divide h = 2: rejected in validation, nothing runs.
  expect(() => flashAttn(T([1, 3, 2, 8]), T([1, 5, 3, 8]), T([1, 5, 3, 8]))).toThrow(FlashInvalidArgumentError);
  expect(lastKernel()).toBe("");
});
