// The API layer's validation: every rule returns its documented code and a message naming the field and
// the values, nothing crashes, and a failed call leaves every output exactly as it was (poisoned here).
// Params are packed raw (bypassing the TS checks) so the library's own checks are what is tested.
import { describe, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { FlashInvalidArgumentError, Status, Tensor, flashAttn, flashAttnWithKVCache, library } from "../ts/index.ts";
import { Params, type BwdField, type FwdField } from "../ts/params.ts";

const s = library().symbols;
const B = 2, SQ = 5, SK = 7, H = 4, HK = 2, D = 16;

function host(n: number) {
  return new Float32Array(new ArrayBuffer(n * 4));
}

// One valid CPU fp32 problem with poisoned outputs; each case mutates a copy of its params.
function fixture() {
  const q = host(B * SQ * H * D).fill(0.5), k = host(B * SK * HK * D).fill(0.25), v = host(B * SK * HK * D).fill(1);
  const o = host(B * SQ * H * D).fill(NaN), lse = host(B * H * SQ).fill(NaN);
  const idx = new Int32Array(new ArrayBuffer(64)); // index arrays for varlen / kvcache cases
  const bt = new Int32Array(new ArrayBuffer(64));
  const kc = host(8 * SK * HK * D).fill(0.5), vc = host(8 * SK * HK * D).fill(0.5);
  const kn = host(B * 2 * HK * D).fill(0.1), vn = host(B * 2 * HK * D).fill(0.1);
  return { q, k, v, o, lse, idx, bt, kc, vc, kn, vn };
}
type Fx = ReturnType<typeof fixture>;

function fwdParams(fx: Fx): Params<FwdField> {
  const lib = library();
  const p = new Params<FwdField>(lib.fwdLayout, (b) => s.flash_fwd_params_init(b), "test").reset();
  p.i32("device_type", 1).i32("dtype", 3).i32("b", B).i32("seqlen_q", SQ).i32("seqlen_k", SK).i32("d", D).i32("h", H).i32("h_k", HK);
  p.ptr("q_ptr", ptr(fx.q)).ptr("k_ptr", ptr(fx.k)).ptr("v_ptr", ptr(fx.v)).ptr("o_ptr", ptr(fx.o)).ptr("softmax_lse_ptr", ptr(fx.lse));
  p.i64("q_batch_stride", SQ * H * D).i64("q_row_stride", H * D).i64("q_head_stride", D);
  p.i64("o_batch_stride", SQ * H * D).i64("o_row_stride", H * D).i64("o_head_stride", D);
  for (const t of ["k", "v"] as const)
    p.i64(`${t}_batch_stride`, SK * HK * D).i64(`${t}_row_stride`, HK * D).i64(`${t}_head_stride`, D);
  return p;
}

function kvParams(fx: Fx): Params<FwdField> {
  const p = fwdParams(fx);
  p.ptr("k_ptr", ptr(fx.kc)).ptr("v_ptr", ptr(fx.vc)).ptr("cache_seqlens", ptr(fx.idx));
  fx.idx.set([3, 4]);
  return p;
}

const sizeOut = new BigUint64Array(new ArrayBuffer(8));
function call(entry: "flash_fwd" | "flash_fwd_kvcache", p: Params<FwdField> | Uint8Array | null) {
  const bytes = p instanceof Params ? p.bytes : p;
  const sizeFn = entry === "flash_fwd" ? s.flash_fwd_workspace_size : s.flash_fwd_kvcache_workspace_size;
  const st0 = sizeFn(bytes, sizeOut);
  const need = st0 === 0 ? Number(sizeOut[0]) : 0;
  const ws = new Uint8Array(new ArrayBuffer(Math.max(need, 8)));
  const st = s[entry](bytes, ws, need, null);
  return { st, msg: String(s.flash_last_error()) };
}

function untouched(fx: Fx) {
  expect(fx.o.every(Number.isNaN)).toBe(true);
  expect(fx.lse.every(Number.isNaN)).toBe(true);
}

type Case = [string, (p: Params<FwdField>, fx: Fx) => void, number, RegExp];
const INV = Status.INVALID_ARGUMENT;

const fwdCases: Case[] = [
  ["h_k does not divide h", (p) => p.i32("h_k", 3), INV, /h_k=3 does not divide h=4/],
  ["d = 0", (p) => p.i32("d", 0), INV, /d=0 must be in 1\.\.256/],
  ["d = 257", (p) => p.i32("d", 257), INV, /d=257 must be in 1\.\.256/],
  ["dv = 300", (p) => p.i32("dv", 300), INV, /dv=300 must be in 1\.\.256/],
  ["b < 0", (p) => p.i32("b", -1), INV, /b=-1 must be >= 0/],
  ["seqlen_q < 0", (p) => p.i32("seqlen_q", -2), INV, /seqlen_q=-2/],
  ["seqlen_k < 0", (p) => p.i32("seqlen_k", -2), INV, /seqlen_k=-2/],
  ["h = 0", (p) => p.i32("h", 0), INV, /h=0 must be >= 1/],
  ["unknown dtype", (p) => p.i32("dtype", 9), INV, /dtype=9/],
  ["unknown device_type", (p) => p.i32("device_type", 7), INV, /device_type=7/],
  ["null q", (p) => p.ptr("q_ptr", 0), INV, /q_ptr is NULL/],
  ["null o", (p) => p.ptr("o_ptr", 0), INV, /o_ptr is NULL/],
  ["negative scale", (p) => p.f32("scale_softmax", -1), INV, /scale_softmax=-1/],
  ["negative softcap", (p) => p.f32("softcap", -1), INV, /softcap=-1/],
  ["p_dropout = 1", (p) => p.f32("p_dropout", 1), INV, /p_dropout=1 must be in \[0, 1\)/],
  ["softcap with dropout", (p) => p.f32("softcap", 5).f32("p_dropout", 0.1), Status.UNSUPPORTED, /softcap=5 with p_dropout=0\.1/],
  ["is_causal = 2", (p) => p.i32("is_causal", 2), INV, /is_causal=2/],
  ["struct_size too small", (p) => p.u64("struct_size", 8n), Status.ABI, /struct_size=8/],
  ["struct_size from a newer header", (p) => p.u64("struct_size", 100000n), Status.ABI, /newer libflash/],
  ["reserved0 set", (p) => p.i32("reserved0", 1), INV, /reserved0=1/],
  ["negative stride", (p) => p.i64("q_row_stride", -1), INV, /q strides must be >= 0.*row=-1/],
  ["num_splits = 300", (p) => p.i32("num_splits", 300), INV, /num_splits=300/],
  ["pack_gqa = 2", (p) => p.i32("pack_gqa", 2), INV, /pack_gqa=2 must be -1 \(never\), 0 \(heuristic\) or 1/],
  ["reserved3 set", (p) => p.i32("reserved3", 1), INV, /reserved3=1 must be 0/],
  ["negative alibi batch stride", (p) => p.i64("alibi_slopes_batch_stride", -4), INV, /alibi_slopes_batch_stride=-4/],
  ["a kvcache field in flash_fwd", (p, fx) => p.ptr("knew_ptr", ptr(fx.kn)), INV, /knew_ptr is set but only flash_fwd_kvcache reads it/],
  ["varlen without total_q", (p, fx) => { fx.idx.set([0, 2, 5]); p.ptr("cu_seqlens_q", ptr(fx.idx)).i32("total_q", -1); }, INV, /total_q=-1/],
  ["cu_seqlens_q descending", (p, fx) => { fx.idx.set([0, 4, 2]); p.ptr("cu_seqlens_q", ptr(fx.idx)).i32("total_q", 10); }, INV, /cu_seqlens_q\[1\.\.2\]=\(4, 2\)/],
  ["cu_seqlens_q beyond total_q", (p, fx) => { fx.idx.set([0, 2, 9]); p.ptr("cu_seqlens_q", ptr(fx.idx)).i32("total_q", 8); }, INV, /cu_seqlens_q\[2\]=9 exceeds total_q=8/],
  ["a sequence longer than seqlen_q", (p, fx) => { fx.idx.set([0, 6, 7]); p.ptr("cu_seqlens_q", ptr(fx.idx)).i32("total_q", 7); }, INV, /length <= seqlen_q=5/],
  ["seqused_k beyond seqlen_k", (p, fx) => { fx.idx.set([3, 8]); p.ptr("seqused_k", ptr(fx.idx)); }, INV, /seqused_k\[1\]=8 must be in 0\.\.7/],
  ["leftpad_k beyond the keys", (p, fx) => { fx.idx.set([0, 9]); p.ptr("leftpad_k", ptr(fx.idx)); }, INV, /leftpad_k\[1\]=9/],
];

const kvCases: Case[] = [
  ["missing cache_seqlens", (p) => p.ptr("cache_seqlens", 0), INV, /cache_seqlens is NULL/],
  ["cache over capacity", (p, fx) => { fx.idx.set([3, 7]); p.ptr("knew_ptr", ptr(fx.kn)).ptr("vnew_ptr", ptr(fx.vn)).i32("seqlen_knew", 2); }, INV, /cache_seqlens\[1\]=7 \+ seqlen_knew=2 exceeds the cache capacity seqlen_k=7/],
  ["knew without vnew", (p, fx) => p.ptr("knew_ptr", ptr(fx.kn)).i32("seqlen_knew", 2), INV, /knew_ptr and vnew_ptr must be both set/],
  ["knew with seqlen_knew 0", (p, fx) => p.ptr("knew_ptr", ptr(fx.kn)).ptr("vnew_ptr", ptr(fx.vn)), INV, /seqlen_knew=0 must be >= 1/],
  ["odd rotary_dim", (p, fx) => p.i32("rotary_dim", 3).ptr("rotary_cos_ptr", ptr(fx.kn)).ptr("rotary_sin_ptr", ptr(fx.kn)), INV, /rotary_dim=3 must be even/],
  ["rotary table too short", (p, fx) => p.i32("rotary_dim", 4).ptr("rotary_cos_ptr", ptr(fx.kn)).ptr("rotary_sin_ptr", ptr(fx.kn)).i32("rotary_seqlen", 4), INV, /rotary_seqlen=4/],
  ["dropout in kvcache", (p) => p.f32("p_dropout", 0.1), INV, /p_dropout=0\.1 must be 0/],
  ["cache_batch_idx out of range", (p, fx) => { fx.bt.set([0, 5]); p.ptr("cache_batch_idx", ptr(fx.bt)).i32("b_k", 3); }, INV, /cache_batch_idx\[1\]=5 is outside the cache's b_k=3 rows/],
  ["paged with cache_batch_idx", (p, fx) => p.ptr("block_table", ptr(fx.bt)).ptr("cache_batch_idx", ptr(fx.bt)), INV, /cache_batch_idx cannot be used with a paged cache/],
  ["paged capacity mismatch", (p, fx) => p.ptr("block_table", ptr(fx.bt)).i32("page_block_size", 2).i32("max_num_blocks_per_seq", 3).i32("num_pages", 8).i64("block_table_batch_stride", 3), INV, /seqlen_k=7 must equal max_num_blocks_per_seq=3 \* page_block_size=2/],
  ["page outside the pool", (p, fx) => { fx.bt.set([0, 1, 2, 3, 9, 4, 5, 6]); p.ptr("block_table", ptr(fx.bt)).i32("page_block_size", 1).i32("max_num_blocks_per_seq", 7).i32("num_pages", 8).i64("block_table_batch_stride", 4).i32("seqlen_k", 7); }, INV, /block_table_batch_stride=4 is smaller/],
  ["page entry outside the pool", (p, fx) => { fx.bt.set([0, 1, 2, 3, 4, 5, 6, 2, 3, 4, 99, 1, 1, 1]); p.ptr("block_table", ptr(fx.bt)).i32("page_block_size", 1).i32("max_num_blocks_per_seq", 7).i32("num_pages", 8).i64("block_table_batch_stride", 7).i32("seqlen_k", 7); }, INV, /block_table\[1\]\[3\]=99 is outside the page pool \(num_pages=8\)/],
  ["varlen in kvcache", (p, fx) => p.ptr("cu_seqlens_k", ptr(fx.bt)), INV, /cu_seqlens_q\/cu_seqlens_k\/seqused_k must be NULL/],
];

describe("flash_fwd validation", () => {
  test("the fixture itself is valid (so each case fails for its own reason)", () => {
    const fx = fixture();
    expect(call("flash_fwd", fwdParams(fx))).toEqual({ st: 0, msg: "" });
    expect(fx.o.some(Number.isNaN)).toBe(false);
  });
  test("NULL params", () => {
    expect(call("flash_fwd", null)).toEqual({ st: INV, msg: expect.stringMatching(/flash_fwd: params is NULL/) });
  });
  test("a caller built before pack_gqa (the first released struct_size) runs, the appended fields unread", () => {
    const fx = fixture();
    const p = fwdParams(fx);
    const first = library().fwdLayout.fields.get("pack_gqa")!.offset;
    p.u64("struct_size", BigInt(first)).i32("pack_gqa", 7).i32("reserved3", 9); // past the caller's size
    expect(call("flash_fwd", p)).toEqual({ st: 0, msg: "" });
    expect(fx.o.some(Number.isNaN)).toBe(false);
  });
  test.each(fwdCases)("%s", (_name, mutate, code, re) => {
    const fx = fixture();
    const p = fwdParams(fx);
    mutate(p, fx);
    const r = call("flash_fwd", p);
    expect(r.st).toBe(code);
    expect(r.msg).toMatch(re);
    untouched(fx);
  });
  test("a too-small workspace is refused before anything runs", () => {
    const fx = fixture();
    const p = fwdParams(fx);
    const st = s.flash_fwd_workspace_size(p.bytes, sizeOut);
    expect(st).toBe(0);
    if (sizeOut[0]! > 0n) {
      expect(s.flash_fwd(p.bytes, null, 0, null)).toBe(INV);
      expect(String(s.flash_last_error())).toMatch(/workspace_bytes=0 is smaller than/);
      untouched(fx);
    }
  });
  test("CUDA params without a usable CUDA device", () => {
    const fx = fixture();
    const p = fwdParams(fx).i32("device_type", 2).i32("dtype", 2).i32("device_id", 99);
    const r = call("flash_fwd", p);
    expect([Status.INVALID_ARGUMENT, Status.UNSUPPORTED] as number[]).toContain(r.st);
    expect(r.msg).toMatch(/device_id=99 is not a CUDA device|built without the CUDA backend/);
    untouched(fx);
  });
});

describe("flash_fwd_kvcache validation", () => {
  test.each(kvCases)("%s", (_name, mutate, code, re) => {
    const fx = fixture();
    const p = kvParams(fx);
    mutate(p, fx);
    const r = call("flash_fwd_kvcache", p);
    expect(r.st).toBe(code);
    expect(r.msg).toMatch(re);
    untouched(fx);
  });
});

describe("flash_bwd validation", () => {
  function bwdParams(fx: Fx) {
    const p = new Params<BwdField>(library().bwdLayout, (b) => s.flash_bwd_params_init(b), "test").reset();
    p.i32("device_type", 1).i32("dtype", 3).i32("b", B).i32("seqlen_q", SQ).i32("seqlen_k", SK).i32("d", D).i32("h", H).i32("h_k", HK);
    for (const n of ["q", "k", "v", "o", "do", "dq", "dk", "dv"] as const) p.ptr(`${n}_ptr`, ptr(n === "k" || n === "v" || n === "dk" || n === "dv" ? fx.k : fx.q));
    return p;
  }
  const cases: [string, (p: Params<BwdField>) => void, RegExp][] = [
    ["missing softmax_lse", () => {}, /softmax_lse_ptr is NULL but required/],
    ["missing dq", (p) => p.ptr("softmax_lse_ptr", 64).ptr("dq_ptr", 0), /dq_ptr is NULL/],
    ["deterministic = 2", (p) => p.ptr("softmax_lse_ptr", 64).i32("deterministic", 2), /deterministic=2 must be 0 or 1/],
    ["h_k does not divide h", (p) => p.i32("h_k", 3), /h_k=3 does not divide h=4/],
  ];
  test.each(cases)("%s", (_n, mutate, re) => {
    const fx = fixture();
    const p = bwdParams(fx);
    mutate(p);
    expect(s.flash_bwd(p.bytes, null, 0, null)).toBe(INV);
    expect(String(s.flash_last_error())).toMatch(re);
  });
});

describe("TS checks before the FFI call", () => {
  const q = Tensor.from(new Array(1 * 3 * 2 * 8).fill(0.1), [1, 3, 2, 8], "float32");
  test("wrong rank, dtype mismatch, bad options throw FlashInvalidArgumentError naming the value", () => {
    const bad: [() => unknown, RegExp][] = [
      [() => flashAttn(Tensor.from([1, 2], [2], "float32"), q, q), /q must have rank 4/],
      [() => flashAttn(q, Tensor.from(new Array(48).fill(0), [1, 3, 2, 8], "float16"), q), /k\.dtype=float16 must be float32/],
      [() => flashAttn(q, q, q, { softmaxScale: NaN }), /softmaxScale=NaN/],
      [() => flashAttn(q, q, q, { dropoutP: 1.5 }), /dropoutP=1\.5 must be in \[0, 1\)/],
      [() => flashAttn(q, q, q, { windowSize: [1.5, 0] as unknown as [number, number] }), /windowSize\[0\]=1\.5/],
      [() => flashAttn(q, q, q, { numSplits: -1 }), /numSplits=-1/],
      [() => flashAttn(q, q, q, { packGqa: 1 as unknown as boolean }), /packGqa=1 must be a boolean/],
      [() => flashAttn(q, q, q, { causal: "yes" as unknown as boolean }), /causal=yes must be a boolean/],
      [() => flashAttnWithKVCache(q, q, q, { cacheSeqlens: 1.5 }), /cacheSeqlens=1\.5/],
      [() => Tensor.fromDevicePtr(-1, "float16", [2]), /ptr=-1 is not a valid pointer/],
      [() => Tensor.fromDevicePtr(NaN, "float16", [2]), /ptr=NaN is not a valid pointer/],
    ];
    for (const [f, re] of bad) {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(FlashInvalidArgumentError);
      expect((err as Error).message).toMatch(re);
    }
  });
  test("packGqa true / false pass both checks and change nothing on the CPU backend", () => {
    const k = Tensor.from(Array.from({ length: 1 * 3 * 1 * 8 }, (_, i) => Math.sin(i)), [1, 3, 1, 8], "float32");
    const ref = flashAttn(q, k, k).out.toFloat32Array();
    for (const packGqa of [true, false])
      expect(Buffer.from(flashAttn(q, k, k, { packGqa }).out.toFloat32Array().buffer)).toEqual(Buffer.from(ref.buffer));
  });
  test("library errors surface as typed errors with the C message", () => {
    const k = Tensor.from(new Array(1 * 3 * 3 * 8).fill(0.1), [1, 3, 3, 8], "float32");
    let err: unknown;
    try { flashAttn(q, k, k); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(FlashInvalidArgumentError);
    expect((err as Error).message).toMatch(/flash_fwd: h_k=3 does not divide h=2/);
  });
});
