// Runs bench/backward_example.ts (`npm run example:bwd`) as a user would: it must exit 0 and print its pass
// line. Without a GPU (CI) this exercises flashAttnBackward on the CPU backend against the float64 oracle and
// against finite differences; the example exits 1 and prints "FAIL" when either check fails.
import { expect, test } from "bun:test";

test("bench/backward_example.ts checks the gradients and passes", async () => {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/../bench/backward_example.ts`], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  if (code !== 0) console.error(out + err);
  expect(code).toBe(0);
  expect(out).toContain("backward example: PASS");
  expect(out).not.toContain("FAIL");
  // Six checks ran: dq, dk, dv against the oracle and by finite differences.
  expect(out.split("\n").filter((l) => l.startsWith("ok ")).length).toBe(6);
}, 30_000);
