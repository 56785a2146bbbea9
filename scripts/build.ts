// `bun run build`: configures (once) and builds libflash.so with CMake + Ninja, incrementally.
//   bun scripts/build.ts                 build/ (CUDA backend when nvcc is found)
//   bun scripts/build.ts --zig           build-zig/ : CPU-only, compiled by zig cc (the cross-compile toolchain)
//   --cuda=ON|OFF|AUTO  --archs="80;90a"  --head-dims="64;128"  --debug  --build-dir=DIR
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const args = process.argv.slice(2);
const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split("=").slice(1).join("=");
const zig = args.includes("--zig");
const dir = join(root, opt("build-dir") ?? (zig ? "build-zig" : "build"));

const defs = [`-DCMAKE_BUILD_TYPE=${args.includes("--debug") ? "Debug" : "Release"}`];
if (zig) {
  defs.push(`-DCMAKE_C_COMPILER=${join(root, "scripts/zig-cc")}`, `-DCMAKE_CXX_COMPILER=${join(root, "scripts/zig-c++")}`, "-DFLASH_CUDA=OFF");
} else {
  defs.push(`-DFLASH_CUDA=${opt("cuda") ?? process.env.FLASH_CUDA ?? "AUTO"}`);
}
const archs = opt("archs") ?? process.env.FLASH_CUDA_ARCHS;
if (archs) defs.push(`-DFLASH_CUDA_ARCHS=${archs}`);
const dims = opt("head-dims") ?? process.env.FLASH_HEAD_DIMS;
if (dims) defs.push(`-DFLASH_HEAD_DIMS=${dims}`);

function run(cmd: string[]) {
  console.error(`$ ${cmd.join(" ")}`);
  const r = Bun.spawnSync(cmd, { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
}

const generator = Bun.which("ninja") ? ["-G", "Ninja"] : [];
const cached = existsSync(join(dir, "CMakeCache.txt"));
// A configure interrupted after writing its cache leaves no build files: configure again (the cache keeps the
// generator), else `cmake --build` fails on a missing build.ninja.
const generated = existsSync(join(dir, "build.ninja")) || existsSync(join(dir, "Makefile"));
// Re-run configure when options are given or nothing is configured yet; otherwise let the build re-check.
if (!cached || !generated || args.some((a) => a.startsWith("--") && a !== "--zig"))
  run(["cmake", "-S", root, "-B", dir, ...(cached ? [] : generator), ...defs]);
run(["cmake", "--build", dir, "--parallel", String(navigator.hardwareConcurrency || 2)]);
console.error(`built ${join(dir, "libflash.so")}`);
