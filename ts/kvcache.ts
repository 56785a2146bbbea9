// flashAttnWithKVCache: decoding / chunked prefill over a KV cache (dense or paged), with new keys and
// values appended in place and rotary applied inside the library. Mirrors flash_attn_with_kvcache.
import { invalid } from "./errors.ts";
import { Checker } from "./checks.ts";
import { Tensor } from "./tensor.ts";
import { uniformSeqlens } from "./workspace.ts";
import { attnDType, freeOnError, fwdPacker, launch, setOperands, setOptions, setTensor, type AttnOptions, type AttnResult } from "./attention.ts";

export interface KVCacheOptions extends Omit<AttnOptions, "dropoutP" | "seed" | "offset"> {
  /** New keys/values [b, seqlen_new, hk, d] / [.., dv] written at rows cacheSeqlens[i].. before attending. */
  k?: Tensor;
  v?: Tensor;
  /** Rows already in the cache: an int32 [b] tensor, or one number for every sequence (kept in a cached buffer). */
  cacheSeqlens: number | Tensor;
  /** [seqlen_ro, rotary_dim / 2] in q's dtype. */
  rotaryCos?: Tensor;
  rotarySin?: Tensor;
  /** Pairs (2j, 2j+1) when true (flash_attn's default), (j, j + rotary_dim/2) when false. */
  rotaryInterleaved?: boolean;
  /** int32 [b]: cache batch row used by each sequence (dense cache). */
  cacheBatchIdx?: Tensor;
  /** int32 [b]: first valid cache row of each sequence. */
  cacheLeftpad?: Tensor;
  /** int32 [b, max_blocks]: page table; kCache/vCache are then [num_pages, page_size, hk, d]. */
  blockTable?: Tensor;
}

/** q [b, sq, h, d]; kCache/vCache [b_k, cap, hk, d|dv] (dense) or [num_pages, page, hk, d|dv] (paged). */
export function flashAttnWithKVCache(q: Tensor, kCache: Tensor, vCache: Tensor, opts: KVCacheOptions): AttnResult {
  const c = new Checker("flashAttnWithKVCache");
  c.tensor("q", q, 4);
  const dtype = attnDType(c, q);
  c.tensor("kCache", kCache, 4, dtype);
  c.tensor("vCache", vCache, 4, dtype);
  const [b, sq, h, d] = q.shape as [number, number, number, number];
  const [nk, rows, hk] = kCache.shape as [number, number, number, number];
  const dv = vCache.shape[3]!;
  c.shape("kCache", kCache, [nk, rows, hk, d]);
  c.shape("vCache", vCache, [nk, rows, hk, dv]);
  const dev = c.device!;

  const owned: Tensor[] = []; // tensors this call allocates, freed if it fails
  return freeOnError(owned, () => {
    // one number: uploaded into a cached buffer after every check has passed (see uniformSeqlens)
    let seqlens: Tensor | number;
    if (typeof opts?.cacheSeqlens === "number") seqlens = c.int("cacheSeqlens", opts.cacheSeqlens, 0);
    else {
      seqlens = c.tensor("cacheSeqlens", opts?.cacheSeqlens, 1, "int32");
      c.shape("cacheSeqlens", seqlens, [b]);
    }
    const out = opts.out ? c.tensor("out", opts.out, 4, dtype) : Tensor.empty([b, sq, h, dv], dtype, dev);
    if (!opts.out) owned.push(out);
    c.shape("out", out, [b, sq, h, dv]);
    let lse = opts.lse ? c.tensor("lse", opts.lse, 3, "float32") : undefined;
    if (lse) c.shape("lse", lse, [b, h, sq]);
    else if (opts.returnLse) owned.push((lse = Tensor.empty([b, h, sq], "float32", dev)));

    const p = fwdPacker().reset();
    setOperands(p, dev, dtype, q, kCache, vCache, out);
    p.i32("b", b).i32("seqlen_q", sq).i32("d", d).i32("dv", dv).i32("h", h).i32("h_k", hk);
    if (lse) p.ptr("softmax_lse_ptr", lse.ptr);

    const knew = c.optional("k", opts.k, 4, dtype);
    const vnew = c.optional("v", opts.v, 4, dtype);
    if (!knew !== !vnew) throw invalid(c.op, "k and v must be given together");
    if (knew && vnew) {
      const sn = knew.shape[1]!;
      c.shape("k", knew, [b, sn, hk, d]);
      c.shape("v", vnew, [b, sn, hk, dv]);
      setTensor(p, "knew", knew);
      setTensor(p, "vnew", vnew);
      p.i32("seqlen_knew", sn);
    }
    const cos = c.optional("rotaryCos", opts.rotaryCos, 2, dtype);
    const sin = c.optional("rotarySin", opts.rotarySin, 2, dtype);
    if (!cos !== !sin) throw invalid(c.op, "rotaryCos and rotarySin must be given together");
    if (cos && sin) {
      c.shape("rotarySin", sin, cos.shape);
      if (!cos.isContiguous || !sin.isContiguous) throw invalid(c.op, "rotaryCos/rotarySin must be contiguous");
      p.ptr("rotary_cos_ptr", cos.ptr).ptr("rotary_sin_ptr", sin.ptr);
      p.i32("rotary_dim", cos.shape[1]! * 2).i32("rotary_seqlen", cos.shape[0]!);
      p.i32("is_rotary_interleaved", (opts.rotaryInterleaved ?? true) ? 1 : 0);
    }
    const bidx = c.optional("cacheBatchIdx", opts.cacheBatchIdx, 1, "int32");
    if (bidx) {
      c.shape("cacheBatchIdx", bidx, [b]);
      p.ptr("cache_batch_idx", bidx.ptr).i32("b_k", nk);
    }
    const leftpad = c.optional("cacheLeftpad", opts.cacheLeftpad, 1, "int32");
    if (leftpad) {
      c.shape("cacheLeftpad", leftpad, [b]);
      p.ptr("leftpad_k", leftpad.ptr);
    }
    const bt = c.optional("blockTable", opts.blockTable, 2, "int32");
    if (bt) {
      if (bt.shape[0] !== b) throw invalid(c.op, `blockTable must have ${b} rows, got [${bt.shape}]`);
      const maxBlocks = bt.shape[1]!;
      p.ptr("block_table", bt.ptr).i64("block_table_batch_stride", bt.strides[0]!);
      p.i32("page_block_size", rows).i32("max_num_blocks_per_seq", maxBlocks).i32("num_pages", nk);
      p.i32("seqlen_k", maxBlocks * rows);
    } else {
      if (!bidx && nk !== b) throw invalid(c.op, `kCache has ${nk} batch rows but q has b=${b} (pass cacheBatchIdx)`);
      p.i32("seqlen_k", rows);
    }
    setOptions(c, p, opts, b, h);
    if (opts.numSplits !== undefined) p.i32("num_splits", c.int("numSplits", opts.numSplits, 0, 256));
    p.ptr("cache_seqlens", typeof seqlens === "number" ? uniformSeqlens(dev, b, seqlens, opts.stream) : seqlens.ptr);
    launch("flash_fwd_kvcache", p, dev, opts.stream);
    return { out, lse };
  });
}
