// CPU forward against the float64 oracle (test/ref) over a sample of FlashAttention's test grid, plus the
// dropout mask, the drop fraction and thread-count independence.
import { describe, expect, test } from "bun:test";
import { flashAttn, flashAttnVarlen, Tensor } from "../ts/index.ts";
import type { AttnDType } from "../ts/dtype.ts";
import * as ref from "./ref/index.ts";

const DS = [32, 40, 59, 64, 80, 96, 111, 128, 160, 192, 224, 256];
const SEQ: [number, number][] = [[1, 239], [3, 799], [113, 203], [128, 217], [108, 256], [256, 512], [1023, 1024], [1024, 1023]];
const DTYPES: AttnDType[] = ["float16", "bfloat16", "float32"];

function tensor(parts: ArrayLike<number>[], shape: number[], dtype: AttnDType | "float32" | "int32") {
  return Tensor.from(ref.flat(parts), shape, dtype);
}

interface Cfg {
  dtype: AttnDType; b: number; h: number; hk: number; d: number; dv: number; sq: number; sk: number;
  causal?: boolean; window?: [number, number]; softcap?: number; alibi?: boolean; dropoutP?: number;
}

function describeCfg(c: Cfg) {
  return `${c.dtype} b=${c.b} h=${c.h}/${c.hk} d=${c.d}/${c.dv} ${c.sq}x${c.sk}` +
    `${c.causal ? " causal" : ""}${c.window ? ` win=${c.window}` : ""}${c.softcap ? " softcap" : ""}` +
    `${c.alibi ? " alibi" : ""}${c.dropoutP ? ` p=${c.dropoutP}` : ""}`;
}

function runDense(c: Cfg, seed: number) {
  const rng = new ref.Rng(seed);
  const slopes = c.alibi ? ref.randu(c.b * c.h, rng, 0, 0.3) : undefined;
  const pr = ref.randomProblem(rng, {
    h: c.h, hk: c.hk, d: c.d, dv: c.dv, dtype: c.dtype,
    seqlensQ: Array(c.b).fill(c.sq), seqlensK: Array(c.b).fill(c.sk),
    causal: c.causal, windowLeft: c.window?.[0], windowRight: c.window?.[1], softcap: c.softcap,
    alibiSlopes: slopes, dropoutP: c.dropoutP, seed: 1234n, offset: 5n,
  });
  using q = tensor(pr.q, [c.b, c.sq, c.h, c.d], c.dtype);
  using k = tensor(pr.k, [c.b, c.sk, c.hk, c.d], c.dtype);
  using v = tensor(pr.v, [c.b, c.sk, c.hk, c.dv], c.dtype);
  using al = slopes ? Tensor.from(slopes, [c.b, c.h], "float32") : undefined;
  const res = flashAttn(q, k, v, {
    causal: c.causal, windowSize: c.window, softcap: c.softcap, alibiSlopes: al, returnLse: true,
    dropoutP: c.dropoutP, seed: 1234n, offset: 5n,
  });
  const out = res.out.toFloat32Array(), lse = res.lse!.toFloat32Array();
  res.out.dispose();
  res.lse!.dispose();
  return { pr, out, lse };
}

function checkDense(c: Cfg, seed: number) {
  const { pr, out, lse } = runDense(c, seed);
  const r = ref.attention(pr);
  const lp = ref.attentionLowPrecision(pr, c.dtype);
  const name = describeCfg(c);
  ref.assertClose(`${name} out`, out, ref.flat(r.o), ref.flat(lp.o), 2, 1e-5);
  ref.assertClose(`${name} lse`, lse, ref.flat(r.lse), ref.flat(lp.lse), 2, 1e-5);
}

describe("cpu forward grid", () => {
  // Every (d, seqlens) pair once, with the dtype, head layout and mask rotating through the grid.
  let i = 0;
  for (const d of DS) {
    for (const [sq, sk] of SEQ) {
      const n = i++;
      const big = sq * sk > 200_000;
      const layout = n % 3; // mha, mqa, gqa
      const h = big ? (layout === 0 ? 1 : 2) : layout === 0 ? 2 : 4;
      const hk = layout === 0 ? h : layout === 1 ? 1 : h / 2;
      const mask = n % 5;
      const c: Cfg = {
        dtype: DTYPES[n % 3]!, b: big ? 1 : 2, h, hk, d, dv: n % 7 === 3 ? Math.max(1, d - 17) : d, sq, sk,
        causal: mask === 1, window: mask === 2 ? [n % 50, (n * 7) % 30] : mask === 3 ? [-1, 5] : undefined,
        softcap: n % 4 === 1 ? 5 : undefined, alibi: n % 6 === 2, dropoutP: n % 8 === 6 ? 0.17 : undefined,
      };
      test(describeCfg(c), () => checkDense(c, 1000 + n), 60_000);
    }
  }
});

describe("cpu forward edge cases", () => {
  test("sk = 0 gives O = 0 and LSE = +inf", () => {
    const { out, lse } = runDense({ dtype: "float32", b: 1, h: 1, hk: 1, d: 8, dv: 8, sq: 3, sk: 0 }, 1);
    expect([...out].every((x) => x === 0)).toBe(true);
    expect([...lse].every((x) => x === Infinity)).toBe(true);
  });
  test("fully masked rows (window) give O = 0 and LSE = +inf", () => {
    checkDense({ dtype: "bfloat16", b: 1, h: 2, hk: 1, d: 16, dv: 24, sq: 40, sk: 10, window: [0, 0] }, 2);
    const { out, lse } = runDense({ dtype: "float32", b: 1, h: 1, hk: 1, d: 8, dv: 8, sq: 30, sk: 10, causal: true }, 3);
    for (let r = 0; r < 20; r++) {
      expect(lse[r]).toBe(Infinity);
      for (let x = 0; x < 8; x++) expect(out[r * 8 + x]).toBe(0);
    }
  });
  test("odd dims and dv != d", () => {
    for (const [d, dv] of [[1, 1], [3, 200], [256, 7], [17, 256]] as const)
      checkDense({ dtype: "float16", b: 2, h: 3, hk: 1, d, dv, sq: 37, sk: 70, causal: d === 3 }, d * 1000 + dv);
  });
  test("ALiBi slopes [h] (batch stride 0) + softcap + causal", () => {
    const rng = new ref.Rng(9);
    const h = 4, d = 64, sq = 65, sk = 130;
    const slopes = ref.randu(h, rng, 0, 0.3);
    const pr = ref.randomProblem(rng, { h, hk: 2, d, dtype: "bfloat16", seqlensQ: [sq, sq], seqlensK: [sk, sk], causal: true, softcap: 3, alibiSlopes: slopes });
    using q = tensor(pr.q, [2, sq, h, d], "bfloat16");
    using k = tensor(pr.k, [2, sk, 2, d], "bfloat16");
    using v = tensor(pr.v, [2, sk, 2, d], "bfloat16");
    using al = Tensor.from(slopes, [h], "float32");
    const res = flashAttn(q, k, v, { causal: true, softcap: 3, alibiSlopes: al });
    ref.assertClose("alibi[h]", res.out.toFloat32Array(), ref.flat(ref.attention(pr).o), ref.flat(ref.attentionLowPrecision(pr, "bfloat16").o));
    res.out.dispose();
  });
});

describe("cpu forward varlen", () => {
  for (const [dtype, causal, seed] of [["float16", true, 1], ["bfloat16", false, 2], ["float32", true, 3]] as const) {
    test(`${dtype} causal=${causal} with seqused padding`, () => {
      const rng = new ref.Rng(seed);
      const b = 4, h = 4, hk = 2, d = 72;
      const lensQ = [1, 130, 0, 77], lensK = [50, 129, 10, 200];
      // Rows past seqused are padding: not read, not written.
      const usedQ = lensQ.map((l) => (l > 0 ? l - ref.randInt(rng, 0, Math.min(l, 5)) : 0));
      const usedK = lensK.map((l) => l - ref.randInt(rng, 0, 5));
      const pr = ref.randomProblem(rng, { h, hk, d, dtype, seqlensQ: usedQ, seqlensK: usedK, causal });
      const pad = (parts: ArrayLike<number>[], used: number[], lens: number[], w: number) =>
        parts.map((p, i) => { const a = new Float64Array(lens[i]! * w); a.set(p as Float64Array); return a; });
      const totalQ = lensQ.reduce((a, x) => a + x), totalK = lensK.reduce((a, x) => a + x);
      using q = tensor(pad(pr.q, usedQ, lensQ, h * d), [totalQ, h, d], dtype);
      using k = tensor(pad(pr.k, usedK, lensK, hk * d), [totalK, hk, d], dtype);
      using v = tensor(pad(pr.v, usedK, lensK, hk * d), [totalK, hk, d], dtype);
      using out = Tensor.from(new Float64Array(totalQ * h * d).fill(7), [totalQ, h, d], dtype);
      using cuq = Tensor.from(ref.cuSeqlens(lensQ), [b + 1], "int32");
      using cuk = Tensor.from(ref.cuSeqlens(lensK), [b + 1], "int32");
      using uq = Tensor.from(usedQ, [b], "int32");
      using uk = Tensor.from(usedK, [b], "int32");
      const res = flashAttnVarlen(q, k, v, {
        cuSeqlensQ: cuq, cuSeqlensK: cuk, maxSeqlenQ: 130, maxSeqlenK: 200, sequsedQ: uq, sequsedK: uk,
        causal, out, returnLse: true,
      });
      const o = out.toFloat32Array();
      const got: number[] = [], gotLse: number[] = [], cu = ref.cuSeqlens(lensQ);
      const lse = res.lse!.toFloat32Array();
      for (let i = 0; i < b; i++) {
        for (let r = 0; r < lensQ[i]!; r++)
          for (let x = 0; x < h * d; x++) {
            const val = o[(cu[i]! + r) * h * d + x]!;
            if (r < usedQ[i]!) got.push(val);
            else expect(val).toBe(7);
          }
        for (let hh = 0; hh < h; hh++)
          for (let r = 0; r < usedQ[i]!; r++) gotLse.push(lse[hh * totalQ + cu[i]! + r]!);
      }
      const r = ref.attention(pr), lp = ref.attentionLowPrecision(pr, dtype);
      ref.assertClose("varlen out", got, ref.flat(r.o), ref.flat(lp.o));
      ref.assertClose("varlen lse", gotLse, ref.flat(r.lse), ref.flat(lp.lse));
      res.lse!.dispose();
    });
  }
});

describe("cpu dropout", () => {
  test("mask equals the TS Philox bit for bit; drop fraction within 0.01 of p", () => {
    // q = 0 makes P uniform (1/sk) and v = identity makes O[r][j] = keep(r, j) / ((1-p) sk): the mask, exposed.
    const b = 2, h = 3, sq = 70, sk = 256, d = 8, p = 0.17;
    const seed = 0xdeadbeefcafen, offset = 12345n;
    using q = Tensor.from(new Float32Array(b * sq * h * d), [b, sq, h, d], "float32");
    using k = Tensor.from(new Float32Array(b * sk * h * d).map(() => Math.random()), [b, sk, h, d], "float32");
    const eye = new Float32Array(b * sk * h * sk);
    for (let bi = 0; bi < b; bi++) for (let j = 0; j < sk; j++) for (let hh = 0; hh < h; hh++) eye[((bi * sk + j) * h + hh) * sk + j] = 1;
    using v = Tensor.from(eye, [b, sk, h, sk], "float32");
    const res = flashAttn(q, k, v, { dropoutP: p, seed, offset });
    const o = res.out.toFloat32Array();
    res.out.dispose();
    let dropped = 0, total = 0, mismatches = 0;
    for (let bi = 0; bi < b; bi++)
      for (let hh = 0; hh < h; hh++)
        for (let r = 0; r < sq; r++) {
          const want = ref.dropoutKeepRow(seed, offset, h, bi, hh, r, sk, p);
          for (let j = 0; j < sk; j++) {
            const kept = o[((bi * sq + r) * h + hh) * sk + j]! !== 0;
            if (kept !== (want[j] === 1)) mismatches++;
            dropped += kept ? 0 : 1;
            total++;
          }
        }
    expect(mismatches).toBe(0);
    expect(Math.abs(dropped / total - p)).toBeLessThan(0.01);
  });
});

describe("cpu thread-count independence", () => {
  test("identical bits for FLASH_NUM_THREADS=1 and the default", async () => {
    const script = `
      import { flashAttn, Tensor } from "${import.meta.dir}/../ts/index.ts";
      import * as ref from "${import.meta.dir}/ref/index.ts";
      const rng = new ref.Rng(5);
      const pr = ref.randomProblem(rng, { h: 4, hk: 2, d: 80, dtype: "bfloat16", seqlensQ: [300, 300], seqlensK: [333, 333], causal: true });
      const t = (p, s) => Tensor.from(ref.flat(p), s, "bfloat16");
      const r = flashAttn(t(pr.q, [2, 300, 4, 80]), t(pr.k, [2, 333, 2, 80]), t(pr.v, [2, 333, 2, 80]), { causal: true, returnLse: true, dropoutP: 0.1, seed: 3n });
      const h = new Bun.CryptoHasher("sha256");
      h.update(r.out.hostBytes); h.update(r.lse.hostBytes);
      console.log(h.digest("hex"));`;
    const run = async (threads?: string) => {
      const env = { ...process.env };
      if (threads) env.FLASH_NUM_THREADS = threads;
      else delete env.FLASH_NUM_THREADS;
      const proc = Bun.spawn([process.execPath, "-e", script], { env, stdout: "pipe", stderr: "inherit" });
      const text = await new Response(proc.stdout).text();
      expect(await proc.exited).toBe(0);
      return text.trim();
    };
    const one = await run("1"), many = await run(), three = await run("3");
    expect(one.length).toBe(64);
    expect(many).toBe(one);
    expect(three).toBe(one);
  }, 60_000);
});
