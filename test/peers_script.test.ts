// bench/peers.py measures on the GPU machine only, but its bookkeeping runs anywhere: the rotated rounds (each
// implementation in each place, medians, a failing one dropped) and the table rendered from a saved peers.json.
// A wrong median or a dropped column would misreport every later grid, so they are held here (python3 only).
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const hasPython = Bun.spawnSync(["python3", "--version"]).exitCode === 0;

const env = { ...process.env, PYTHONDONTWRITEBYTECODE: "1" }; // no __pycache__ in the tree

function py(code: string): unknown {
  const r = Bun.spawnSync(["python3", "-c", code], { cwd: join(root, "bench"), env });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return JSON.parse(r.stdout.toString());
}

test.skipIf(!hasPython)("time_rounds rotates the order, keeps every round and takes the median", () => {
  const out = py(`
import json, peers
order, t = [], {"a": [5.0, 1.0, 3.0], "b": [2.0, 2.0, 4.0], "c": [1.0, 9.0, 7.0]}
def timer(fn):
    order.append(fn)
    return t[fn].pop(0)
row = {}
peers.time_rounds(row, [("a", "a"), ("b", "b"), ("c", "c")], 3, timer)
print(json.dumps({"order": order, "row": row, "med4": peers.median([4, 1, 3, 2])}))`) as {
    order: string[];
    row: Record<string, unknown>;
    med4: number;
  };
  expect(out.order).toEqual(["a", "b", "c", "b", "c", "a", "c", "a", "b"]);
  expect(out.row.a_ms_rounds).toEqual([5, 1, 3]);
  expect(out.row.a_ms).toBe(3);
  expect(out.row.b_ms).toBe(2);
  expect(out.row.c_ms).toBe(7);
  expect(out.med4).toBe(2.5);
});

test.skipIf(!hasPython)("time_rounds drops an implementation whose timing raises, and times it no more", () => {
  const out = py(`
import json, peers
calls = []
def timer(fn):
    calls.append(fn)
    if fn == "bad" and calls.count("bad") == 2:
        raise RuntimeError("refused")
    return 1.0
row = {}
peers.time_rounds(row, [("ok", "ok"), ("bad", "bad")], 4, timer)
once = {}
peers.time_rounds(once, [("ok", "ok")], 0, lambda fn: 2.0)  # --rounds 0 still times one round
print(json.dumps({"calls": calls, "row": row, "once": once}))`) as {
    calls: string[];
    row: Record<string, unknown>;
    once: Record<string, unknown>;
  };
  expect(out.calls.filter((c) => c === "bad").length).toBe(2);
  expect(out.calls.filter((c) => c === "ok").length).toBe(4);
  expect(out.row.bad_error).toContain("refused");
  expect(out.row.bad_ms).toBeUndefined();
  expect(out.row.ok_ms).toBe(1);
  expect(out.once).toEqual({ ok_ms_rounds: [2], ok_ms: 2 });
});

test.skipIf(!hasPython)("peers.py --render writes both ratio columns from a saved peers.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "peers-"));
  try {
    const row = (causal: boolean, cudnn?: number) => ({
      dtype: "bf16", hdim: 128, causal, seqlen: 2048, libflash_tflops: 660, sdpa_flash_tflops: 330,
      ...(cudnn ? { sdpa_cudnn_tflops: cudnn } : { sdpa_cudnn_error: "refused" }),
      speedup_vs_fa2: 2, maxdiff_vs_sdpa_flash: 0.001,
    });
    const libErr = { dtype: "fp16", hdim: 64, causal: false, seqlen: 512, libflash_error: "x", sdpa_flash_tflops: 250,
      sdpa_cudnn_tflops: 380 };
    const meta = { gpu: "test GPU", date: "2026-12-07", torch: "t", cudnn: 1, command: "peers.py" };
    writeFileSync(join(dir, "peers.json"), JSON.stringify({ meta, rows: [row(false, 600), row(true), libErr] }));
    const r = Bun.spawnSync(["python3", join(root, "bench/peers.py"), "--render", join(dir, "peers.json"), "--out", dir],
      { env });
    expect(r.exitCode).toBe(0);
    const md = readFileSync(join(dir, "peers.md"), "utf8").split("\n");
    expect(md[2]).toContain("| libflash / FA2 | libflash / cuDNN | max diff |");
    expect(md[4]).toBe("| bf16 | 128 | 0 | 2048 | 660.0 | 330.0 | 600.0 | 2.00 | 1.10 | 0.001 |");
    expect(md[5]).toBe("| bf16 | 128 | 1 | 2048 | 660.0 | 330.0 | err | 2.00 | - | 0.001 |");
    expect(md[6]).toBe("| fp16 | 64 | 0 | 512 | err | 250.0 | 380.0 | - | - | nan |");
  } finally {
    rmSync(dir, { recursive: true });
  }
});
