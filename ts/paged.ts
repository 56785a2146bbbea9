// PagedKVCache: a paged KV cache for inference tools on top of flashAttnWithKVCache.
//
// A pool of `numPages` pages of `pageSize` tokens ([numPages, pageSize, hk, d] K and V tensors on the device,
// any page size >= 1) shared by many sequences. Pages are handed out per sequence as it grows and returned
// when it is freed; the block table lives on the host (one page list per sequence) and is uploaded, for the
// batch of sequences of a call, only when it changed. `attend` appends the new keys/values of every sequence
// of the batch (rotated inside the library when rotary tables are given) and attends in one library call;
// `append` appends without attending.
//
//   using cache = new PagedKVCache({ numPages: 1024, pageSize: 16, kvHeads: 8, headDim: 128, dtype: "bfloat16", device: 0 });
//   const a = cache.addSequence(), b = cache.addSequence();
//   const { out } = cache.attend([a, b], q, { k, v, causal: true });   // q [2, sq, h, d], k/v [2, sq, hk, d]
//   cache.freeSequence(a);
import { invalid } from "./errors.ts";
import { MemcpyKind, memcpy } from "./device.ts";
import { flashAttnWithKVCache, type KVCacheOptions } from "./kvcache.ts";
import type { AttnResult } from "./attention.ts";
import type { AttnDType } from "./dtype.ts";
import { Tensor, type Device } from "./tensor.ts";

export interface PagedKVCacheOptions {
  /** Pages in the pool (shared by every sequence). */
  numPages: number;
  /** Tokens per page, >= 1 (any size). */
  pageSize: number;
  /** KV heads (hk). */
  kvHeads: number;
  /** K head dim (d) and V head dim (dv, default d). */
  headDim: number;
  headDimV?: number;
  dtype: AttnDType;
  device: Device;
  /** Longest sequence in tokens (block-table width = ceil(maxSeqLen / pageSize)). Default numPages * pageSize. */
  maxSeqLen?: number;
}

/** Options of one attend call: every flashAttnWithKVCache option except the cache bookkeeping ones. */
export type PagedAttendOptions = Omit<KVCacheOptions, "cacheSeqlens" | "blockTable" | "cacheBatchIdx" | "cacheLeftpad">;

interface Seq {
  pages: number[];
  length: number;
}

interface BatchBuffers {
  table: Tensor; // int32 [b, maxBlocks] on the cache's device
  seqlens: Tensor; // int32 [b]
  hostTable: Int32Array; // last uploaded contents (the host mirror of `table`)
  hostSeqlens: Int32Array;
  valid: boolean;
}

export class PagedKVCache implements Disposable {
  readonly k: Tensor; // [numPages, pageSize, hk, d]
  readonly v: Tensor; // [numPages, pageSize, hk, dv]
  readonly numPages: number;
  readonly pageSize: number;
  readonly maxBlocks: number;
  readonly device: Device;
  #free: number[];
  #seqs = new Map<number, Seq>();
  #nextId = 0;
  #buffers = new Map<number, BatchBuffers>();
  #disposed = false;

  constructor(o: PagedKVCacheOptions) {
    const op = "PagedKVCache";
    for (const [n, v] of [["numPages", o.numPages], ["pageSize", o.pageSize], ["kvHeads", o.kvHeads], ["headDim", o.headDim]] as const)
      if (!Number.isSafeInteger(v) || v < 1) throw invalid(op, `${n}=${v} must be an integer >= 1`);
    const dv = o.headDimV ?? o.headDim;
    if (!Number.isSafeInteger(dv) || dv < 1) throw invalid(op, `headDimV=${dv} must be an integer >= 1`);
    const maxLen = o.maxSeqLen ?? o.numPages * o.pageSize;
    if (!Number.isSafeInteger(maxLen) || maxLen < 1) throw invalid(op, `maxSeqLen=${maxLen} must be an integer >= 1`);
    this.numPages = o.numPages;
    this.pageSize = o.pageSize;
    this.maxBlocks = Math.ceil(maxLen / o.pageSize);
    this.device = o.device;
    this.k = Tensor.empty([o.numPages, o.pageSize, o.kvHeads, o.headDim], o.dtype, o.device);
    try {
      this.v = Tensor.empty([o.numPages, o.pageSize, o.kvHeads, dv], o.dtype, o.device);
    } catch (e) {
      this.k.dispose();
      throw e;
    }
    // Lowest page first (a stack popped from the end).
    this.#free = Array.from({ length: o.numPages }, (_, i) => o.numPages - 1 - i);
  }

  /** Pages not owned by any sequence. */
  get freePages(): number {
    return this.#free.length;
  }

  /** Live sequence ids. */
  get sequences(): number[] {
    return [...this.#seqs.keys()];
  }

  /** Starts an empty sequence and returns its id. */
  addSequence(): number {
    this.#live();
    const id = this.#nextId++;
    this.#seqs.set(id, { pages: [], length: 0 });
    return id;
  }

  /** Returns the sequence's pages to the pool. */
  freeSequence(id: number): void {
    const s = this.#seq(id);
    for (let i = s.pages.length - 1; i >= 0; i--) this.#free.push(s.pages[i]!);
    this.#seqs.delete(id);
    for (const b of this.#buffers.values()) b.valid = false;
  }

  /** Tokens stored for the sequence. */
  length(id: number): number {
    return this.#seq(id).length;
  }

  /** The sequence's pages, in token order (a copy). */
  pages(id: number): number[] {
    return [...this.#seq(id).pages];
  }

  /** Makes room for `tokens` more tokens (allocates pages); throws, allocating nothing, when the pool is short. */
  reserve(id: number, tokens: number): void {
    const s = this.#seq(id);
    const need = Math.ceil((s.length + tokens) / this.pageSize);
    if (need > this.maxBlocks)
      throw invalid("PagedKVCache.reserve", `sequence ${id} would hold ${s.length + tokens} tokens, more than maxSeqLen=${this.maxBlocks * this.pageSize}`);
    const more = need - s.pages.length;
    if (more > this.#free.length)
      throw invalid("PagedKVCache.reserve", `sequence ${id} needs ${more} more pages but only ${this.#free.length} are free`);
    for (let i = 0; i < more; i++) s.pages.push(this.#free.pop()!);
  }

  /**
   * Appends k/v ([b, n, hk, d] / [b, n, hk, dv], rotated when rotary tables are given) to the sequences `ids`
   * (one per batch row) and attends q ([b, sq, h, d]) over every cached token, the new ones included. The
   * sequences grow by n. Returns flashAttnWithKVCache's result.
   */
  attend(ids: readonly number[], q: Tensor, opts: PagedAttendOptions = {}): AttnResult {
    this.#live();
    const op = "PagedKVCache.attend";
    const b = ids.length;
    if (b < 1) throw invalid(op, "ids must name at least one sequence");
    if (new Set(ids).size !== b) throw invalid(op, `ids [${ids}] name a sequence twice`);
    if (q.shape[0] !== b) throw invalid(op, `q has ${q.shape[0]} batch rows but ${b} sequence ids were given`);
    const n = opts.k ? opts.k.shape[1]! : 0;
    const seqs = ids.map((id) => this.#seq(id));
    // Reserve for every sequence first; roll back on failure so nothing changes when the pool is short.
    const before = seqs.map((s) => s.pages.length);
    try {
      for (const id of ids) this.reserve(id, n);
    } catch (e) {
      seqs.forEach((s, i) => {
        while (s.pages.length > before[i]!) this.#free.push(s.pages.pop()!);
      });
      throw e;
    }
    const buf = this.#upload(seqs, opts.stream);
    const res = flashAttnWithKVCache(q, this.k, this.v, { ...opts, cacheSeqlens: buf.seqlens, blockTable: buf.table });
    for (const s of seqs) s.length += n;
    return res;
  }

  /** Appends k/v to the sequences without attending (an attend with zero query rows). */
  append(ids: readonly number[], k: Tensor, v: Tensor, opts: Pick<PagedAttendOptions, "rotaryCos" | "rotarySin" | "rotaryInterleaved" | "stream"> = {}): void {
    const hk = this.k.shape[2]!;
    using q = Tensor.empty([ids.length, 0, hk, this.k.shape[3]!], this.k.dtype, this.device);
    // numSplits 1: nothing to split without query rows (and the CPU heuristic divides by the row count).
    const res = this.attend(ids, q, { ...opts, k, v, numSplits: 1 });
    res.out.dispose();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.#buffers.values()) {
      b.table.dispose();
      b.seqlens.dispose();
    }
    this.#buffers.clear();
    this.#seqs.clear();
    this.k.dispose();
    this.v.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // Block table [b, maxBlocks] and cache_seqlens [b] of this batch, uploaded where they changed.
  #upload(seqs: Seq[], stream: PagedAttendOptions["stream"]): BatchBuffers {
    const b = seqs.length, w = this.maxBlocks;
    let buf = this.#buffers.get(b);
    if (!buf) {
      const table = Tensor.empty([b, w], "int32", this.device);
      let seqlens: Tensor;
      try {
        seqlens = Tensor.empty([b], "int32", this.device);
      } catch (e) {
        table.dispose();
        throw e;
      }
      buf = { table, seqlens, hostTable: new Int32Array(b * w), hostSeqlens: new Int32Array(b), valid: false };
      this.#buffers.set(b, buf);
    }
    let tableChanged = !buf.valid, lensChanged = !buf.valid;
    for (let i = 0; i < b; i++) {
      const s = seqs[i]!;
      if (buf.hostSeqlens[i] !== s.length) {
        buf.hostSeqlens[i] = s.length;
        lensChanged = true;
      }
      const row = i * w;
      for (let j = 0; j < w; j++) {
        const e = j < s.pages.length ? s.pages[j]! : 0; // unused columns point at page 0 (never read)
        if (buf.hostTable[row + j] !== e) {
          buf.hostTable[row + j] = e;
          tableChanged = true;
        }
      }
    }
    const put = (t: Tensor, host: Int32Array) => {
      if (this.device === "cpu") t.hostBytes.set(new Uint8Array(host.buffer, host.byteOffset, host.byteLength));
      else memcpy(t.ptr, host, host.byteLength, MemcpyKind.HostToDevice, stream ?? null);
    };
    if (tableChanged) put(buf.table, buf.hostTable);
    if (lensChanged) put(buf.seqlens, buf.hostSeqlens);
    buf.valid = true;
    return buf;
  }

  #seq(id: number): Seq {
    this.#live();
    const s = this.#seqs.get(id);
    if (!s) throw invalid("PagedKVCache", `sequence ${id} does not exist (freed or never added)`);
    return s;
  }

  #live(): void {
    if (this.#disposed) throw invalid("PagedKVCache", "used after dispose()");
  }
}
