// The API layer's promise under random combinations of bad and odd fields (errors.test.ts checks one rule at a time),
// on the CPU backend: no crash, a known status, and a refused call writes nothing (test/fuzz/params.ts).
import { expect, test } from "bun:test";
import { Status } from "../ts/index.ts";
import { fuzz, hostMem, type Entry } from "./fuzz/params.ts";

const mem = hostMem();
for (const [entry, seed] of [["flash_fwd", 7], ["flash_fwd_kvcache", 7], ["flash_bwd", 11]] as [Entry, number][]) {
  test(`${entry}: 4000 random draws of bad and odd fields, no crash, refused calls write nothing`, () => {
    const { failures, counts } = fuzz(mem, entry, seed, 4000);
    expect(failures.slice(0, 10)).toEqual([]);
    // The draws must reach both sides of the validation, or the test checks nothing.
    expect(counts.get(0) ?? 0).toBeGreaterThan(100);
    expect(counts.get(Status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(1000);
  });
}
