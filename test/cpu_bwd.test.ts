// CPU backward against the float64 oracle's analytic gradients (FA's output-test rule: 3x the low-precision
// error), over a sample of the grid, plus bitwise repeatability across thread counts.
import { describe, expect, test } from "bun:test";
import { flashAttn, flashAttnBackward, Tensor } from "../ts/index.ts";
import type { AttnDType } from "../ts/dtype.ts";
import * as ref from "./ref/index.ts";

interface Cfg {
  dtype: AttnDType; b: number; h: number; hk: number; d: number; dv: number; sq: number; sk: number;
  causal?: boolean; window?: [number, number]; softcap?: number; alibi?: boolean; dropoutP?: number;
}
const name = (c: Cfg) =>
  `${c.dtype} b=${c.b} h=${c.h}/${c.hk} d=${c.d}/${c.dv} ${c.sq}x${c.sk}${c.causal ? " causal" : ""}` +
  `${c.window ? ` win=${c.window}` : ""}${c.softcap ? " softcap" : ""}${c.alibi ? " alibi" : ""}${c.dropoutP ? ` p=${c.dropoutP}` : ""}`;

function check(c: Cfg, seed: number) {
  const rng = new ref.Rng(seed);
  const slopes = c.alibi ? ref.randu(c.b * c.h, rng, 0, 0.3) : undefined;
  const opts = {
    causal: c.causal, windowLeft: c.window?.[0], windowRight: c.window?.[1], softcap: c.softcap,
    alibiSlopes: slopes, dropoutP: c.dropoutP, seed: 77n, offset: 3n,
  };
  const pr = ref.randomProblem(rng, {
    h: c.h, hk: c.hk, d: c.d, dv: c.dv, dtype: c.dtype, seqlensQ: Array(c.b).fill(c.sq), seqlensK: Array(c.b).fill(c.sk), ...opts,
  });
  const dO = ref.randomDout(rng, pr, c.dtype);
  const T = (p: ArrayLike<number>[], s: number[]) => Tensor.from(ref.flat(p), s, c.dtype);
  using q = T(pr.q, [c.b, c.sq, c.h, c.d]);
  using k = T(pr.k, [c.b, c.sk, c.hk, c.d]);
  using v = T(pr.v, [c.b, c.sk, c.hk, c.dv]);
  using dout = T(dO, [c.b, c.sq, c.h, c.dv]);
  using al = slopes ? Tensor.from(slopes, [c.b, c.h], "float32") : undefined;
  const o = {
    causal: c.causal, windowSize: c.window, softcap: c.softcap, alibiSlopes: al, dropoutP: c.dropoutP, seed: 77n, offset: 3n,
  };
  const fwd = flashAttn(q, k, v, { ...o, returnLse: true });
  const g = flashAttnBackward(dout, q, k, v, fwd.out, fwd.lse!, { ...o, returnSoftmaxD: true });
  const want = ref.attentionBackward(pr, dO);
  const lp = ref.attentionBackwardLowPrecision(pr, dO, c.dtype);
  const n = name(c);
  ref.assertClose(`${n} dq`, g.dq.toFloat32Array(), ref.flat(want.dq), ref.flat(lp.dq), 3, 1e-5);
  ref.assertClose(`${n} dk`, g.dk.toFloat32Array(), ref.flat(want.dk), ref.flat(lp.dk), 3, 1e-5);
  ref.assertClose(`${n} dv`, g.dv.toFloat32Array(), ref.flat(want.dv), ref.flat(lp.dv), 3, 1e-5);
  // softmax_d is computed from the library's own (rounded) O, so it gets the forward's yardstick.
  ref.assertClose(`${n} softmax_d`, g.softmaxD!.toFloat32Array(), ref.flat(want.softmaxD), ref.flat(lp.softmaxD), 3, 2e-3);
  for (const t of [fwd.out, fwd.lse!, g.dq, g.dk, g.dv, g.softmaxD!]) t.dispose();
}

describe("cpu backward grid", () => {
  const DS = [32, 40, 59, 64, 80, 96, 111, 128, 160, 192, 224, 256];
  const SEQ: [number, number][] = [[1, 239], [3, 799], [113, 203], [128, 217], [108, 256], [256, 512]];
  const DT: AttnDType[] = ["float16", "bfloat16", "float32"];
  let n = 0;
  for (const d of DS) {
    // Two seqlen pairs per head dim keeps the f64 reference (scalar JS) within the time budget.
    for (const [sq, sk] of [SEQ[n % SEQ.length]!, SEQ[(n + 3) % SEQ.length]!]) {
      const i = n++;
      const layout = i % 3;
      const h = layout === 0 ? 2 : 4, hk = layout === 0 ? 2 : layout === 1 ? 1 : 2;
      const mask = i % 4;
      const c: Cfg = {
        dtype: DT[i % 3]!, b: 2, h, hk, d, dv: i % 5 === 2 ? Math.min(256, d + 9) : d, sq, sk,
        causal: mask === 1, window: mask === 2 ? [i % 40, (i * 3) % 20] : undefined,
        alibi: i % 3 === 1, softcap: i % 5 === 3 ? 4 : undefined, dropoutP: i % 5 === 4 ? 0.17 : undefined,
      };
      test(name(c), () => check(c, 500 + i), 60_000);
    }
  }
  test("fully masked rows and unseen keys give zero gradients", () =>
    check({ dtype: "float32", b: 1, h: 2, hk: 1, d: 16, dv: 16, sq: 50, sk: 20, window: [2, 0] }, 7));
});

describe("cpu backward determinism", () => {
  test("identical bits for FLASH_NUM_THREADS=1, 2 and 3", async () => {
    const script = `
      import { flashAttn, flashAttnBackward, Tensor } from "${import.meta.dir}/../ts/index.ts";
      import * as ref from "${import.meta.dir}/ref/index.ts";
      const rng = new ref.Rng(11);
      const pr = ref.randomProblem(rng, { h: 6, hk: 2, d: 64, dtype: "float16", seqlensQ: [200, 200], seqlensK: [260, 260] });
      const dO = ref.randomDout(rng, pr, "float16");
      const t = (p, s) => Tensor.from(ref.flat(p), s, "float16");
      const q = t(pr.q, [2, 200, 6, 64]), k = t(pr.k, [2, 260, 2, 64]), v = t(pr.v, [2, 260, 2, 64]);
      const o = { causal: true, dropoutP: 0.2, seed: 9n };
      const f = flashAttn(q, k, v, { ...o, returnLse: true });
      const g = flashAttnBackward(t(dO, [2, 200, 6, 64]), q, k, v, f.out, f.lse, o);
      const h = new Bun.CryptoHasher("sha256");
      for (const x of [g.dq, g.dk, g.dv]) h.update(x.hostBytes);
      console.log(h.digest("hex"));`;
    const run = async (threads: string) => {
      const proc = Bun.spawn([process.execPath, "-e", script], { env: { ...process.env, FLASH_NUM_THREADS: threads }, stdout: "pipe", stderr: "inherit" });
      const text = await new Response(proc.stdout).text();
      expect(await proc.exited).toBe(0);
      return text.trim();
    };
    const one = await run("1");
    expect(one.length).toBe(64);
    expect(await run("2")).toBe(one);
    expect(await run("3")).toBe(one);
  }, 60_000);
});
