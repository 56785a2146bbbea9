// The committed generated CUDA files are exactly what their scripts write (gen_kernels.py: instantiations;
// gen_wgmma.py: the wgmma wrappers): a family edited in
// the script but not regenerated (or a hand-edited generated file) fails here, on machines without nvcc too.
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test("the generated CUDA instantiation files are up to date with scripts/gen_kernels.py", () => {
  const r = Bun.spawnSync(["python3", join(root, "scripts/gen_kernels.py"), "--check"]);
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
});

test("the wgmma wrappers are up to date with scripts/gen_wgmma.py", () => {
  const r = Bun.spawnSync(["python3", join(root, "scripts/gen_wgmma.py"), "--check"]);
  expect(r.stdout.toString()).toContain("up to date");
  expect(r.exitCode).toBe(0);
});
