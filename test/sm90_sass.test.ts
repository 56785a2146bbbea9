// Where ptxas put the Hopper forward's wgmma waits, read from the SASS on this machine (scripts/sass_local.sh --check:
// nvcc, then Debian's nvdisasm, which .ci/run fetches). In the overlapped key loop, where the wait for P V(j-1) lands
// decides whether block j's softmax runs while that GEMM is on the tensor cores. ptxas moves a wait above arithmetic
// that does not feed it, no warning says so, and only the SASS shows it (bench/NOTES.md step 60). It does so on the
// rows without the speculative softmax (whose vote keeps the exponentials before the wait): this test holds that
// map, so a change that moves a wait anywhere else fails here. Pinning those waits after the softmax (branch
// pin-wait) measured slower or equal on an H100 (NOTES step 60): the early wait frees the V slot sooner.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const disasm = process.env.NVDISASM ?? (existsSync(join(root, ".tools/nvdisasm")) ? join(root, ".tools/nvdisasm") : Bun.which("nvdisasm"));

// One instantiation file per (d, dv, mask): its plain kernels cover both rows of the triple, with and without softcap.
const files = [
  "hdim64_noncausal", "hdim64_causal", "hdim96_causal", "hdim128_noncausal", "hdim128_causal", "hdim192_noncausal",
  "hdim192_causal", "hdim192_dv128_noncausal", "hdim192_dv128_causal", "hdim256_noncausal", "hdim256_causal",
].map((f) => `fwd_sm90_bf16_${f}_plain.cu`);

// overlap and spec of the table's row (d, dv, masked, alt), from the table itself.
function row(d: number, dv: number, masked: number, alt: number): { overlap: boolean; spec: number } {
  const r = Bun.spawnSync(["python3", join(root, "scripts/sm90_tune_flags.py"), `${d}`, `${masked}`, `${alt}`, "--dv", `${dv}`]);
  const out = r.stdout.toString();
  const ov = out.match(/-DFLASH_SM90_TUNE_OV=(\d)/), sp = out.match(/-DFLASH_SM90_TUNE_SP=(\d)/);
  if (!ov || !sp) throw new Error(`no row (${d}, ${dv}, ${masked}, ${alt}): ${r.stderr}`);
  return { overlap: ov[1] === "1", spec: Number(sp[1]) };
}

async function check(file: string): Promise<string> {
  const p = Bun.spawn(["bash", join(root, "scripts/sass_local.sh"), "--check", file], {
    env: { ...process.env, NVDISASM: disasm ?? "" },
    stderr: "pipe",
  });
  const [out, err, rc] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (rc !== 0) throw new Error(`sass_local.sh --check ${file}: exit ${rc}\n${err}`);
  return out;
}

test.skipIf(!Bun.which("nvcc") || !disasm)(
  "the overlapped key loop waits for P V(j-1) after block j's softmax on the sm90 forward's spec rows, before it on the others (SASS)",
  async () => {
    const outs: string[] = [];
    for (let i = 0; i < files.length; i += 2) outs.push(...(await Promise.all(files.slice(i, i + 2).map(check))));
    const seen: string[] = [];
    for (const out of outs) {
      for (const line of out.trim().split("\n")) {
        // Sm90Cfg<d, dv, masked, alt>, then the kernel's bf16, masked, softcap, pack, split, dense
        const m = line.match(/^(\d+)ELi(\d+)ELb(\d)ELi(\d)EEELb\dELb\dELb(\d)\S* loop_sites=(\d+) loop_hoisted=(\d+)/);
        expect(m).not.toBeNull();
        type Seven = [number, number, number, number, number, number, number];
        const [d, dv, masked, alt, softcap, sites, hoisted] = m!.slice(1).map(Number) as Seven;
        const name = `d${d} dv${dv} mask${masked} row${alt}${softcap ? " softcap" : ""}`;
        seen.push(name);
        // One loop per overlap kernel; the others (d256's short rows: ping-pong, one stage) have none.
        const { overlap, spec } = row(d, dv, masked, alt);
        expect(`${name}: sites ${sites}`).toBe(`${name}: sites ${overlap ? 1 : 0}`);
        expect(`${name}: hoisted ${hoisted}`).toBe(`${name}: hoisted ${overlap && spec === 0 ? 1 : 0}`);
      }
    }
    expect(seen.length).toBeGreaterThanOrEqual(2 * files.length); // every file: both rows or softcap and not
  },
  600_000,
);
