import { describe, expect, test } from "bun:test";
import { dropoutKeep, dropoutKeepRow, dropoutThreshold, mulhi32, philox4x32_10 } from "./philox.ts";
import { Rng } from "./rng.ts";

const hex = (xs: number[]) => xs.map((x) => "0x" + x.toString(16).padStart(8, "0"));

describe("philox4x32_10", () => {
  // Random123 known-answer vectors for Philox4x32-10.
  test("KAT: zero counter, zero key", () => {
    expect(hex(philox4x32_10([0, 0, 0, 0], [0, 0]))).toEqual(hex([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]));
  });
  test("KAT: all ones", () => {
    const f = 0xffffffff;
    expect(hex(philox4x32_10([f, f, f, f], [f, f]))).toEqual(hex([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]));
  });
  test("KAT: pi digits", () => {
    const out = philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]);
    expect(hex(out)).toEqual(hex([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]));
  });

  test("mulhi32 equals the BigInt product's high word", () => {
    const rng = new Rng(7);
    const edge = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    const pairs: [number, number][] = [];
    for (const a of edge) for (const b of edge) pairs.push([a, b]);
    for (let i = 0; i < 20000; i++) pairs.push([rng.nextU32(), rng.nextU32()]);
    for (const [a, b] of pairs) {
      const want = Number((BigInt(a) * BigInt(b)) >> 32n);
      if (mulhi32(a, b) !== want) throw new Error(`mulhi32(${a}, ${b}) = ${mulhi32(a, b)}, want ${want}`);
    }
  });

  test("speed: 1e6 calls well under a few seconds", () => {
    const t0 = performance.now();
    let acc = 0;
    for (let i = 0; i < 1_000_000; i++) acc ^= philox4x32_10([i, 3, 5, 7], [11, 13])[0];
    const ms = performance.now() - t0;
    expect(acc).not.toBe(undefined);
    expect(ms).toBeLessThan(3000);
  });
});

describe("dropout mask", () => {
  test("threshold quantizes p to 1/65536 and saturates", () => {
    expect(dropoutThreshold(0)).toBe(0);
    expect(dropoutThreshold(0.5)).toBe(32768);
    expect(dropoutThreshold(0.17)).toBe(Math.floor(Math.fround(0.17) * 65536 + 0.5));
    expect(dropoutThreshold(0.9999999)).toBe(65535);
    expect(dropoutThreshold(1 / 131072)).toBe(1); // exactly half a step rounds up
  });

  test("p = 0 keeps everything", () => {
    const row = dropoutKeepRow(1n, 0n, 4, 0, 0, 0, 100, 0);
    expect(row.every((x) => x === 1)).toBe(true);
  });

  test("per-element and per-row forms agree", () => {
    const seed = 0x0123456789abcdefn, offset = 0xfffffffffffffff0n; // offset + n wraps past 2^64
    for (const [bi, hi, r] of [[0, 0, 0], [1, 3, 17], [5, 7, 1000]] as const) {
      const row = dropoutKeepRow(seed, offset, 8, bi, hi, r, 45, 0.3);
      for (let c = 0; c < 45; c++) expect(row[c]).toBe(dropoutKeep(seed, offset, 8, bi, hi, r, c, 0.3) ? 1 : 0);
    }
  });

  test("element (c, r) reads the u16 the header names", () => {
    // seed and offset picked so the counter words are all distinct and nonzero.
    const seed = (0x11111111n << 32n) | 0x22222222n, offset = (7n << 32n) | 100n;
    const h = 3, bi = 2, hi = 1, r = 9, c = 13;
    const n = offset + BigInt(bi * h + hi);
    const x = philox4x32_10([c >> 3, r, Number(n & 0xffffffffn), Number(n >> 32n)], [0x22222222, 0x11111111]);
    const u16 = (x[(c & 7) >> 1]! >>> 16) & 0xffff; // c odd -> high half
    const p = 0.4;
    expect(dropoutKeep(seed, offset, h, bi, hi, r, c, p)).toBe(u16 >= dropoutThreshold(p));
  });

  test("different offsets give different masks; kept fraction ~ 1 - p", () => {
    const p = 0.17;
    let kept = 0, total = 0, same = 0;
    for (let r = 0; r < 400; r++) {
      const a = dropoutKeepRow(42n, 0n, 2, 0, 1, r, 500, p);
      const b = dropoutKeepRow(42n, 2n, 2, 0, 1, r, 500, p);
      for (let c = 0; c < 500; c++) {
        kept += a[c]!;
        same += a[c] === b[c] ? 1 : 0;
        total++;
      }
    }
    expect(Math.abs(1 - kept / total - p)).toBeLessThan(0.01);
    expect(same / total).toBeLessThan(0.8); // independent masks agree on ~p^2 + (1-p)^2 = 0.72
  });
});
