// Host-side C++ drivers of code the CUDA kernels share with the host, built with the system C++ compiler so they
// run on machines without a GPU or nvcc (CI compiles no sm_90a code): test/native/index_math.cpp (FastDiv, the
// L2-section tile order), test/native/tile_table.cpp (the forward tile tables, mma.sync and Hopper: their rules are
// static_asserts of the headers, the row choice and the rules themselves are checked at run time) and
// test/native/tune_row.cpp (the Hopper table's command-line tuning row, which every tile A/B times). Each prints "ok <checks>" when it passes.
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

function buildAndRun(name: string, defines: string[] = [], opt = "-O2"): { stdout: string; exitCode: number } {
  const dir = Bun.spawnSync(["mktemp", "-d"]).stdout.toString().trim();
  const exe = join(dir, name);
  const cc = Bun.spawnSync(["c++", "-std=c++17", opt, ...defines, "-I", join(root, "libflash"), join(root, `test/native/${name}.cpp`), "-o", exe]);
  expect(cc.stderr.toString()).toBe("");
  expect(cc.exitCode).toBe(0);
  const r = Bun.spawnSync([exe]);
  return { stdout: r.stdout.toString(), exitCode: r.exitCode };
}

test("FastDiv and the L2 sections hold their contracts on the host", () => {
  const r = buildAndRun("index_math");
  expect(r.stdout).toMatch(/^ok \d+\n$/);
  expect(r.exitCode).toBe(0);
});

// The L2 section rule (tile_order.h; the plain build above tests the shipped form: equal sections, small ones up to
// 1536 keys) in its other forms: plain, with equal sections, and for short key lengths only (sk 1000 in the test's
// grid is short, 16384 is not).
for (const [equal, shortSk] of [[0, 0], [1, 0], [0, 1536]])
  test(`the L2 section rule (8 MB, 2 waves, equal ${equal}, short_sk ${shortSk}) holds its contracts on the host`, () => {
    const r = buildAndRun("index_math", ["-DFLASH_L2_SECTION_MB=8", "-DFLASH_L2_SECTION_WAVES=2",
      `-DFLASH_L2_SECTION_EQUAL=${equal}`, `-DFLASH_L2_SECTION_SHORT_SK=${shortSk}`]);
    expect(r.stdout).toMatch(/^ok \d+\n$/);
    expect(r.exitCode).toBe(0);
  });

test("the forward tile tables keep their rules and the Hopper one picks rows as documented", () => {
  const r = buildAndRun("tile_table");
  expect(r.stdout).toMatch(/^ok \d+\n$/);
  expect(r.exitCode).toBe(0);
});

// Values no shipped row has, so a field that a cast narrows or drops shows (spec 2 read as 1 until session 36).
const tuneRow = { D: 64, CONS: 2, BN: 128, ST: 3, OV: 1, PP: 1, PS: 1, DY: 1, RP: 24, RC: 240, DB: 1, QS: 2, PMN: 5, TO: 1,
  DE: 1, UN: 1, PO: 1, SG: 1, SP: 2 };

test("the Hopper table's tuning row carries every FLASH_SM90_TUNE_* value through unchanged", () => {
  const r = buildAndRun("tune_row", Object.entries(tuneRow).map(([k, v]) => `-DFLASH_SM90_TUNE_${k}=${v}`));
  expect(r.stdout).toMatch(/^ok \d+\n$/);
  expect(r.exitCode).toBe(0);
});

// scripts/sm90_tune_flags.py prints the tuning-row flags of a table row, which A/B recipes take instead of copying
// fields by hand: each row's copy must equal the row (but min_sk / softcap, which a tuning row fixes).
const hasPython = Bun.spawnSync(["python3", "--version"]).exitCode === 0;
test.skipIf(!hasPython)("scripts/sm90_tune_flags.py copies every row of the Hopper table faithfully", () => {
  const script = join(root, "scripts/sm90_tune_flags.py");
  const list = Bun.spawnSync(["python3", script, "--list"]);
  expect(list.exitCode).toBe(0);
  const rows = list.stdout.toString().trim().split("\n").map((l) => l.split(" ").map(Number));
  expect(rows.length).toBeGreaterThanOrEqual(16);
  for (const [d, dv, mask, alt] of rows) {
    const f = Bun.spawnSync(["python3", script, String(d), String(mask), String(alt), "--dv", String(dv)]);
    expect(f.exitCode).toBe(0);
    const defines = [...f.stdout.toString().trim().split(" "), `-DTUNE_ROW_MASK=${mask}`, `-DTUNE_ROW_ALT=${alt}`];
    const r = buildAndRun("tune_row", defines, "-O0");
    expect(`${d} ${dv} ${mask} ${alt}: ${r.stdout}`).toMatch(/: ok \d+\n$/);
  }
  // an override replaces the field; the macro stays defined once
  const o = Bun.spawnSync(["python3", script, "64", "0", "0", "ST=3"]).stdout.toString();
  expect(o.match(/FLASH_SM90_TUNE_ST=/g)?.length).toBe(1);
  expect(o).toContain("-DFLASH_SM90_TUNE_ST=3");
}, 120_000);
