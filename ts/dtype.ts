// Element types as the C ABI numbers them, and exact fp16/bf16 <-> fp32 conversions for host data.
// Conversions round to nearest even and keep NaN/Inf, so host-side references see the same values the
// library reads.

/** Element types of tensors: the attention dtypes plus int32 for index arrays (cu_seqlens, block tables). */
export type DType = "float16" | "bfloat16" | "float32" | "int32";
/** The dtypes attention runs on (flash_dtype). */
export type AttnDType = Exclude<DType, "int32">;

/** flash_dtype values of include/flash.h. */
export const DTYPE_CODE: Record<AttnDType, number> = { float16: 1, bfloat16: 2, float32: 3 };

export const DTYPE_BYTES: Record<DType, number> = { float16: 2, bfloat16: 2, float32: 4, int32: 4 };

export function isDType(x: unknown): x is DType {
  return x === "float16" || x === "bfloat16" || x === "float32" || x === "int32";
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

export function f32ToF16Bits(x: number): number {
  f32[0] = x; // round to f32 first: the library converts from f32 too
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++;
  return sign | r; // a carry into the exponent rounds up to the next binade or to Inf, as it should
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a number to the nearest value representable in `dtype`. */
export function roundTo(dtype: AttnDType, x: number): number {
  if (dtype === "float16") return f16BitsToF32(f32ToF16Bits(x));
  if (dtype === "bfloat16") return bf16BitsToF32(f32ToBf16Bits(x));
  return Math.fround(x);
}
