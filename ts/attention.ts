// flashAttn, flashAttnVarlen and flashAttnBackward: FlashAttention's Python API in TS idiom. Each call
// checks its tensors and options in TS, packs the params into a reused buffer, and makes one FFI call.
import type { Pointer } from "bun:ffi";
import { DTYPE_CODE, type AttnDType } from "./dtype.ts";
import { invalid } from "./errors.ts";
import { check, library } from "./library.ts";
import { Params, type BwdField, type FwdField } from "./params.ts";
import { streamHandle, type Stream } from "./device.ts";
import { Checker } from "./checks.ts";
import { Tensor, type Device } from "./tensor.ts";
import { workspaceFor } from "./workspace.ts";

export interface AttnOptions {
  /** Bottom-right aligned causal mask. */
  causal?: boolean;
  /** Default 1/sqrt(d). */
  softmaxScale?: number;
  /** [left, right]; -1 = unbounded. Default [-1, -1]. */
  windowSize?: readonly [number, number];
  /** 0 = off. */
  softcap?: number;
  /** float32 [h] or [b, h] on the tensors' device. */
  alibiSlopes?: Tensor;
  /** Probability of dropping, in [0, 1). */
  dropoutP?: number;
  /** Philox seed/offset for dropout (see include/flash.h); advance offset by >= b*h per call. */
  seed?: bigint;
  offset?: bigint;
  returnLse?: boolean;
  /** Preallocated output / LSE (no allocation on the hot path). */
  out?: Tensor;
  lse?: Tensor;
  /** Split-KV count: 0 = heuristic. */
  numSplits?: number;
  /**
   * GQA packing on the Hopper forward (pack_gqa): undefined = heuristic, true = whenever possible, false = never.
   * flashAttnWithKVCache ignores it (its decode kernel always packs).
   */
  packGqa?: boolean;
  /** CUDA stream; null/undefined = legacy default stream. Ignored on the CPU. */
  stream?: Stream | null;
}

export interface AttnResult {
  out: Tensor;
  /** float32 natural-log LSE ([b, h, sq], or [h, total_q] for varlen) when returnLse or lse was given. */
  lse?: Tensor;
}

type Common = FwdField & BwdField;
type P = Params<FwdField> | Params<BwdField>;

let fwdParams: Params<FwdField> | undefined;
let bwdParams: Params<BwdField> | undefined;
const sizeOut = new BigUint64Array(new ArrayBuffer(8));

export function fwdPacker(): Params<FwdField> {
  const lib = library();
  return (fwdParams ??= new Params<FwdField>(lib.fwdLayout, (b) => lib.symbols.flash_fwd_params_init(b), "flash_fwd"));
}

export function bwdPacker(): Params<BwdField> {
  const lib = library();
  return (bwdParams ??= new Params<BwdField>(lib.bwdLayout, (b) => lib.symbols.flash_bwd_params_init(b), "flash_bwd"));
}

export function attnDType(c: Checker, t: Tensor): AttnDType {
  if (t.dtype === "int32") throw invalid(c.op, "q must be float16, bfloat16 or float32");
  return t.dtype;
}

type TensorField = "q" | "k" | "v" | "o" | "do" | "dq" | "dk" | "dv" | "knew" | "vnew";
// The four field names of each tensor, built once: a template literal per call would make new strings to hash
// on every field lookup (a quarter of the binding's per-call time in a CPU profile).
const TENSOR_FIELDS = Object.fromEntries(
  (["q", "k", "v", "o", "do", "dq", "dk", "dv", "knew", "vnew"] as const).map((n) => [
    n, [`${n}_ptr`, `${n}_batch_stride`, `${n}_row_stride`, `${n}_head_stride`] as const,
  ]),
) as Record<TensorField, readonly [string, string, string, string]>;

/** Writes device, dtype and the strides of a [.., rows, heads, dim] tensor (batch stride 0 for rank 3). */
export function setTensor(p: P, name: TensorField, t: Tensor): void {
  const r = t.shape.length;
  const pp = p as Params<string>;
  const [fp, fb, fr, fh] = TENSOR_FIELDS[name];
  pp.ptr(fp, t.ptr);
  pp.i64(fb, r === 4 ? t.strides[0]! : 0);
  pp.i64(fr, t.strides[r - 3]!);
  pp.i64(fh, t.strides[r - 2]!);
}

function setDeviceFields(p: P, device: Device, dtype: AttnDType): void {
  const pp = p as Params<Common>;
  pp.i32("device_type", device === "cpu" ? 1 : 2);
  pp.i32("device_id", device === "cpu" ? 0 : device);
  pp.i32("dtype", DTYPE_CODE[dtype]);
}

/** Device, dtype, q, k, v and o: the start of every packing, forward and backward. Positional, so a call allocates nothing. */
export function setOperands(p: P, device: Device, dtype: AttnDType, q: Tensor, k: Tensor, v: Tensor, o: Tensor): void {
  setDeviceFields(p, device, dtype);
  setTensor(p, "q", q);
  setTensor(p, "k", k);
  setTensor(p, "v", v);
  setTensor(p, "o", o);
}

/** Masks, scale, softcap, ALiBi and dropout: the options forward and backward share. */
export function setOptions(c: Checker, p: P, o: AttnOptions, b: number, h: number): void {
  const pp = p as Params<Common>;
  if (o.softmaxScale !== undefined) pp.f32("scale_softmax", c.num("softmaxScale", o.softmaxScale, (x) => x > 0, "must be > 0"));
  if (o.softcap !== undefined) pp.f32("softcap", c.num("softcap", o.softcap, (x) => x >= 0, "must be >= 0"));
  if (o.causal !== undefined && typeof o.causal !== "boolean") throw invalid(c.op, `causal=${o.causal} must be a boolean`);
  pp.i32("is_causal", o.causal ? 1 : 0);
  if (o.windowSize !== undefined) {
    if (!Array.isArray(o.windowSize) || o.windowSize.length !== 2) throw invalid(c.op, "windowSize must be [left, right]");
    pp.i32("window_size_left", c.int("windowSize[0]", o.windowSize[0], -1));
    pp.i32("window_size_right", c.int("windowSize[1]", o.windowSize[1], -1));
  }
  if (o.alibiSlopes) {
    const a = o.alibiSlopes;
    c.tensor("alibiSlopes", a, a.shape.length, "float32");
    if (!((a.shape.length === 1 && a.shape[0] === h) || (a.shape.length === 2 && a.shape[0] === b && a.shape[1] === h)))
      throw invalid(c.op, `alibiSlopes must have shape [${h}] or [${b}, ${h}], got [${a.shape}]`);
    pp.ptr("alibi_slopes_ptr", a.ptr);
    pp.i64("alibi_slopes_batch_stride", a.shape.length === 2 ? a.strides[0]! : 0);
  }
  if (o.dropoutP !== undefined) pp.f32("p_dropout", c.num("dropoutP", o.dropoutP, (x) => x >= 0 && x < 1, "must be in [0, 1)"));
  if (o.seed !== undefined) pp.u64("philox_seed", o.seed);
  if (o.offset !== undefined) pp.u64("philox_offset", o.offset);
}

/** Split-KV count and GQA packing: how the forward runs, never what it computes (beyond rounding). */
function setScheduling(c: Checker, p: Params<FwdField>, o: AttnOptions): void {
  if (o.numSplits !== undefined) p.i32("num_splits", c.int("numSplits", o.numSplits, 0, 256));
  if (o.packGqa !== undefined && typeof o.packGqa !== "boolean") throw invalid(c.op, `packGqa=${o.packGqa} must be a boolean`);
  if (o.packGqa !== undefined) p.i32("pack_gqa", o.packGqa ? 1 : -1);
}

/** Queries the workspace, then runs the call with the cached workspace of (device, stream). */
export function launch(
  op: "flash_fwd" | "flash_fwd_kvcache" | "flash_bwd",
  p: P,
  device: Device,
  stream: Stream | null | undefined,
): void {
  const s = library().symbols;
  const sizeFn = { flash_fwd: s.flash_fwd_workspace_size, flash_fwd_kvcache: s.flash_fwd_kvcache_workspace_size, flash_bwd: s.flash_bwd_workspace_size }[op];
  const runFn = { flash_fwd: s.flash_fwd, flash_fwd_kvcache: s.flash_fwd_kvcache, flash_bwd: s.flash_bwd }[op];
  check(sizeFn(p.bytes, sizeOut), `${op}_workspace_size`);
  const bytes = Number(sizeOut[0]!);
  const ws = workspaceFor(device, bytes, stream);
  check(runFn(p.bytes, ws as Pointer | null, bytes, streamHandle(stream)), op);
}

/** Checks given outputs first, then allocates the missing ones (so a bad argument allocates nothing). */
function outputs(c: Checker, o: AttnOptions, outShape: number[], lseShape: number[], dtype: AttnDType, device: Device) {
  if (o.out) c.shape("out", c.tensor("out", o.out, outShape.length, dtype), outShape);
  if (o.lse) {
    c.shape("lse", c.tensor("lse", o.lse, lseShape.length, "float32"), lseShape);
    if (!o.lse.isContiguous) throw invalid(c.op, "lse must be contiguous");
  }
  const owned: Tensor[] = [];
  const out = o.out ?? (owned[owned.length] = Tensor.empty(outShape, dtype, device));
  const lse = o.lse ?? (o.returnLse ? (owned[owned.length] = Tensor.empty(lseShape, "float32", device)) : undefined);
  return { out, lse, owned };
}

/** Runs `body`; if it throws, frees the tensors this call allocated. */
export function freeOnError<T>(owned: Tensor[], body: () => T): T {
  try {
    return body();
  } catch (e) {
    for (const t of owned) t.dispose();
    throw e;
  }
}

/** The part of a flash_fwd call after the shapes: LSE, options, scheduling, the launch. */
function runFwd(c: Checker, p: Params<FwdField>, opts: AttnOptions, b: number, h: number, out: Tensor, lse?: Tensor): AttnResult {
  if (lse) p.ptr("softmax_lse_ptr", lse.ptr);
  setOptions(c, p, opts, b, h);
  setScheduling(c, p, opts);
  launch("flash_fwd", p, c.device!, opts.stream);
  return { out, lse };
}

/** Attention over dense batches: q [b, sq, h, d], k [b, sk, hk, d], v [b, sk, hk, dv] → out [b, sq, h, dv]. */
export function flashAttn(q: Tensor, k: Tensor, v: Tensor, opts: AttnOptions = {}): AttnResult {
  const c = new Checker("flashAttn");
  c.tensor("q", q, 4);
  const dtype = attnDType(c, q);
  c.tensor("k", k, 4, dtype);
  c.tensor("v", v, 4, dtype);
  const [b, sq, h, d] = q.shape as [number, number, number, number];
  const [, sk, hk] = k.shape as [number, number, number, number];
  const dv = v.shape[3]!;
  c.shape("k", k, [b, sk, hk, d]);
  c.shape("v", v, [b, sk, hk, dv]);
  const { out, lse, owned } = outputs(c, opts, [b, sq, h, dv], [b, h, sq], dtype, c.device!);
  return freeOnError(owned, () => {
    const p = fwdPacker().reset();
    setOperands(p, c.device!, dtype, q, k, v, out);
    p.i32("b", b).i32("seqlen_q", sq).i32("seqlen_k", sk).i32("d", d).i32("dv", dv).i32("h", h).i32("h_k", hk);
    return runFwd(c, p, opts, b, h, out, lse);
  });
}

export interface VarlenOptions extends AttnOptions, VarlenIndex {}

export interface VarlenIndex {
  /** int32 [b+1] cumulative offsets of q / k rows. */
  cuSeqlensQ: Tensor;
  cuSeqlensK: Tensor;
  maxSeqlenQ: number;
  maxSeqlenK: number;
  /** int32 [b]: rows actually used per sequence. */
  sequsedQ?: Tensor;
  sequsedK?: Tensor;
}

/** Checks the varlen index tensors (int32, [b+1] / [b]) and derives b. */
export function varlenIndex(c: Checker, opts: VarlenIndex) {
  const cuq = c.tensor("cuSeqlensQ", opts?.cuSeqlensQ, 1, "int32");
  const cuk = c.tensor("cuSeqlensK", opts.cuSeqlensK, 1, "int32");
  const b = cuq.shape[0]! - 1;
  if (b < 0) throw invalid(c.op, "cuSeqlensQ must have b+1 >= 1 entries");
  c.shape("cuSeqlensK", cuk, [b + 1]);
  const usq = c.optional("sequsedQ", opts.sequsedQ, 1, "int32");
  const usk = c.optional("sequsedK", opts.sequsedK, 1, "int32");
  if (usq) c.shape("sequsedQ", usq, [b]);
  if (usk) c.shape("sequsedK", usk, [b]);
  return { b, cuq, cuk, usq, usk };
}

export function setVarlen(c: Checker, p: P, opts: VarlenIndex, ix: ReturnType<typeof varlenIndex>, totalQ: number): void {
  const pp = p as Params<Common>;
  pp.i32("b", ix.b).i32("seqlen_q", c.int("maxSeqlenQ", opts.maxSeqlenQ, 0)).i32("seqlen_k", c.int("maxSeqlenK", opts.maxSeqlenK, 0));
  pp.i32("total_q", totalQ);
  pp.ptr("cu_seqlens_q", ix.cuq.ptr).ptr("cu_seqlens_k", ix.cuk.ptr).ptr("seqused_q", ix.usq?.ptr).ptr("seqused_k", ix.usk?.ptr);
}

/** Packed variable-length batches: q [total_q, h, d], k [total_k, hk, d], v [total_k, hk, dv]. LSE is [h, total_q]. */
export function flashAttnVarlen(q: Tensor, k: Tensor, v: Tensor, opts: VarlenOptions): AttnResult {
  const c = new Checker("flashAttnVarlen");
  c.tensor("q", q, 3);
  const dtype = attnDType(c, q);
  c.tensor("k", k, 3, dtype);
  c.tensor("v", v, 3, dtype);
  const [totalQ, h, d] = q.shape as [number, number, number];
  const [totalK, hk] = k.shape as [number, number, number];
  const dv = v.shape[2]!;
  c.shape("k", k, [totalK, hk, d]);
  c.shape("v", v, [totalK, hk, dv]);
  const { b, cuq, cuk, usq, usk } = varlenIndex(c, opts);
  const { out, lse, owned } = outputs(c, opts, [totalQ, h, dv], [h, totalQ], dtype, c.device!);
  return freeOnError(owned, () => {
    const p = fwdPacker().reset();
    setOperands(p, c.device!, dtype, q, k, v, out);
    p.i32("d", d).i32("dv", dv).i32("h", h).i32("h_k", hk);
    setVarlen(c, p, opts, { b, cuq, cuk, usq, usk }, totalQ);
    return runFwd(c, p, opts, b, h, out, lse);
  });
}
