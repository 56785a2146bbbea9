// Tensor: a typed view {ptr, dtype, shape, strides, device} over memory libflash reads or writes.
// Device tensors wrap any CUDA pointer without copying (fromDevicePtr: the caller owns it) or own an
// allocation (empty/from: freed by dispose()). Host tensors own an ArrayBuffer (its address is stable).
import { ptr as hostAddress, type Pointer } from "bun:ffi";
import { DTYPE_BYTES, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, isDType, type DType } from "./dtype.ts";
import { MemcpyKind, checkPtr, deviceFree, deviceMalloc, memcpy, memset } from "./device.ts";
import { FlashDisposedError, invalid } from "./errors.ts";
import type { DevicePtr } from "./params.ts";

/** "cpu" or a CUDA device index. */
export type Device = "cpu" | number;

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function checkShape(op: string, shape: readonly number[], strides: readonly number[]) {
  if (!Array.isArray(shape) || shape.some((n) => !Number.isSafeInteger(n) || n < 0))
    throw invalid(op, `shape [${shape}] must be non-negative integers`);
  if (strides.length !== shape.length || strides.some((n) => !Number.isSafeInteger(n) || n < 0))
    throw invalid(op, `strides [${strides}] must be ${shape.length} non-negative integers`);
}

function checkDevice(op: string, device: Device) {
  if (device !== "cpu" && !(Number.isInteger(device) && device >= 0)) throw invalid(op, `device=${device} is not "cpu" or a CUDA index`);
}

export class Tensor implements Disposable {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly device: Device;
  #ptr: DevicePtr | null; // device memory (null for host tensors)
  #host: Uint8Array | null; // host memory
  #owned: boolean;
  #disposed = false;

  private constructor(dtype: DType, shape: readonly number[], strides: readonly number[], device: Device, p: DevicePtr | null, host: Uint8Array | null, owned: boolean) {
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze([...strides]);
    this.device = device;
    this.#ptr = p;
    this.#host = host;
    this.#owned = owned;
  }

  /** Wraps a CUDA device pointer with no copy. The caller keeps ownership; dispose() does not free it. */
  static fromDevicePtr(p: DevicePtr, dtype: DType, shape: readonly number[], opts: { strides?: readonly number[]; device?: number } = {}): Tensor {
    const op = "Tensor.fromDevicePtr";
    checkPtr(op, "ptr", p);
    if (!isDType(dtype)) throw invalid(op, `dtype=${dtype} is not float16, bfloat16, float32 or int32`);
    const strides = opts.strides ?? contiguousStrides(shape);
    checkShape(op, shape, strides);
    const device = opts.device ?? 0;
    checkDevice(op, device);
    return new Tensor(dtype, shape, strides, device, p, null, false);
  }

  /** New contiguous tensor (uninitialized on the device, zeros on the host), owned by the tensor. */
  static empty(shape: readonly number[], dtype: DType, device: Device = "cpu"): Tensor {
    const op = "Tensor.empty";
    if (!isDType(dtype)) throw invalid(op, `dtype=${dtype} is not float16, bfloat16, float32 or int32`);
    const strides = contiguousStrides(shape);
    checkShape(op, shape, strides);
    checkDevice(op, device);
    const bytes = Math.max(1, shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]);
    if (device === "cpu") return new Tensor(dtype, shape, strides, device, null, new Uint8Array(new ArrayBuffer(bytes)), true);
    return new Tensor(dtype, shape, strides, device, deviceMalloc(bytes), null, true);
  }

  /** New contiguous tensor holding `data` converted (round to nearest even) to `dtype`. */
  static from(data: ArrayLike<number>, shape: readonly number[], dtype: DType, device: Device = "cpu"): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw invalid("Tensor.from", `data has ${data.length} values, shape [${shape}] needs ${n}`);
    const t = Tensor.empty(shape, dtype, device);
    const host = t.#host ?? new Uint8Array(new ArrayBuffer(n * DTYPE_BYTES[dtype]));
    encode(dtype, data, host);
    if (device !== "cpu") memcpy(t.ptr, host, host.byteLength, MemcpyKind.HostToDevice);
    return t;
  }

  /** The address libflash gets: device pointer, or the host buffer's current address. */
  get ptr(): DevicePtr {
    if (this.#disposed) throw new FlashDisposedError("Tensor used after dispose()", -1, "Tensor");
    return this.#ptr ?? (hostAddress(this.#host!) as number);
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get isContiguous(): boolean {
    const c = contiguousStrides(this.shape);
    return this.shape.every((n, i) => n <= 1 || this.strides[i] === c[i]);
  }

  /** Bytes spanned from ptr to the last element (the extent libflash may touch). */
  get extentBytes(): number {
    if (this.shape.some((n) => n === 0)) return 0;
    return (this.shape.reduce((a, n, i) => a + (n - 1) * this.strides[i]!, 0) + 1) * DTYPE_BYTES[this.dtype];
  }

  /** Copies the (contiguous) tensor to a Float32Array on the host. */
  toFloat32Array(): Float32Array {
    if (!this.isContiguous) throw invalid("Tensor.toFloat32Array", "only contiguous tensors can be read back");
    const bytes = this.numel * DTYPE_BYTES[this.dtype];
    let raw = this.#host;
    if (this.#ptr !== null) {
      raw = new Uint8Array(new ArrayBuffer(Math.max(bytes, 1)));
      if (bytes > 0) memcpy(raw, this.ptr, bytes, MemcpyKind.DeviceToHost);
    }
    if (this.#disposed || !raw) throw new FlashDisposedError("Tensor used after dispose()", -1, "Tensor");
    return decode(this.dtype, raw, this.numel);
  }

  /** Host bytes (host tensors only): where the library reads and writes. */
  get hostBytes(): Uint8Array {
    if (!this.#host || this.#disposed) throw invalid("Tensor.hostBytes", "not a live host tensor");
    return this.#host;
  }

  /** Sets every byte to `byte` (e.g. 0xff poisons fp16/bf16 with NaN). */
  fillBytes(byte: number): this {
    if (this.#host) this.#host.fill(byte);
    else memset(this.ptr, byte, this.extentBytes);
    return this;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#owned && this.#ptr !== null) deviceFree(this.#ptr);
    this.#ptr = null;
    this.#host = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export function encode(dtype: DType, data: ArrayLike<number>, out: Uint8Array): void {
  if (dtype === "float32" || dtype === "int32") {
    const View = dtype === "int32" ? Int32Array : Float32Array;
    if (dtype === "int32") for (let i = 0; i < data.length; i++) if (!Number.isInteger(data[i]!)) throw invalid("Tensor.from", `int32 data[${i}]=${data[i]} is not an integer`);
    new View(out.buffer as ArrayBuffer, out.byteOffset, data.length).set(data);
    return;
  }
  const u16 = new Uint16Array(out.buffer, out.byteOffset, data.length);
  const conv = dtype === "float16" ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) u16[i] = conv(data[i]!);
}

export function decode(dtype: DType, raw: Uint8Array, n: number): Float32Array {
  if (dtype === "float32") return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + n * 4));
  if (dtype === "int32") return Float32Array.from(new Int32Array(raw.buffer, raw.byteOffset, n));
  const u16 = new Uint16Array(raw.buffer, raw.byteOffset, n);
  const conv = dtype === "float16" ? f16BitsToF32 : bf16BitsToF32;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = conv(u16[i]!);
  return out;
}

export type { Pointer };
