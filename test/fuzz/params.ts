// Seeded random draws of bad and odd params for flash_fwd, flash_fwd_kvcache and flash_bwd, over a memory backend
// (hostMem: host arrays for the CPU backend; a CUDA one implements Mem over device buffers). What every draw must
// keep: no crash, a known status, and a refused call leaves every output -- o, lse, dq / dk / dv / softmax_d and,
// for the KV-cache entry, the caches it would append to -- exactly as it was, with a message in flash_last_error.
// Mutations only ever make a problem invalid or smaller than its buffers: a caller who passes sizes or strides beyond
// their allocations is outside what any library can check (FA2's neither), so those are not drawn (nor h_k = 0, which
// means h_k = h: more K/V heads than the fixture holds). Index arrays (cu_seqlens, seqused, cache_seqlens, tables) get
// random contents only where the library reads them: always on the CPU, on CUDA with FLASH_CHECK_INDICES=1.
import { ptr, type Pointer } from "bun:ffi";
import { library } from "../../ts/index.ts";
import type { Layout } from "../../ts/library.ts";
import { Params, type BwdField, type FwdField } from "../../ts/params.ts";

const lib = library();
const s = lib.symbols;
export const B = 2, SQ = 5, SK = 7, H = 4, HK = 2, D = 16;
const KNOWN = new Set<number>([0, 1, 2, 3, 4, 5, 6, 8]);
const BIG = 2 ** 31 - 1;

// Element counts; "f32" buffers are float32 whatever the problem's dtype (LSE, ALiBi slopes, softmax_d).
const ELEMS = {
  q: B * SQ * H * D, k: B * SK * HK * D, v: B * SK * HK * D, o: B * SQ * H * D, dO: B * SQ * H * D,
  dq: B * SQ * H * D, dk: B * SK * HK * D, dv: B * SK * HK * D, kc: 8 * SK * HK * D, vc: 8 * SK * HK * D,
  kn: B * 2 * HK * D, vn: B * 2 * HK * D, rot: 64,
} as const;
const F32 = { lse: B * H * SQ, slopes: B * H, dsum: B * H * SQ } as const;
export type Name = keyof typeof ELEMS | keyof typeof F32;
export type Idx = "cuq" | "cuk" | "sq" | "sk" | "lp" | "cache" | "bidx" | "table";
export const OUTS: readonly Name[] = ["o", "lse", "dq", "dk", "dv", "dsum", "kc", "vc"];

/** Where the buffers live: the pointers passed, and what the checks need. */
export interface Mem {
  readonly deviceType: 1 | 2;
  readonly dtype: 2 | 3;
  readonly checksIndices: boolean;
  addr(n: Name): number | bigint;
  /** Index array `n` with these contents; its address. */
  idx(n: Idx, v: ArrayLike<number>): number | bigint;
  /** Inputs to fixed values, every output to all-ones bytes (NaN in every float format). */
  reset(): void;
  /** Output n still all-ones bytes. */
  untouched(n: Name): boolean;
  workspace(bytes: number): number | bigint | null;
}

/** Every buffer the draws use. */
export const NAMES = [...Object.keys(ELEMS), ...Object.keys(F32)] as Name[];
export const bytesOf = (n: Name, esize: number) => (n in F32 ? F32[n as keyof typeof F32] * 4 : ELEMS[n as keyof typeof ELEMS] * esize);

export function hostMem(): Mem {
  const bufs = new Map<Name, Uint8Array>();
  for (const n of NAMES) bufs.set(n, new Uint8Array(new ArrayBuffer(bytesOf(n, 4))));
  const idx = new Map<Idx, Int32Array>();
  const ws = new Uint8Array(new ArrayBuffer(1 << 20));
  return {
    deviceType: 1, dtype: 3, checksIndices: true,
    addr: (n) => ptr(bufs.get(n)!),
    idx(n, v) {
      let a = idx.get(n);
      if (!a) idx.set(n, (a = new Int32Array(new ArrayBuffer(64))));
      a.fill(0).set(v);
      return ptr(a);
    },
    reset() {
      for (const [n, b] of bufs) {
        if (OUTS.includes(n)) b.fill(0xff);
        else new Float32Array(b.buffer).fill(0.25);
      }
    },
    untouched: (n) => bufs.get(n)!.every((x) => x === 0xff),
    workspace: (bytes) => (bytes <= ws.byteLength ? ptr(ws) : null),
  };
}

// mulberry32: small, seedable, good enough to draw cases.
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Draw = { rand: () => number; log: string[]; mem: Mem };
const pick = <T>(d: Draw, xs: readonly T[]): T => xs[Math.floor(d.rand() * xs.length)]!;

// One mutation each: a field set to a bad or smaller value, or an optional buffer attached.
type Mut<F extends string = FwdField> = (p: Params<F>, d: Draw) => void;
const set32 = <F extends string>(name: F, vals: number[]): Mut<F> => (p, d) => {
  const v = pick(d, vals);
  d.log.push(`${name}=${v}`);
  p.i32(name, v);
};
const set64 = <F extends string>(name: F, vals: number[]): Mut<F> => (p, d) => {
  const v = pick(d, vals);
  d.log.push(`${name}=${v}`);
  p.i64(name, v);
};
// Raw writes: Params' setters refuse NaN / inf on purpose (the TS layer's own check), the C layer must too.
const setF = <F extends string>(layout: Layout, name: F, vals: number[]): Mut<F> => (p, d) => {
  const v = pick(d, vals);
  d.log.push(`${name}=${v}`);
  new DataView(p.bytes.buffer).setFloat32(layout.fields.get(name)!.offset, v, true);
};
const nul = <F extends string>(name: F): Mut<F> => (p, d) => {
  d.log.push(`${name}=NULL`);
  p.ptr(name, 0);
};
// An index array with random contents in [lo, hi]; a no-op where the library would not read them.
const arr = <F extends string>(name: F, which: Idx, lo: number, hi: number): Mut<F> => (p, d) => {
  if (!d.mem.checksIndices) return;
  const v = Array.from({ length: 16 }, () => lo + Math.floor(d.rand() * (hi - lo + 1)));
  d.log.push(`${name}=[${v.slice(0, 4).join(",")}..]`);
  p.ptr(name, d.mem.idx(which, v));
};

// Fields flash_fwd_params and flash_bwd_params share (same names, same rules).
function shared<F extends FwdField & BwdField>(layout: Layout): Mut<F>[] {
  return [
    set32<F>("b" as F, [-1, 0, 1]), set32<F>("seqlen_q" as F, [-1, 0, 1, 3]), set32<F>("seqlen_k" as F, [-1, 0, 1, 4]),
    set32<F>("d" as F, [-1, 0, 1, 7, 8, 257]), set32<F>("dv" as F, [-1, 1, 8, 257, 300]),
    set32<F>("h" as F, [-1, 0, 1, 2, 3]), set32<F>("h_k" as F, [-1, 1]),
    set32<F>("dtype" as F, [-1, 0, 1, 2, 3, 4, 99]), set32<F>("device_type" as F, [-1, 0, 3, 7]), set32<F>("device_id" as F, [-1, 5]),
    set32<F>("reserved0" as F, [1, -1]), set32<F>("reserved1" as F, [1]),
    set32<F>("is_causal" as F, [-1, 0, 1, 2]), set32<F>("window_size_left" as F, [-2, -1, 0, 1, 3, BIG]),
    set32<F>("window_size_right" as F, [-2, -1, 0, 1, 3, BIG]),
    setF<F>(layout, "scale_softmax" as F, [-1, 0, 0.25, NaN, Infinity, -Infinity, 1e38]),
    setF<F>(layout, "softcap" as F, [-1, 0, 5, NaN, Infinity]), setF<F>(layout, "p_dropout" as F, [-0.5, 0, 0.3, 1, 2, NaN]),
    set64<F>("q_row_stride" as F, [-1, 0, 16]), set64<F>("k_head_stride" as F, [-(2 ** 40), 0, 8]),
    set64<F>("o_batch_stride" as F, [-1, 0]), set64<F>("v_row_stride" as F, [-1, 0]), set64<F>("o_head_stride" as F, [-1, 0, 8]),
    nul<F>("q_ptr" as F), nul<F>("k_ptr" as F), nul<F>("v_ptr" as F), nul<F>("o_ptr" as F), nul<F>("softmax_lse_ptr" as F),
    arr<F>("cu_seqlens_q" as F, "cuq", -1, B * SQ), arr<F>("cu_seqlens_k" as F, "cuk", -1, B * SK),
    set32<F>("total_q" as F, [-1, 0, 3, B * SQ]), arr<F>("seqused_q" as F, "sq", -1, SQ + 2),
    arr<F>("seqused_k" as F, "sk", -1, SK + 2),
    (p, d) => {
      const v = pick(d, [0n, 8n, BigInt(layout.size - 8), BigInt(layout.size + 8), 100000n]);
      d.log.push(`struct_size=${v}`);
      p.u64("struct_size" as F, v);
    },
    (p, d) => {
      const st = pick(d, [-4, 0, H]);
      d.log.push(`alibi stride=${st}`);
      p.ptr("alibi_slopes_ptr" as F, d.mem.addr("slopes")).i64("alibi_slopes_batch_stride" as F, st);
    },
  ];
}
const fwdCommon: Mut[] = [
  ...shared<FwdField & BwdField>(lib.fwdLayout),
  set32("reserved2", [1]), set32("reserved3", [1]), set32("num_splits", [-1, 0, 1, 3, 300]),
  set32("pack_gqa", [-2, -1, 0, 1, 2]),
  (p, d) => { // a caller built before pack_gqa: valid, the appended fields unread
    d.log.push("struct_size=before pack_gqa");
    p.u64("struct_size", BigInt(lib.fwdLayout.fields.get("pack_gqa")!.offset));
  },
];
const fwdOnly: Mut[] = [
  arr("leftpad_k", "lp", -1, SK + 2),
  (p, d) => {
    d.log.push("knew in flash_fwd");
    p.ptr("knew_ptr", d.mem.addr("kn"));
  },
  (p, d) => {
    d.log.push("cache_seqlens in flash_fwd");
    p.ptr("cache_seqlens", d.mem.idx("cache", [1, 2]));
  },
];
const kvOnly: Mut[] = [
  arr("cache_seqlens", "cache", -1, SK + 1),
  (p, d) => {
    const n = pick(d, [-1, 0, 1, 2]);
    d.log.push(`knew seqlen_knew=${n}`);
    p.ptr("knew_ptr", d.mem.addr("kn")).ptr("vnew_ptr", d.mem.addr("vn")).i32("seqlen_knew", n);
    for (const t of ["knew", "vnew"] as const)
      p.i64(`${t}_batch_stride`, 2 * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  },
  nul("vnew_ptr"),
  (p, d) => {
    const rd = pick(d, [-2, 0, 3, 4, 16, 18]), rs = pick(d, [-1, 0, 4, 8]);
    d.log.push(`rotary dim=${rd} seqlen=${rs}`);
    p.i32("rotary_dim", rd).ptr("rotary_cos_ptr", d.mem.addr("rot")).ptr("rotary_sin_ptr", d.mem.addr("rot"));
    p.i32("rotary_seqlen", rs);
  },
  set32("is_rotary_interleaved", [-1, 1, 2]),
  (p, d) => {
    if (!d.mem.checksIndices) return;
    const bk = pick(d, [-1, 0, 1, 2, 3, 8]);
    arr("cache_batch_idx", "bidx", -1, 9)(p, d);
    d.log.push(`b_k=${bk}`);
    p.i32("b_k", bk);
  },
  (p, d) => {
    if (!d.mem.checksIndices) return;
    const pbs = pick(d, [-1, 0, 1, 2, 7]), np = pick(d, [-1, 0, 1, 8]), mb = pick(d, [-1, 0, 1, 7]);
    const bs = pick(d, [-1, 0, 7]);
    arr("block_table", "table", -1, 9)(p, d);
    d.log.push(`paged pbs=${pbs} pages=${np} max_blocks=${mb} stride=${bs}`);
    p.i32("page_block_size", pbs).i32("num_pages", np).i32("max_num_blocks_per_seq", mb).i64("block_table_batch_stride", bs);
  },
  (p, d) => {
    d.log.push("cu_seqlens_k in kvcache");
    p.ptr("cu_seqlens_k", d.mem.idx("cuk", [0, 3, 6]));
  },
];
const bwdMuts: Mut<BwdField>[] = [
  ...shared<FwdField & BwdField>(lib.bwdLayout),
  set32("deterministic", [-1, 1, 2]), nul("do_ptr"), nul("dq_ptr"), nul("dk_ptr"), nul("dv_ptr"),
  set64("do_row_stride", [-1, 0]), set64("dq_head_stride", [-1, 0, 8]), set64("dk_batch_stride", [-1, 0]),
  set64("dv_row_stride", [-1, 0]),
  (p, d) => {
    d.log.push("dsoftmax_sum");
    p.ptr("dsoftmax_sum", d.mem.addr("dsum"));
  },
];

function fwdBase(m: Mem, kv: boolean): Params<FwdField> {
  const p = new Params<FwdField>(lib.fwdLayout, (b) => s.flash_fwd_params_init(b), "fuzz").reset();
  p.i32("device_type", m.deviceType).i32("dtype", m.dtype).i32("b", B).i32("seqlen_q", SQ).i32("seqlen_k", SK).i32("d", D);
  p.i32("h", H).i32("h_k", HK);
  p.ptr("q_ptr", m.addr("q")).ptr("o_ptr", m.addr("o")).ptr("softmax_lse_ptr", m.addr("lse"));
  p.ptr("k_ptr", m.addr(kv ? "kc" : "k")).ptr("v_ptr", m.addr(kv ? "vc" : "v"));
  for (const t of ["q", "o"] as const) p.i64(`${t}_batch_stride`, SQ * H * D).i64(`${t}_row_stride`, H * D).i64(`${t}_head_stride`, D);
  for (const t of ["k", "v"] as const) p.i64(`${t}_batch_stride`, SK * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  if (kv) p.ptr("cache_seqlens", m.idx("cache", [3, 4]));
  return p;
}

function bwdBase(m: Mem): Params<BwdField> {
  const p = new Params<BwdField>(lib.bwdLayout, (b) => s.flash_bwd_params_init(b), "fuzz").reset();
  p.i32("device_type", m.deviceType).i32("dtype", m.dtype).i32("b", B).i32("seqlen_q", SQ).i32("seqlen_k", SK).i32("d", D);
  p.i32("h", H).i32("h_k", HK);
  for (const [f, n] of [["q_ptr", "q"], ["k_ptr", "k"], ["v_ptr", "v"], ["o_ptr", "q"], ["do_ptr", "dO"], ["softmax_lse_ptr", "lse"],
    ["dq_ptr", "dq"], ["dk_ptr", "dk"], ["dv_ptr", "dv"]] as const) p.ptr(f, m.addr(n));
  for (const t of ["q", "o", "do", "dq"] as const)
    p.i64(`${t}_batch_stride`, SQ * H * D).i64(`${t}_row_stride`, H * D).i64(`${t}_head_stride`, D);
  for (const t of ["k", "v", "dk", "dv"] as const)
    p.i64(`${t}_batch_stride`, SK * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  return p;
}

export type Entry = "flash_fwd" | "flash_fwd_kvcache" | "flash_bwd";

/** `draws` draws from `seed`: the invariant breaches found, and how often each status came back. */
export function fuzz(m: Mem, entry: Entry, seed: number, draws: number) {
  const sizeFn = {
    flash_fwd: s.flash_fwd_workspace_size, flash_fwd_kvcache: s.flash_fwd_kvcache_workspace_size, flash_bwd: s.flash_bwd_workspace_size,
  }[entry];
  const muts = (entry === "flash_bwd" ? bwdMuts : [...fwdCommon, ...(entry === "flash_fwd" ? fwdOnly : kvOnly)]) as Mut<string>[];
  const outs: Name[] = entry === "flash_bwd" ? ["dq", "dk", "dv", "dsum"] : entry === "flash_fwd" ? ["o", "lse"] : ["o", "lse", "kc", "vc"];
  const sizeOut = new BigUint64Array(new ArrayBuffer(8));
  const failures: string[] = [];
  const counts = new Map<number, number>();
  for (let i = 0; i < draws; ++i) {
    const d: Draw = { rand: rng(seed * 100003 + i), log: [], mem: m };
    m.reset();
    const p = (entry === "flash_bwd" ? bwdBase(m) : fwdBase(m, entry === "flash_fwd_kvcache")) as Params<string>;
    const n = 1 + Math.floor(d.rand() * 4);
    for (let j = 0; j < n; ++j) pick(d, muts)(p, d);
    const where = () => `${entry} draw ${seed}:${i} [${d.log.join("; ")}]`;
    let st = sizeFn(p.bytes, sizeOut);
    if (st === 0) {
      const need = Number(sizeOut[0]);
      const ws = m.workspace(need);
      if (ws === null) {
        failures.push(`${where()}: workspace ${need} B for a problem this small`);
        continue;
      }
      st = s[entry](p.bytes, ws as Pointer, need, null);
    }
    counts.set(st, (counts.get(st) ?? 0) + 1);
    if (!KNOWN.has(st)) failures.push(`${where()} -> ${st}: unknown status`);
    if (st !== 0) {
      const msg = String(s.flash_last_error());
      if (msg.length === 0) failures.push(`${where()} -> ${st}: no message`);
      const touched = outs.filter((o) => !m.untouched(o));
      if (touched.length) failures.push(`${where()} -> ${st}: refused (${msg}) but wrote ${touched.join(", ")}`);
    }
  }
  return { failures, counts };
}
