// The index arithmetic shared by the CUDA kernels and their host code (FastDiv, the L2-section tile order),
// checked on the host: test/native/index_math.cpp built with the system C++ compiler, so it runs on machines
// without a GPU or nvcc.
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test("FastDiv and the L2 sections hold their contracts on the host", () => {
  const dir = Bun.spawnSync(["mktemp", "-d"]).stdout.toString().trim();
  const exe = join(dir, "index_math");
  const cc = Bun.spawnSync(["c++", "-std=c++17", "-O2", "-I", join(root, "libflash"), join(root, "test/native/index_math.cpp"), "-o", exe]);
  expect(cc.stderr.toString()).toBe("");
  expect(cc.exitCode).toBe(0);
  const r = Bun.spawnSync([exe]);
  expect(r.stdout.toString()).toMatch(/^ok \d+\n$/);
  expect(r.exitCode).toBe(0);
});
