// The committed CUDA instantiation files are exactly what scripts/gen_kernels.py writes: a family edited in
// the script but not regenerated (or a hand-edited generated file) fails here, on machines without nvcc too.
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test("the generated CUDA instantiation files are up to date with scripts/gen_kernels.py", () => {
  const r = Bun.spawnSync(["python3", join(root, "scripts/gen_kernels.py"), "--check"]);
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
});
