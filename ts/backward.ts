// flashAttnBackward / flashAttnVarlenBackward: gradients of the forward for the same options and the
// forward's LSE. Dense and varlen differ only in shapes and the index tensors.
import { Checker } from "./checks.ts";
import {
  attnDType, bwdPacker, freeOnError, launch, setDevice, setOptions, setTensor, setVarlen, varlenIndex,
  type AttnOptions, type VarlenIndex,
} from "./attention.ts";
import { Tensor } from "./tensor.ts";

export interface BackwardOptions extends Omit<AttnOptions, "out" | "lse" | "returnLse" | "numSplits"> {
  /** Preallocated gradients (shapes of q, k, v). */
  dq?: Tensor;
  dk?: Tensor;
  dv?: Tensor;
  /** Also return softmax_d = rowsum(dO * O) (float32, LSE layout). */
  returnSoftmaxD?: boolean;
  /** Bitwise repeatable gradients. */
  deterministic?: boolean;
}

export interface BackwardResult {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
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
  const dev = c.device!;
  for (const [n, g, like] of [["dq", opts.dq, t.q], ["dk", opts.dk, t.k], ["dv", opts.dv, t.v]] as const)
    if (g) c.shape(n, c.tensor(n, g, rank, dtype), like.shape);
  const owned: Tensor[] = [];
  const grad = (given: Tensor | undefined, like: Tensor) => given ?? (owned[owned.length] = Tensor.empty(like.shape, dtype, dev));
  const dq = grad(opts.dq, t.q), dk = grad(opts.dk, t.k), dv = grad(opts.dv, t.v);
  const softmaxD = opts.returnSoftmaxD ? (owned[owned.length] = Tensor.empty(lseShape, "float32", dev)) : undefined;
  return freeOnError(owned, () => {
    const p = bwdPacker().reset();
    setDevice(p, dev, dtype);
    setTensor(p, "q", t.q);
    setTensor(p, "k", t.k);
    setTensor(p, "v", t.v);
    setTensor(p, "o", t.out);
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

/** Gradients of flashAttn: q [b, sq, h, d], k/v [b, sk, hk, d|dv], out/dout [b, sq, h, dv], lse [b, h, sq]. */
export function flashAttnBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, opts: BackwardOptions = {}): BackwardResult {
  const c = new Checker("flashAttnBackward");
  c.tensor("q", q, 4);
  const [b, sq, h] = q.shape as [number, number, number];
  c.tensor("k", k, 4);
  return run(c, { dout, q, k, v, out, lse }, opts, 4, [b, h, sq], { b, sq, sk: k.shape[1]! });
}

/** Gradients of flashAttnVarlen: packed [total, heads, dim] tensors, lse [h, total_q]. */
export function flashAttnVarlenBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, opts: BackwardOptions & VarlenIndex): BackwardResult {
  const c = new Checker("flashAttnVarlenBackward");
  c.tensor("q", q, 3);
  const [totalQ, h] = q.shape as [number, number];
  const ix = varlenIndex(c, opts);
  const p = bwdPacker();
  return run(c, { dout, q, k, v, out, lse }, opts, 3, [h, totalQ], { b: ix.b, sq: opts.maxSeqlenQ, sk: opts.maxSeqlenK }, () => setVarlen(c, p, opts, ix, totalQ));
}
