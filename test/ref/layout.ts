// Moving data between the reference's logical per-sequence arrays ([s, heads, dim] row-major Float64Array)
// and the library's strided flat buffers. A buffer holds raw storage: Uint16Array of fp16/bf16 bits or a
// Float32Array; values are converted with ts/dtype.ts so the reference reads exactly what the library reads.
// Where a row lives is a RowAddr: (sequence, row) -> element offset of that row's head 0, dim 0; the head
// stride is separate and the dim stride is 1 (the ABI requires a contiguous last dimension).
import { type AttnDType as DType, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, roundTo } from "../../ts/dtype.ts";

export type Storage = Uint16Array | Float32Array;

/** Strides in elements, as in flash_fwd_params (batch = page stride for a paged pool). */
export interface Strides {
  batch: number;
  row: number;
  head: number;
}

export type RowAddr = (seq: number, row: number) => number;

export function allocStorage(dtype: DType, n: number): Storage {
  return dtype === "float32" ? new Float32Array(n) : new Uint16Array(n);
}

export function encode(dtype: DType, x: number): number {
  return dtype === "float16" ? f32ToF16Bits(x) : dtype === "bfloat16" ? f32ToBf16Bits(x) : Math.fround(x);
}

export function decode(dtype: DType, raw: number): number {
  return dtype === "float16" ? f16BitsToF32(raw) : dtype === "bfloat16" ? bf16BitsToF32(raw) : raw;
}

/** Values rounded to dtype (what the library would read after storing them). */
export function roundArray(dtype: DType, xs: ArrayLike<number>): Float64Array {
  return Float64Array.from(xs, (x) => roundTo(dtype, x));
}

/** Whole storage buffer decoded to doubles. */
export function decodeAll(dtype: DType, buf: Storage): Float64Array {
  return Float64Array.from(buf, (x) => decode(dtype, x));
}

/** Contiguous [b, s, heads, dim] strides. */
export function contiguousStrides(s: number, heads: number, dim: number): Strides {
  return { batch: s * heads * dim, row: heads * dim, head: dim };
}

/** cu_seqlens [b+1] from lengths. */
export function cuSeqlens(lens: readonly number[]): Int32Array {
  const cu = new Int32Array(lens.length + 1);
  for (let i = 0; i < lens.length; i++) cu[i + 1] = cu[i]! + lens[i]!;
  return cu;
}

/** Dense [b, s, heads, dim] with arbitrary strides; `rowOffset[i]` (e.g. leftpad) shifts sequence i's rows. */
export function denseRows(st: Strides, rowOffset?: readonly number[]): RowAddr {
  return (i, r) => i * st.batch + (r + (rowOffset?.[i] ?? 0)) * st.row;
}

/** Varlen packed [total, heads, dim]: sequence i's row r is packed row cu[i] + r (+ rowOffset[i]). */
export function varlenRows(cu: ArrayLike<number>, st: Strides, rowOffset?: readonly number[]): RowAddr {
  return (i, r) => (cu[i]! + r + (rowOffset?.[i] ?? 0)) * st.row;
}

/** Dense cache addressed through cache_batch_idx: sequence i lives in batch row idx[i]. */
export function batchIdxRows(idx: ArrayLike<number>, st: Strides): RowAddr {
  return (i, r) => idx[i]! * st.batch + r * st.row;
}

/** Paged pool [num_pages, page_size, heads, dim]: token t of sequence i is in page
 *  blockTable[i*btStride + floor(t/pageSize)], row t % pageSize; st.batch is the page stride. Throws for a
 *  token past the table's maxBlocks columns (default btStride) or a missing entry. */
export function pagedRows(
  blockTable: ArrayLike<number>, btStride: number, pageSize: number, st: Strides, maxBlocks = btStride,
): RowAddr {
  return (i, t) => {
    const col = Math.floor(t / pageSize);
    const page = col < maxBlocks ? blockTable[i * btStride + col] : undefined;
    if (page === undefined) throw new Error(`pagedRows: token ${t} of sequence ${i} is past the block table`);
    return page * st.batch + (t % pageSize) * st.row;
  };
}

/** Writes logical seqs[i] ([lens[i], heads, dim]) into buf through `addr`. */
export function scatter(
  dtype: DType, buf: Storage, seqs: ArrayLike<number>[], lens: readonly number[],
  heads: number, dim: number, headStride: number, addr: RowAddr,
): void {
  for (let i = 0; i < lens.length; i++) {
    const src = seqs[i]!;
    for (let r = 0; r < lens[i]!; r++) {
      const base = addr(i, r);
      for (let hh = 0; hh < heads; hh++) {
        const o = base + hh * headStride, so = (r * heads + hh) * dim;
        for (let c = 0; c < dim; c++) buf[o + c] = encode(dtype, src[so + c]!);
      }
    }
  }
}

/** Reads [lens[i], heads, dim] per sequence out of buf through `addr` (decoded to doubles). */
export function gather(
  dtype: DType, buf: Storage, lens: readonly number[], heads: number, dim: number, headStride: number, addr: RowAddr,
): Float64Array[] {
  const out: Float64Array[] = [];
  for (let i = 0; i < lens.length; i++) {
    const dst = new Float64Array(lens[i]! * heads * dim);
    for (let r = 0; r < lens[i]!; r++) {
      const base = addr(i, r);
      for (let hh = 0; hh < heads; hh++) {
        const o = base + hh * headStride, so = (r * heads + hh) * dim;
        for (let c = 0; c < dim; c++) dst[so + c] = decode(dtype, buf[o + c]!);
      }
    }
    out.push(dst);
  }
  return out;
}

/** Per-sequence [h, sq_i] LSE out of the library's fp32 buffer: [b, h, seqlenQ] dense (give seqlenQ) or
 *  [h, totalQ] varlen (give cu). */
export function gatherLse(
  buf: Float32Array, lens: readonly number[], h: number, geom: { seqlenQ: number } | { cu: ArrayLike<number>; totalQ: number },
): Float64Array[] {
  return lens.map((sq, i) => {
    const dst = new Float64Array(h * sq);
    for (let hh = 0; hh < h; hh++)
      for (let r = 0; r < sq; r++) {
        const o = "seqlenQ" in geom ? (i * h + hh) * geom.seqlenQ + r : hh * geom.totalQ + geom.cu[i]! + r;
        dst[hh * sq + r] = buf[o]!;
      }
    return dst;
  });
}

/** The inverse of gatherLse (e.g. to hand a reference LSE to flash_bwd). */
export function scatterLse(
  buf: Float32Array, lse: Float64Array[], lens: readonly number[], h: number,
  geom: { seqlenQ: number } | { cu: ArrayLike<number>; totalQ: number },
): void {
  lens.forEach((sq, i) => {
    for (let hh = 0; hh < h; hh++)
      for (let r = 0; r < sq; r++) {
        const o = "seqlenQ" in geom ? (i * h + hh) * geom.seqlenQ + r : hh * geom.totalQ + geom.cu[i]! + r;
        buf[o] = lse[i]![hh * sq + r]!;
      }
  });
}
