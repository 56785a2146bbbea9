// Packs flash_fwd_params / flash_bwd_params into one reused ArrayBuffer (no allocation per call), at the
// offsets the loaded library reported. Every setter checks its value first: bun:ffi would silently turn
// NaN, fractions or out-of-range numbers into garbage.
import { invalid } from "./errors.ts";
import type { BWD_FIELDS, FWD_FIELDS } from "./layout.gen.ts";
import type { Layout } from "./library.ts";

export type FwdField = (typeof FWD_FIELDS)[number][0];
export type BwdField = (typeof BWD_FIELDS)[number][0];
export type DevicePtr = number | bigint;

const TWO32 = 2 ** 32;

export class Params<F extends string> {
  /** Passed to the C call as the struct pointer (bun passes a TypedArray's current address). */
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(
    private readonly layout: Layout,
    private readonly init: (buf: Uint8Array) => number,
    readonly op: string,
  ) {
    const buf = new ArrayBuffer(layout.size); // ArrayBuffer-backed: its address stays put (bun:ffi stale-ptr rule)
    this.bytes = new Uint8Array(buf);
    this.view = new DataView(buf);
  }

  /** Back to the library's own defaults (flash_*_params_init). */
  reset(): this {
    const st = this.init(this.bytes);
    if (st !== 0) throw invalid(this.op, `params init failed with status ${st}`);
    return this;
  }

  private offset(name: F, kind: string): number {
    const f = this.layout.fields.get(name);
    if (!f || f.kind !== kind) throw invalid(this.op, `internal: field ${name} is not ${kind} in the loaded library`);
    return f.offset;
  }

  i32(name: F, v: number): this {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw invalid(this.op, `${name}=${v} is not an int32`);
    this.view.setInt32(this.offset(name, "I32"), v, true);
    return this;
  }

  f32(name: F, v: number): this {
    if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(this.op, `${name}=${v} is not a finite number`);
    this.view.setFloat32(this.offset(name, "F32"), v, true);
    return this;
  }

  i64(name: F, v: number): this {
    if (!Number.isSafeInteger(v)) throw invalid(this.op, `${name}=${v} is not a safe integer`);
    const o = this.offset(name, "I64");
    this.view.setUint32(o, ((v % TWO32) + TWO32) % TWO32, true); // two's complement halves, no BigInt
    this.view.setInt32(o + 4, Math.floor(v / TWO32), true);
    return this;
  }

  u64(name: F, v: bigint): this {
    if (typeof v !== "bigint" || v < 0n || v >= 1n << 64n) throw invalid(this.op, `${name}=${v} is not a uint64`);
    this.view.setBigUint64(this.offset(name, "U64"), v, true);
    return this;
  }

  ptr(name: F, v: DevicePtr | null | undefined): this {
    const o = this.offset(name, "PTR");
    if (v === null || v === undefined) {
      this.view.setUint32(o, 0, true);
      this.view.setUint32(o + 4, 0, true);
    } else if (typeof v === "bigint") {
      if (v < 0n || v >= 1n << 64n) throw invalid(this.op, `${name}=${v} is not a pointer`);
      this.view.setBigUint64(o, v, true);
    } else {
      if (!Number.isSafeInteger(v) || v < 0) throw invalid(this.op, `${name}=${v} is not a pointer`);
      this.view.setUint32(o, v % TWO32, true);
      this.view.setUint32(o + 4, Math.floor(v / TWO32), true);
    }
    return this;
  }

  /** Reads a field back (tests, debugging). */
  get(name: F): number | bigint {
    const f = this.layout.fields.get(name);
    if (!f) throw invalid(this.op, `unknown field ${name}`);
    switch (f.kind) {
      case "I32": return this.view.getInt32(f.offset, true);
      case "F32": return this.view.getFloat32(f.offset, true);
      case "I64": return this.view.getBigInt64(f.offset, true);
      default: return this.view.getBigUint64(f.offset, true);
    }
  }
}
