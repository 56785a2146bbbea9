// Host-side C++ drivers of code the CUDA kernels share with the host, built with the system C++ compiler so they
// run on machines without a GPU or nvcc (CI compiles no sm_90a code): test/native/index_math.cpp (FastDiv, the
// L2-section tile order) and test/native/tile_table.cpp (the forward tile tables, mma.sync and Hopper: their rules are
// static_asserts of the headers, the row choice and the rules themselves are checked at run time). Each prints "ok <checks>" when it passes.
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

function buildAndRun(name: string): { stdout: string; exitCode: number } {
  const dir = Bun.spawnSync(["mktemp", "-d"]).stdout.toString().trim();
  const exe = join(dir, name);
  const cc = Bun.spawnSync(["c++", "-std=c++17", "-O2", "-I", join(root, "libflash"), join(root, `test/native/${name}.cpp`), "-o", exe]);
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

test("the forward tile tables keep their rules and the Hopper one picks rows as documented", () => {
  const r = buildAndRun("tile_table");
  expect(r.stdout).toMatch(/^ok \d+\n$/);
  expect(r.exitCode).toBe(0);
});
