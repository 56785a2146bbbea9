import { describe, expect, test } from "bun:test";
import { assertClose, checkClose, flat } from "./tolerance.ts";

describe("checkClose (FA's mult * lowp error + atol rule)", () => {
  const ref = [1, 2, 3, Infinity];
  const lowp = [1.01, 2, 3, Infinity]; // lowp error 0.01
  test("passes inside the bound, fails outside, reports where", () => {
    expect(checkClose("o", [1, 2.019, 3, Infinity], ref, lowp).ok).toBe(true);
    const rep = checkClose("o", [1, 2, 3.03, Infinity], ref, lowp, 2, 1e-5);
    expect(rep.ok).toBe(false);
    expect(rep.where).toBe(2);
    expect(rep.bound).toBeCloseTo(0.02 + 1e-5, 12);
    expect(rep.message).toContain("FAIL");
    expect(rep.message).toContain("[2]");
    expect(checkClose("o", [1, 2, 3.03, Infinity], ref, lowp, 3).ok).toBe(true);
  });
  test("atol alone when lowp is exact", () => {
    expect(checkClose("x", [1 + 5e-6], [1], [1]).ok).toBe(true);
    expect(checkClose("x", [1 + 2e-5], [1], [1]).ok).toBe(false);
  });
  test("equal infinities are equal; one-sided infinity and NaN fail", () => {
    expect(checkClose("lse", [Infinity], [Infinity], [Infinity]).ok).toBe(true);
    expect(checkClose("lse", [1e30], [Infinity], [Infinity]).ok).toBe(false);
    expect(checkClose("lse", [Infinity], [1], [1]).ok).toBe(false);
    expect(checkClose("lse", [-Infinity], [Infinity], [Infinity]).ok).toBe(false);
    const nan = checkClose("o", [1, NaN], [1, 2], [1, 2]);
    expect(nan.ok).toBe(false);
    expect(nan.message).toContain("NaN");
    expect(checkClose("o", [1, 2], [1, NaN], [1, 2]).ok).toBe(false);
  });
  test("length mismatch fails; assertClose throws the report", () => {
    expect(checkClose("o", [1], [1, 2], [1, 2]).ok).toBe(false);
    expect(() => assertClose("dq", [0.5], [0], [0.1], 2, 0, (i) => `row ${i}`)).toThrow(/dq: FAIL.*row 0/);
    expect(assertClose("dq", [0.1], [0], [0.1]).ok).toBe(true);
  });
  test("flat concatenates", () => {
    expect(Array.from(flat([new Float64Array([1, 2]), [3], new Float32Array(0)]))).toEqual([1, 2, 3]);
  });
});
