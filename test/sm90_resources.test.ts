// The kernels' resource report, held as a test: every Hopper forward kernel compiles without local-memory spills
// (issue 7 asks for none). ptxas needs no GPU, so this runs wherever nvcc is (CI has it); ~2.5 min on 2 cores.
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test.skipIf(!Bun.which("nvcc"))(
  "no sm90 forward kernel spills (scripts/spill_report.sh, sm_90a, every dtype and head dim)",
  () => {
    const r = Bun.spawnSync(["bash", join(root, "scripts/spill_report.sh"), "--family", "fwd_sm90", "--dtype", "all"]);
    const out = r.stdout.toString();
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const summary = out.match(/^kernels=(\d+) spilling=(\d+)$/m);
    expect(summary).not.toBeNull();
    expect(Number(summary![1])).toBeGreaterThan(100); // the 96 generated files hold 218 kernels
    expect(out.trim()).toBe(summary![0]); // no kernel lines: those name the spilling kernels
  },
  900_000,
);
