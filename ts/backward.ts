// flashAttnBackward / flashAttnVarlenBackward: gradients of the forward for the same options and the
// forward's LSE. Dense and varlen differ only in shapes and the index tensors.
import { Checker } from "./checks.ts";
import { invalid } from "./errors.ts";
import type { Stream } from "./device.ts";
import {
  attnDType, bwdPacker, freeOnError, launch, setOperands, setOptions, setTensor, setVarlen, varlenIndex,
  type AttnOptions, type VarlenIndex,
} from "./attention.ts";
import { Tensor } from "./tensor.ts";

/**
 * Options of {@link flashAttnBackward} / {@link flashAttnVarlenBackward}.
 *
 * The attention options (causal ... offset) must be **the ones the forward ran with**: the backward recomputes
 * the probabilities from q, k and the forward's LSE, so a different mask, scale, softcap, ALiBi or dropout
 * stream gives wrong gradients without any error. `out`, `lse`, `returnLse` and `numSplits` do not apply.
 */
export interface BackwardOptions extends Omit<AttnOptions, "out" | "lse" | "returnLse" | "numSplits"> {
  /** Bottom-right aligned causal mask, as in the forward. Default false. */
  causal?: boolean;
  /** Softmax scale, as in the forward (> 0). Default 1/sqrt(d). */
  softmaxScale?: number;
  /** Local window [left, right], as in the forward; -1 = unbounded. Default [-1, -1]. */
  windowSize?: readonly [number, number];
  /** Tanh soft cap, as in the forward; 0 = off (default). Cannot be combined with dropout. */
  softcap?: number;
  /** ALiBi slopes, the forward's tensor: float32 [h] or [b, h] on the tensors' device. Default none. */
  alibiSlopes?: Tensor;
  /** Dropout probability in [0, 1), as in the forward. Default 0. */
  dropoutP?: number;
  /**
   * Philox seed and offset of the forward call (with dropoutP > 0): the backward regenerates the forward's
   * dropout mask from them, so they must be identical. Default 0n / 0n.
   */
  seed?: bigint;
  offset?: bigint;
  /** CUDA stream to enqueue on; null/undefined = the legacy default stream. Ignored on the CPU. */
  stream?: Stream | null;
  /**
   * Preallocated gradients, written in full: dq like q, dk like k, dv like v (same shapes, q's dtype, the
   * tensors' device, last dimension contiguous; other strides are free). Missing ones are allocated
   * (contiguous) and returned; the caller owns them and must dispose() them.
   */
  dq?: Tensor;
  dk?: Tensor;
  dv?: Tensor;
  /**
   * Also return softmaxD = rowsum(dO * O) per query row and head (FA2's dsoftmax_sum): float32 in the LSE's
   * layout, [b, h, sq] (dense) or [h, total_q] (varlen); 0 for rows that see no key. Default false.
   */
  returnSoftmaxD?: boolean;
  /**
   * Bitwise repeatable dQ/dK/dV from run to run. Default false.
   * - CPU backend: always repeatable (also across thread counts); the flag changes nothing.
   * - CUDA backend: false accumulates dQ with fp32 atomics into the workspace (the order of the additions
   *   varies, so the last bits of dq vary); true runs a separate dQ kernel that adds key blocks in a fixed
   *   order (no atomics, a smaller workspace) at the cost of recomputing S and dP. Measured cost on an
   *   H100 (bf16, d 64/128, 16k tokens, bench/results/peers_bwd_h100.md): 21-34 % more time at seqlen >= 1k,
   *   16-20 % at 512.
   */
  deterministic?: boolean;
}

/** Gradients of a backward call. Tensors it allocated are owned by the caller (dispose() them). */
export interface BackwardResult {
  /** dL/dq, shape and dtype of q (opts.dq when given). */
  dq: Tensor;
  /** dL/dk, shape and dtype of k; with GQA/MQA summed over the query heads of each KV head. */
  dk: Tensor;
  /** dL/dv, shape and dtype of v; with GQA/MQA summed over the query heads of each KV head. */
  dv: Tensor;
  /** rowsum(dO * O), float32 in the LSE's layout; only with returnSoftmaxD. */
  softmaxD?: Tensor;
}

type Inputs = { dout: Tensor; q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor };

// Checks the tensors of either layout: rank 4 [b, s, heads, dim] (dense) or rank 3 [total, heads, dim].
function checkInputs(c: Checker, t: Inputs, rank: 3 | 4) {
  c.tensor("q", t.q, rank);
  const dtype = attnDType(c, t.q);
  for (const n of ["k", "v", "out", "dout"] as const) c.tensor(n, t[n], rank, dtype);
  const [h, d] = t.q.shape.slice(-2) as [number, number];
  const [hk] = t.k.shape.slice(-2) as [number];
  const dv = t.v.shape[rank - 1]!;
  const lead = (x: Tensor) => x.shape.slice(0, rank - 2);
  c.shape("k", t.k, [...lead(t.k), hk, d]);
  c.shape("v", t.v, [...lead(t.k), hk, dv]);
  c.shape("out", t.out, [...lead(t.q), h, dv]);
  c.shape("dout", t.dout, [...lead(t.q), h, dv]);
  return { dtype, h, hk, d, dv };
}

function run(c: Checker, t: Inputs, opts: BackwardOptions, rank: 3 | 4, lseShape: number[], dims: { b: number; sq: number; sk: number }, varlen?: () => void): BackwardResult {
  const { dtype, h, hk, d, dv: dvDim } = checkInputs(c, t, rank);
  c.tensor("lse", t.lse, lseShape.length, "float32");
  c.shape("lse", t.lse, lseShape);
  if (!t.lse.isContiguous) throw invalid(c.op, "lse must be contiguous"); // the ABI has no LSE strides
  const dev = c.device!;
  for (const [n, g, like] of [["dq", opts.dq, t.q], ["dk", opts.dk, t.k], ["dv", opts.dv, t.v]] as const)
    if (g) c.shape(n, c.tensor(n, g, rank, dtype), like.shape);
  const owned: Tensor[] = [];
  const grad = (given: Tensor | undefined, like: Tensor) => given ?? (owned[owned.length] = Tensor.empty(like.shape, dtype, dev));
  const dq = grad(opts.dq, t.q), dk = grad(opts.dk, t.k), dv = grad(opts.dv, t.v);
  const softmaxD = opts.returnSoftmaxD ? (owned[owned.length] = Tensor.empty(lseShape, "float32", dev)) : undefined;
  return freeOnError(owned, () => {
    const p = bwdPacker().reset();
    setOperands(p, dev, dtype, t.q, t.k, t.v, t.out);
    setTensor(p, "do", t.dout);
    setTensor(p, "dq", dq);
    setTensor(p, "dk", dk);
    setTensor(p, "dv", dv);
    p.i32("b", dims.b).i32("seqlen_q", dims.sq).i32("seqlen_k", dims.sk).i32("d", d).i32("dv", dvDim).i32("h", h).i32("h_k", hk);
    varlen?.();
    p.ptr("softmax_lse_ptr", t.lse.ptr).ptr("dsoftmax_sum", softmaxD?.ptr);
    setOptions(c, p, opts, dims.b, h);
    p.i32("deterministic", opts.deterministic ? 1 : 0);
    launch("flash_bwd", p, dev, opts.stream);
    return { dq, dk, dv, softmaxD };
  });
}

/**
 * Gradients of {@link flashAttn} for an upstream gradient `dout` = dL/dout: returns dL/dq, dL/dk, dL/dv.
 *
 * - q [b, sq, h, d], k [b, sk, hk, d], v [b, sk, hk, dv]: the forward's inputs (h a multiple of hk: GQA/MQA).
 * - out [b, sq, h, dv] and lse float32 [b, h, sq] (contiguous): the forward's output and LSE, from the same
 *   q, k, v and options (call flashAttn with `returnLse: true`, or pass it an `lse` tensor).
 * - dout [b, sq, h, dv]: dL/dout.
 * q, k, v, out and dout share one dtype and device; any strides with a contiguous last dimension.
 * `opts` must repeat the forward's attention options (see {@link BackwardOptions}).
 *
 * Workspace: the call asks the library how much scratch it needs (flash_bwd_workspace_size) and uses the
 * cached workspace of the device (grown when needed, never shrunk; releaseWorkspaces() frees it). On CUDA it
 * holds the fp32 dQ accumulator (h x rows x d floats) unless `deterministic`; on the CPU, per-thread tiles and
 * the row sums D.
 * On the GPU the call returns once the work is enqueued on `opts.stream` (synchronize before reading on the
 * host); on the CPU it returns when done.
 *
 * Throws (the gradients this call allocated are freed before it throws):
 * - FlashInvalidArgumentError: a tensor of the wrong rank, shape, dtype (all but lse/softmaxD share q's
 *   dtype, float16/bfloat16/float32) or device, a last dimension that is not contiguous, a non-contiguous lse,
 *   an option out of range (softmaxScale <= 0, dropoutP outside [0, 1), bad windowSize, ...), or a field the
 *   library rejects (its message names it: head dim > 256, h not a multiple of hk, ...).
 * - FlashUnsupportedError: valid but not runnable here: float32 on a CUDA device, softcap with dropout, a
 *   CUDA build with no head-dim instantiation >= d, a tile that does not fit the GPU's shared memory.
 * - FlashOutOfMemoryError / FlashCudaError (GPU): allocating the gradients or the workspace, or the launch,
 *   failed.
 *
 * Example (checked against the float64 oracle and finite differences: bench/backward_example.ts,
 * `npm run example:bwd`):
 * ```ts
 * const { out, lse } = flashAttn(q, k, v, { causal: true, returnLse: true });
 * const { dq, dk, dv } = flashAttnBackward(dout, q, k, v, out, lse!, { causal: true });
 * ```
 */
export function flashAttnBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, opts: BackwardOptions = {}): BackwardResult {
  const c = new Checker("flashAttnBackward");
  c.tensor("q", q, 4);
  const [b, sq, h] = q.shape as [number, number, number];
  c.tensor("k", k, 4);
  return run(c, { dout, q, k, v, out, lse }, opts, 4, [b, h, sq], { b, sq, sk: k.shape[1]! });
}

/**
 * Gradients of {@link flashAttnVarlen} (packed variable-length batches): returns dL/dq, dL/dk, dL/dv.
 *
 * - q [total_q, h, d], k [total_k, hk, d], v [total_k, hk, dv], out/dout [total_q, h, dv], lse float32
 *   [h, total_q] (contiguous): as for {@link flashAttnBackward}, packed the forward's way.
 * - opts.cuSeqlensQ / cuSeqlensK (int32 [b+1]), maxSeqlenQ / maxSeqlenK and the optional sequsedQ / sequsedK
 *   (int32 [b]): the same index tensors and values the forward ran with.
 *
 * Workspace: the call asks the library how much scratch it needs (flash_bwd_workspace_size) and uses the
 * cached workspace of the device (grown when needed, never shrunk; releaseWorkspaces() frees it). On CUDA it
 * holds the fp32 dQ accumulator (h x rows x d floats) unless `deterministic`; on the CPU, per-thread tiles and
 * the row sums D.
 * On the GPU the call returns once the work is enqueued on `opts.stream` (synchronize before reading on the
 * host); on the CPU it returns when done.
 *
 * Throws (the gradients this call allocated are freed before it throws):
 * - FlashInvalidArgumentError: a tensor of the wrong rank, shape, dtype (all but lse/softmaxD share q's
 *   dtype, float16/bfloat16/float32) or device, a last dimension that is not contiguous, a non-contiguous lse,
 *   an option out of range (softmaxScale <= 0, dropoutP outside [0, 1), bad windowSize, ...), or a field the
 *   library rejects (its message names it: head dim > 256, h not a multiple of hk, ...).
 * - FlashUnsupportedError: valid but not runnable here: float32 on a CUDA device, softcap with dropout, a
 *   CUDA build with no head-dim instantiation >= d, a tile that does not fit the GPU's shared memory.
 * - FlashOutOfMemoryError / FlashCudaError (GPU): allocating the gradients or the workspace, or the launch,
 *   failed.
 *
 * Example (checked against the float64 oracle and finite differences: bench/backward_example.ts,
 * `npm run example:bwd`):
 * ```ts
 * const { out, lse } = flashAttnVarlen(q, k, v, { causal: true, returnLse: true, ...index });
 * const { dq, dk, dv } = flashAttnVarlenBackward(dout, q, k, v, out, lse!, { causal: true, ...index });
 * ```
 */
export function flashAttnVarlenBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, opts: BackwardOptions & VarlenIndex): BackwardResult {
  const c = new Checker("flashAttnVarlenBackward");
  c.tensor("q", q, 3);
  const [totalQ, h] = q.shape as [number, number];
  const ix = varlenIndex(c, opts);
  const p = bwdPacker();
  return run(c, { dout, q, k, v, out, lse }, opts, 3, [h, totalQ], { b: ix.b, sq: opts.maxSeqlenQ, sk: opts.maxSeqlenK }, () => setVarlen(c, p, opts, ix, totalQ));
}
