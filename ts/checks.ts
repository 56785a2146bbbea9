// Tensor checks done in TS before any FFI call: shapes, dtypes, devices, unit last-dim stride.
import type { DType } from "./dtype.ts";
import { invalid } from "./errors.ts";
import type { Device, Tensor } from "./tensor.ts";

export class Checker {
  device: Device | undefined;
  constructor(readonly op: string) {}

  /** `t` must be a Tensor of rank `rank`, dtype `dtype` (if given), last dim contiguous, on the shared device. */
  tensor(name: string, t: unknown, rank: number, dtype?: DType): Tensor {
    const x = t as Tensor;
    if (!x || typeof x !== "object" || !Array.isArray(x.shape)) throw invalid(this.op, `${name} must be a Tensor`);
    if (x.shape.length !== rank) throw invalid(this.op, `${name} must have rank ${rank}, got shape [${x.shape}]`);
    if (dtype && x.dtype !== dtype) throw invalid(this.op, `${name}.dtype=${x.dtype} must be ${dtype}`);
    if (rank > 1 && x.strides[rank - 1] !== 1 && x.shape[rank - 1]! > 1)
      throw invalid(this.op, `${name} must have a contiguous last dimension (stride ${x.strides[rank - 1]})`);
    if (this.device === undefined) this.device = x.device;
    else if (x.device !== this.device)
      throw invalid(this.op, `${name} is on device ${x.device} but the other tensors are on ${this.device}`);
    return x;
  }

  optional(name: string, t: unknown, rank: number, dtype?: DType): Tensor | undefined {
    return t === undefined || t === null ? undefined : this.tensor(name, t, rank, dtype);
  }

  shape(name: string, t: Tensor, expected: readonly number[]): void {
    if (t.shape.length !== expected.length || t.shape.some((n, i) => n !== expected[i]))
      throw invalid(this.op, `${name} must have shape [${expected}], got [${t.shape}]`);
  }

  int(name: string, v: unknown, min: number, max = 2 ** 31 - 1): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
      throw invalid(this.op, `${name}=${String(v)} must be an integer in ${min}..${max}`);
    return v;
  }

  num(name: string, v: unknown, ok: (x: number) => boolean, rule: string): number {
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw invalid(this.op, `${name}=${String(v)} ${rule}`);
    return v;
  }
}
