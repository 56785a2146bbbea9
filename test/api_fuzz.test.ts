// The API layer's promise under random combinations of bad and odd fields (errors.test.ts checks one rule at a time):
// nothing crashes, every call returns a known status, and a refused call leaves every output -- o, lse and, for the
// KV-cache entry, the caches it would append to -- exactly as it was, with a message in flash_last_error.
// Mutations only ever make a problem invalid or smaller than its buffers: a caller who passes sizes or strides beyond
// their allocations is outside what any library can check (FA2's neither), so those are not drawn (nor h_k = 0, which
// means h_k = h: more K/V heads than the fixture holds). Seeded, so a
// failure names the draw that reproduces it.
import { expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { Status, library } from "../ts/index.ts";
import type { Layout } from "../ts/library.ts";
import { Params, type BwdField, type FwdField } from "../ts/params.ts";

const lib = library();
const s = lib.symbols;
const B = 2, SQ = 5, SK = 7, H = 4, HK = 2, D = 16;
const KNOWN = new Set<number>([0, 1, 2, 3, 4, 5, 6, 8]);

function f32(n: number) {
  return new Float32Array(new ArrayBuffer(n * 4));
}
function i32(n: number) {
  return new Int32Array(new ArrayBuffer(n * 4));
}

const buf = {
  q: f32(B * SQ * H * D), k: f32(B * SK * HK * D), v: f32(B * SK * HK * D),
  o: f32(B * SQ * H * D), lse: f32(B * H * SQ),
  kc: f32(8 * SK * HK * D), vc: f32(8 * SK * HK * D), kn: f32(B * 2 * HK * D), vn: f32(B * 2 * HK * D),
  rot: f32(64), slopes: f32(B * H),
  dO: f32(B * SQ * H * D), dq: f32(B * SQ * H * D), dk: f32(B * SK * HK * D), dv: f32(B * SK * HK * D), dsum: f32(B * H * SQ),
  cuq: i32(16), cuk: i32(16), sq: i32(16), sk: i32(16), lp: i32(16), cache: i32(16), bidx: i32(16), table: i32(16),
};

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

type Draw = { rand: () => number; log: string[] };
const pick = <T>(d: Draw, xs: readonly T[]): T => xs[Math.floor(d.rand() * xs.length)]!;

// Raw writes: Params' setters refuse NaN / inf on purpose (the TS layer's own check), the C layer must too.
function rawF32(layout: Layout, p: Params<string>, name: string, v: number) {
  new DataView(p.bytes.buffer).setFloat32(layout.fields.get(name)!.offset, v, true);
}
function fillInts(d: Draw, a: Int32Array, lo: number, hi: number, name: string) {
  for (let i = 0; i < a.length; ++i) a[i] = lo + Math.floor(d.rand() * (hi - lo + 1));
  d.log.push(`${name}=[${Array.from(a.subarray(0, 4)).join(",")}..]`);
}

function base(kv: boolean): Params<FwdField> {
  const p = new Params<FwdField>(lib.fwdLayout, (b) => s.flash_fwd_params_init(b), "fuzz").reset();
  p.i32("device_type", 1).i32("dtype", 3).i32("b", B).i32("seqlen_q", SQ).i32("seqlen_k", SK).i32("d", D).i32("h", H).i32("h_k", HK);
  p.ptr("q_ptr", ptr(buf.q)).ptr("o_ptr", ptr(buf.o)).ptr("softmax_lse_ptr", ptr(buf.lse));
  p.ptr("k_ptr", ptr(kv ? buf.kc : buf.k)).ptr("v_ptr", ptr(kv ? buf.vc : buf.v));
  for (const t of ["q", "o"] as const) p.i64(`${t}_batch_stride`, SQ * H * D).i64(`${t}_row_stride`, H * D).i64(`${t}_head_stride`, D);
  for (const t of ["k", "v"] as const) p.i64(`${t}_batch_stride`, SK * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  if (kv) {
    buf.cache.fill(0).set([3, 4]);
    p.ptr("cache_seqlens", ptr(buf.cache));
  }
  return p;
}

// One mutation each: a field set to a bad or smaller value, or an optional array attached with random contents.
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
const setF = <F extends string>(layout: Layout, name: F, vals: number[]): Mut<F> => (p, d) => {
  const v = pick(d, vals);
  d.log.push(`${name}=${v}`);
  rawF32(layout, p as Params<string>, name, v);
};
const nul = <F extends string>(name: F): Mut<F> => (p, d) => {
  d.log.push(`${name}=NULL`);
  p.ptr(name, 0);
};
const arr = <F extends string>(name: F, a: Int32Array, lo: number, hi: number): Mut<F> => (p, d) => {
  fillInts(d, a, lo, hi, name);
  p.ptr(name, ptr(a));
};
const BIG = 2 ** 31 - 1;

// Fields flash_fwd_params and flash_bwd_params share (same names, same rules).
function shared<F extends FwdField & BwdField>(layout: Layout): Mut<F>[] {
  return [
    set32<F>("b" as F, [-1, 0, 1]), set32<F>("seqlen_q" as F, [-1, 0, 1, 3]), set32<F>("seqlen_k" as F, [-1, 0, 1, 4]),
    set32<F>("d" as F, [-1, 0, 1, 7, 8, 257]), set32<F>("dv" as F, [-1, 1, 8, 257, 300]),
    set32<F>("h" as F, [-1, 0, 1, 2, 3]), set32<F>("h_k" as F, [-1, 1]),
    set32<F>("dtype" as F, [-1, 0, 1, 2, 4, 99]), set32<F>("device_type" as F, [-1, 0, 3, 7]), set32<F>("device_id" as F, [-1, 5]),
    set32<F>("reserved0" as F, [1, -1]), set32<F>("reserved1" as F, [1]),
    set32<F>("is_causal" as F, [-1, 0, 1, 2]), set32<F>("window_size_left" as F, [-2, -1, 0, 1, 3, BIG]),
    set32<F>("window_size_right" as F, [-2, -1, 0, 1, 3, BIG]),
    setF<F>(layout, "scale_softmax" as F, [-1, 0, 0.25, NaN, Infinity, -Infinity, 1e38]),
    setF<F>(layout, "softcap" as F, [-1, 0, 5, NaN, Infinity]), setF<F>(layout, "p_dropout" as F, [-0.5, 0, 0.3, 1, 2, NaN]),
    set64<F>("q_row_stride" as F, [-1, 0, 16]), set64<F>("k_head_stride" as F, [-(2 ** 40), 0, 8]),
    set64<F>("o_batch_stride" as F, [-1, 0]), set64<F>("v_row_stride" as F, [-1, 0]), set64<F>("o_head_stride" as F, [-1, 0, 8]),
    nul<F>("q_ptr" as F), nul<F>("k_ptr" as F), nul<F>("v_ptr" as F), nul<F>("o_ptr" as F), nul<F>("softmax_lse_ptr" as F),
    arr<F>("cu_seqlens_q" as F, buf.cuq, -1, B * SQ), arr<F>("cu_seqlens_k" as F, buf.cuk, -1, B * SK),
    set32<F>("total_q" as F, [-1, 0, 3, B * SQ]), arr<F>("seqused_q" as F, buf.sq, -1, SQ + 2),
    arr<F>("seqused_k" as F, buf.sk, -1, SK + 2),
    (p, d) => {
      const v = pick(d, [0n, 8n, BigInt(layout.size - 8), BigInt(layout.size + 8), 100000n]);
      d.log.push(`struct_size=${v}`);
      p.u64("struct_size" as F, v);
    },
    (p, d) => {
      const st = pick(d, [-4, 0, H]);
      d.log.push(`alibi stride=${st}`);
      buf.slopes.fill(0.5);
      p.ptr("alibi_slopes_ptr" as F, ptr(buf.slopes)).i64("alibi_slopes_batch_stride" as F, st);
    },
  ];
}
const common: Mut[] = [
  ...shared<FwdField & BwdField>(lib.fwdLayout),
  set32("reserved2", [1]), set32("reserved3", [1]), set32("num_splits", [-1, 0, 1, 3, 300]),
  set32("pack_gqa", [-2, -1, 0, 1, 2]),
  (p, d) => { // a caller built before pack_gqa: valid, the appended fields unread
    d.log.push("struct_size=before pack_gqa");
    p.u64("struct_size", BigInt(lib.fwdLayout.fields.get("pack_gqa")!.offset));
  },
];
const fwdOnly: Mut[] = [
  arr("leftpad_k", buf.lp, -1, SK + 2),
  (p, d) => {
    d.log.push("knew in flash_fwd");
    p.ptr("knew_ptr", ptr(buf.kn));
  },
  arr("cache_seqlens", buf.cache, 0, 3),
];
const kvOnly: Mut[] = [
  arr("cache_seqlens", buf.cache, -1, SK + 1),
  (p, d) => {
    const n = pick(d, [-1, 0, 1, 2]);
    d.log.push(`knew seqlen_knew=${n}`);
    p.ptr("knew_ptr", ptr(buf.kn)).ptr("vnew_ptr", ptr(buf.vn)).i32("seqlen_knew", n);
    for (const t of ["knew", "vnew"] as const)
      p.i64(`${t}_batch_stride`, 2 * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  },
  nul("vnew_ptr"),
  (p, d) => {
    const rd = pick(d, [-2, 0, 3, 4, 16, 18]), rs = pick(d, [-1, 0, 4, 8]);
    d.log.push(`rotary dim=${rd} seqlen=${rs}`);
    p.i32("rotary_dim", rd).ptr("rotary_cos_ptr", ptr(buf.rot)).ptr("rotary_sin_ptr", ptr(buf.rot)).i32("rotary_seqlen", rs);
  },
  set32("is_rotary_interleaved", [-1, 1, 2]),
  (p, d) => {
    fillInts(d, buf.bidx, -1, 9, "cache_batch_idx");
    const bk = pick(d, [-1, 0, 1, 2, 3, 8]);
    d.log.push(`b_k=${bk}`);
    p.ptr("cache_batch_idx", ptr(buf.bidx)).i32("b_k", bk);
  },
  (p, d) => {
    fillInts(d, buf.table, -1, 9, "block_table");
    const pbs = pick(d, [-1, 0, 1, 2, 7]), np = pick(d, [-1, 0, 1, 8]), mb = pick(d, [-1, 0, 1, 7]);
    const bs = pick(d, [-1, 0, 7]);
    d.log.push(`paged pbs=${pbs} pages=${np} max_blocks=${mb} stride=${bs}`);
    p.ptr("block_table", ptr(buf.table)).i32("page_block_size", pbs).i32("num_pages", np);
    p.i32("max_num_blocks_per_seq", mb).i64("block_table_batch_stride", bs);
  },
  arr("cu_seqlens_k", buf.cuk, 0, 3),
];

function run(entry: "flash_fwd" | "flash_fwd_kvcache", seed: number, draws: number) {
  const kv = entry === "flash_fwd_kvcache";
  const muts = [...common, ...(kv ? kvOnly : fwdOnly)];
  const sizeFn = kv ? s.flash_fwd_kvcache_workspace_size : s.flash_fwd_workspace_size;
  const sizeOut = new BigUint64Array(new ArrayBuffer(8));
  const ws = new Uint8Array(new ArrayBuffer(1 << 20));
  const failures: string[] = [];
  const counts = new Map<number, number>();
  for (let i = 0; i < draws; ++i) {
    const d: Draw = { rand: rng(seed * 100003 + i), log: [] };
    buf.q.fill(0.5);
    buf.k.fill(0.25);
    buf.v.fill(1);
    buf.kn.fill(0.1);
    buf.vn.fill(0.2);
    buf.rot.fill(0.5);
    buf.kc.fill(0.5);
    buf.vc.fill(0.75);
    buf.o.fill(NaN);
    buf.lse.fill(NaN);
    const p = base(kv);
    const n = 1 + Math.floor(d.rand() * 4);
    for (let j = 0; j < n; ++j) pick(d, muts)(p, d);
    const st0 = sizeFn(p.bytes, sizeOut);
    let st = st0;
    if (st0 === 0) {
      const need = Number(sizeOut[0]);
      if (need > ws.byteLength) {
        failures.push(`${entry} draw ${seed}:${i} [${d.log.join("; ")}]: workspace ${need} B for a problem this small`);
        continue;
      }
      st = s[entry](p.bytes, ws, need, null);
    }
    counts.set(st, (counts.get(st) ?? 0) + 1);
    const where = `${entry} draw ${seed}:${i} [${d.log.join("; ")}] -> ${st}`;
    if (!KNOWN.has(st)) failures.push(`${where}: unknown status`);
    if (st !== 0) {
      const msg = String(s.flash_last_error());
      if (msg.length === 0) failures.push(`${where}: no message`);
      const touched = [
        buf.o.every(Number.isNaN) ? "" : "o",
        buf.lse.every(Number.isNaN) ? "" : "lse",
        buf.kc.every((x) => x === 0.5) ? "" : "k cache",
        buf.vc.every((x) => x === 0.75) ? "" : "v cache",
      ].filter(Boolean);
      if (touched.length) failures.push(`${where}: refused (${msg}) but wrote ${touched.join(", ")}`);
    }
  }
  return { failures, counts };
}

// The backward: q, k, v, o, dO and the forward's LSE in; dq, dk, dv and (optional) softmax_d out.
const bwdMuts: Mut<BwdField>[] = [
  ...shared<FwdField & BwdField>(lib.bwdLayout),
  set32("deterministic", [-1, 1, 2]), nul("do_ptr"), nul("dq_ptr"), nul("dk_ptr"), nul("dv_ptr"),
  set64("do_row_stride", [-1, 0]), set64("dq_head_stride", [-1, 0, 8]), set64("dk_batch_stride", [-1, 0]),
  set64("dv_row_stride", [-1, 0]),
  (p, d) => {
    d.log.push("dsoftmax_sum");
    p.ptr("dsoftmax_sum", ptr(buf.dsum));
  },
];

function bwdBase(): Params<BwdField> {
  const p = new Params<BwdField>(lib.bwdLayout, (b) => s.flash_bwd_params_init(b), "fuzz").reset();
  p.i32("device_type", 1).i32("dtype", 3).i32("b", B).i32("seqlen_q", SQ).i32("seqlen_k", SK).i32("d", D).i32("h", H).i32("h_k", HK);
  p.ptr("q_ptr", ptr(buf.q)).ptr("k_ptr", ptr(buf.k)).ptr("v_ptr", ptr(buf.v)).ptr("o_ptr", ptr(buf.o));
  p.ptr("do_ptr", ptr(buf.dO)).ptr("softmax_lse_ptr", ptr(buf.lse));
  p.ptr("dq_ptr", ptr(buf.dq)).ptr("dk_ptr", ptr(buf.dk)).ptr("dv_ptr", ptr(buf.dv));
  for (const t of ["q", "o", "do", "dq"] as const)
    p.i64(`${t}_batch_stride`, SQ * H * D).i64(`${t}_row_stride`, H * D).i64(`${t}_head_stride`, D);
  for (const t of ["k", "v", "dk", "dv"] as const)
    p.i64(`${t}_batch_stride`, SK * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  return p;
}

function runBwd(seed: number, draws: number) {
  const sizeOut = new BigUint64Array(new ArrayBuffer(8));
  const ws = new Uint8Array(new ArrayBuffer(1 << 20));
  const failures: string[] = [];
  const counts = new Map<number, number>();
  for (let i = 0; i < draws; ++i) {
    const d: Draw = { rand: rng(seed * 100003 + i), log: [] };
    buf.q.fill(0.5);
    buf.k.fill(0.25);
    buf.v.fill(1);
    buf.o.fill(0.5);
    buf.dO.fill(0.3);
    buf.lse.fill(1);
    for (const t of [buf.dq, buf.dk, buf.dv, buf.dsum]) t.fill(NaN);
    const p = bwdBase();
    const n = 1 + Math.floor(d.rand() * 4);
    for (let j = 0; j < n; ++j) pick(d, bwdMuts)(p, d);
    let st = s.flash_bwd_workspace_size(p.bytes, sizeOut);
    if (st === 0) {
      const need = Number(sizeOut[0]);
      if (need > ws.byteLength) {
        failures.push(`flash_bwd draw ${seed}:${i} [${d.log.join("; ")}]: workspace ${need} B for a problem this small`);
        continue;
      }
      st = s.flash_bwd(p.bytes, ws, need, null);
    }
    counts.set(st, (counts.get(st) ?? 0) + 1);
    const where = `flash_bwd draw ${seed}:${i} [${d.log.join("; ")}] -> ${st}`;
    if (!KNOWN.has(st)) failures.push(`${where}: unknown status`);
    if (st !== 0) {
      const msg = String(s.flash_last_error());
      if (msg.length === 0) failures.push(`${where}: no message`);
      const touched = (["dq", "dk", "dv", "dsum"] as const).filter((t) => !buf[t].every(Number.isNaN));
      if (touched.length) failures.push(`${where}: refused (${msg}) but wrote ${touched.join(", ")}`);
    }
  }
  return { failures, counts };
}

for (const entry of ["flash_fwd", "flash_fwd_kvcache"] as const) {
  test(`${entry}: 4000 random draws of bad and odd fields, no crash, refused calls write nothing`, () => {
    const { failures, counts } = run(entry, 7, 4000);
    expect(failures.slice(0, 10)).toEqual([]);
    // The draws must reach both sides of the validation, or the test checks nothing.
    expect(counts.get(0) ?? 0).toBeGreaterThan(100);
    expect(counts.get(Status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(1000);
  });
}

test("flash_bwd: 3000 random draws of bad and odd fields, no crash, refused calls write nothing", () => {
  const { failures, counts } = runBwd(11, 3000);
  expect(failures.slice(0, 10)).toEqual([]);
  expect(counts.get(0) ?? 0).toBeGreaterThan(100);
  expect(counts.get(Status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(1000);
});
