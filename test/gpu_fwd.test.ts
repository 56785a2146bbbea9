// CUDA forward (issue 4) through the TS API: the same inputs go to flashAttn on the CPU backend and on the GPU;
// the GPU output must satisfy FlashAttention's rule against the float64 oracle (error <= 2x the error of the
// low-precision reference + 1e-5), dropout masks must agree with the CPU backend bit for bit (checked
// through the outputs: a flipped keep bit moves an element by p*rp, far above the tolerance used), split
// counts may differ by rounding only, and a repeated call is bitwise identical. Skipped without CUDA.
import { describe, expect, test } from "bun:test";
import { buildInfo, deviceProperties, flashAttn, hasCuda, lastKernel, Tensor } from "../ts/index.ts";
import type { AttnDType } from "../ts/dtype.ts";
import * as ref from "./ref/index.ts";

interface Cfg {
  dtype: AttnDType; b: number; h: number; hk: number; d: number; dv: number; sq: number; sk: number;
  causal?: boolean; window?: [number, number]; softcap?: number; alibi?: boolean; dropoutP?: number;
  numSplits?: number;
  sm90?: boolean; // taken by the Hopper kernel when it is there (no dropout / ALiBi, TMA-aligned)
  packGqa?: boolean; // the Hopper kernel packs the GQA group into its tiles (short queries; hopper/fwd_sm90.cu)
  split?: boolean; // the Hopper kernel splits the keys (forced, or its heuristic on a small grid)
  decode?: boolean; // few query rows per K/V head, dense: the KV-cache decode kernel takes it on any GPU (fwd.cu)
}

// The Hopper forward runs wherever it is compiled in and the GPU is an sm_90 (FLASH_SM90=0 turns it off).
const hopper = () =>
  hasCuda() && (buildInfo().cuda_fwd_paths ?? []).includes("sm90") && deviceProperties(0).major === 9 &&
  deviceProperties(0).minor === 0 && process.env.FLASH_SM90 !== "0";

const name = (c: Cfg) =>
  `${c.dtype} b=${c.b} h=${c.h}/${c.hk} d=${c.d}/${c.dv} ${c.sq}x${c.sk}${c.causal ? " causal" : ""}` +
  `${c.window ? ` win=${c.window}` : ""}${c.softcap ? " softcap" : ""}${c.alibi ? " alibi" : ""}` +
  `${c.dropoutP ? ` p=${c.dropoutP}` : ""}${c.numSplits !== undefined ? ` splits=${c.numSplits}` : ""}`;

function run(c: Cfg, seed: number) {
  const rng = new ref.Rng(seed);
  const slopes = c.alibi ? ref.randu(c.b * c.h, rng, 0, 0.3) : undefined;
  const pr = ref.randomProblem(rng, {
    h: c.h, hk: c.hk, d: c.d, dv: c.dv, dtype: c.dtype,
    seqlensQ: Array(c.b).fill(c.sq), seqlensK: Array(c.b).fill(c.sk),
    causal: c.causal, windowLeft: c.window?.[0], windowRight: c.window?.[1], softcap: c.softcap,
    alibiSlopes: slopes, dropoutP: c.dropoutP, seed: 77n, offset: 3n,
  });
  const opts = { causal: c.causal, windowSize: c.window, softcap: c.softcap, returnLse: true, dropoutP: c.dropoutP, seed: 77n, offset: 3n };
  const on = (dev?: number) => {
    using q = Tensor.from(ref.flat(pr.q), [c.b, c.sq, c.h, c.d], c.dtype, dev);
    using k = Tensor.from(ref.flat(pr.k), [c.b, c.sk, c.hk, c.d], c.dtype, dev);
    using v = Tensor.from(ref.flat(pr.v), [c.b, c.sk, c.hk, c.dv], c.dtype, dev);
    using al = slopes ? Tensor.from(slopes, [c.b, c.h], "float32", dev) : undefined;
    const r = flashAttn(q, k, v, { ...opts, alibiSlopes: al, numSplits: dev === undefined ? undefined : c.numSplits });
    const kernel = lastKernel();
    const out = r.out.toFloat32Array(), lse = r.lse!.toFloat32Array();
    r.out.dispose();
    r.lse!.dispose();
    return { out, lse, kernel };
  };
  return { pr, cpu: on(undefined), gpu: on(0), gpu2: on(0) };
}

function check(c: Cfg, seed: number) {
  const { pr, cpu, gpu, gpu2 } = run(c, seed);
  expect(cpu.kernel).toBe("cpu");
  // Head dims 129..192 with dv <= 128 (MLA's 192 / 128) run on the narrow-V instantiations (sm90_dim_v, fwd_dim_v).
  const narrowV = Math.max(c.d, c.dv) > 128 && Math.max(c.d, c.dv) <= 192 && c.dv <= 128;
  const sm90 = `cuda.sm90.fwd${narrowV ? ".dv128" : ""}${c.packGqa ? ".packgqa" : ""}${c.split ? ".split" : ""}`;
  const decode = c.decode && process.env.FLASH_FWD_DECODE !== "0";
  const sm80 = `cuda.sm80.fwd${narrowV ? ".dv128" : ""}`;
  expect(gpu.kernel).toBe(decode ? "cuda.fwd_kvcache" : hopper() && c.sm90 ? sm90 : sm80);
  const want = ref.attention(pr);
  const lp = ref.attentionLowPrecision(pr, c.dtype);
  ref.assertClose(`${name(c)} gpu out`, gpu.out, ref.flat(want.o), ref.flat(lp.o), 2, 1e-5);
  ref.assertClose(`${name(c)} gpu lse`, gpu.lse, ref.flat(want.lse), ref.flat(lp.lse), 2, 1e-5);
  ref.assertClose(`${name(c)} cpu out`, cpu.out, ref.flat(want.o), ref.flat(lp.o), 2, 1e-5);
  // Bitwise repeatable on the GPU.
  expect(Buffer.from(gpu2.out.buffer).equals(Buffer.from(gpu.out.buffer))).toBe(true);
  expect(Buffer.from(gpu2.lse.buffer).equals(Buffer.from(gpu.lse.buffer))).toBe(true);
}

describe.skipIf(!hasCuda())("gpu forward vs cpu forward and the f64 oracle", () => {
  const cases: Cfg[] = [
    { dtype: "bfloat16", b: 2, h: 2, hk: 2, d: 64, dv: 64, sq: 113, sk: 203, numSplits: 1, sm90: true },
    { dtype: "float16", b: 2, h: 4, hk: 2, d: 128, dv: 128, sq: 97, sk: 97, causal: true, numSplits: 1, sm90: true },
    { dtype: "bfloat16", b: 1, h: 3, hk: 1, d: 59, dv: 59, sq: 17, sk: 300, window: [20, 5] },
    { dtype: "float16", b: 1, h: 2, hk: 2, d: 32, dv: 32, sq: 1, sk: 1, decode: true },
    { dtype: "bfloat16", b: 1, h: 2, hk: 2, d: 96, dv: 80, sq: 130, sk: 70, causal: true, numSplits: 1, sm90: true },
    { dtype: "float16", b: 1, h: 2, hk: 2, d: 192, dv: 192, sq: 40, sk: 129, softcap: 5, numSplits: 1, sm90: true },
    { dtype: "bfloat16", b: 1, h: 2, hk: 2, d: 192, dv: 128, sq: 97, sk: 203, causal: true, numSplits: 1, sm90: true },
    { dtype: "bfloat16", b: 2, h: 4, hk: 2, d: 256, dv: 256, sq: 300, sk: 517, window: [100, 7], numSplits: 1, sm90: true, packGqa: true },
    { dtype: "float16", b: 2, h: 8, hk: 1, d: 128, dv: 128, sq: 5, sk: 400, causal: true, numSplits: 1, sm90: true, packGqa: true },
    { dtype: "bfloat16", b: 2, h: 2, hk: 2, d: 256, dv: 256, sq: 33, sk: 150, alibi: true, causal: true },
    { dtype: "bfloat16", b: 2, h: 3, hk: 3, d: 64, dv: 64, sq: 77, sk: 200, dropoutP: 0.17 },
    { dtype: "bfloat16", b: 1, h: 16, hk: 2, d: 128, dv: 128, sq: 5, sk: 3000, numSplits: 0, sm90: true, packGqa: true, split: true },
    { dtype: "float16", b: 1, h: 16, hk: 2, d: 128, dv: 128, sq: 5, sk: 3000, numSplits: 7, sm90: true, packGqa: true, split: true },
    { dtype: "float16", b: 1, h: 2, hk: 2, d: 64, dv: 64, sq: 40, sk: 2500, causal: true, numSplits: 3, sm90: true, split: true },
    // (with FLASH_FWD_DECODE=0: the Hopper split kernel)
    { dtype: "bfloat16", b: 2, h: 8, hk: 2, d: 128, dv: 128, sq: 1, sk: 2000, causal: true, decode: true, sm90: true, packGqa: true, split: true },
    { dtype: "float16", b: 1, h: 4, hk: 4, d: 64, dv: 64, sq: 3, sk: 1500, window: [300, 0], softcap: 20, numSplits: 3, decode: true, sm90: true, split: true },
  ];
  cases.forEach((c, i) => test(name(c), () => check(c, 400 + i), 120_000));
});
