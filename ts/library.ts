// Finds, opens and verifies libflash.so. One instance per process: bun:ffi libraries must never be
// closed while in use (a call after close() jumps into freed memory).
import { CString, dlopen, read, type Pointer } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { FlashAbiError, Status, errorFor } from "./errors.ts";
import { BWD_FIELDS, FIELD_KIND_CODE, FIELD_SIZE, FWD_FIELDS, type FieldKind } from "./layout.gen.ts";

/** The ABI version this binding was written for (FLASH_ABI_VERSION in include/flash.h). */
export const ABI_VERSION = 1;

const i32 = "i32", u64 = "u64", ptr = "ptr", f32 = "f32", cstr = "cstring";
export const SYMBOLS = {
  flash_version: { args: [], returns: i32 },
  flash_abi_version: { args: [], returns: i32 },
  flash_status_string: { args: [i32], returns: cstr },
  flash_last_error: { args: [], returns: cstr },
  flash_last_cuda_error: { args: [], returns: i32 },
  flash_last_kernel: { args: [], returns: cstr },
  flash_fwd_params_init: { args: [ptr], returns: i32 },
  flash_bwd_params_init: { args: [ptr], returns: i32 },
  flash_fwd_workspace_size: { args: [ptr, ptr], returns: i32 },
  flash_fwd: { args: [ptr, ptr, u64, ptr], returns: i32 },
  flash_fwd_kvcache_workspace_size: { args: [ptr, ptr], returns: i32 },
  flash_fwd_kvcache: { args: [ptr, ptr, u64, ptr], returns: i32 },
  flash_bwd_workspace_size: { args: [ptr, ptr], returns: i32 },
  flash_bwd: { args: [ptr, ptr, u64, ptr], returns: i32 },
  flash_params_layout: { args: [i32, ptr], returns: ptr },
  flash_params_sizeof: { args: [i32], returns: u64 },
  flash_build_info: { args: [], returns: cstr },
  flash_device_count: { args: [ptr], returns: i32 },
  flash_device_get_properties: { args: [i32, ptr], returns: i32 },
  flash_set_device: { args: [i32], returns: i32 },
  flash_get_device: { args: [ptr], returns: i32 },
  flash_device_synchronize: { args: [], returns: i32 },
  flash_malloc: { args: [ptr, u64], returns: i32 },
  flash_free: { args: [ptr], returns: i32 },
  flash_memcpy: { args: [ptr, ptr, u64, i32], returns: i32 },
  flash_memcpy_async: { args: [ptr, ptr, u64, i32, ptr], returns: i32 },
  flash_memset: { args: [ptr, i32, u64], returns: i32 },
  flash_memset_async: { args: [ptr, i32, u64, ptr], returns: i32 },
  flash_stream_create: { args: [ptr], returns: i32 },
  flash_stream_destroy: { args: [ptr], returns: i32 },
  flash_stream_synchronize: { args: [ptr], returns: i32 },
  flash_event_create: { args: [ptr], returns: i32 },
  flash_event_destroy: { args: [ptr], returns: i32 },
  flash_event_record: { args: [ptr, ptr], returns: i32 },
  flash_event_query: { args: [ptr], returns: i32 },
  flash_event_synchronize: { args: [ptr], returns: i32 },
  flash_event_elapsed_ms: { args: [ptr, ptr, ptr], returns: i32 },
} as const;
void f32; // (no f32-argument symbols today; kept for symmetry with the header's types)

type Symbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

export interface FieldInfo { offset: number; size: number; kind: FieldKind }
export interface Layout { size: number; fields: Map<string, FieldInfo> }

export interface Library {
  path: string;
  symbols: Symbols;
  fwdLayout: Layout;
  bwdLayout: Layout;
  buildInfo: BuildInfo;
}

export interface BuildInfo {
  version: string;
  abi: number;
  backends: string[];
  cuda_archs: number[];
  cuda_head_dims: number[];
  cuda_runtime: number;
  /** Forward kernel families compiled in: "sm80" (mma.sync, every GPU) and "sm90" (wgmma + TMA, sm_90a). */
  cuda_fwd_paths?: string[];
  features: Record<string, { fwd: string[]; kvcache: string[]; bwd: string[] }>;
  dtypes: Record<string, string[]>;
  cpu_simd: string;
}

/**
 * Candidate paths, in order: the packaged build, then the local build dir. FLASH_LIBRARY_PATH replaces the
 * list (an override that silently fell back to another build would hide which library ran).
 */
export function candidatePaths(): string[] {
  const root = join(import.meta.dir, "..");
  const env = process.env.FLASH_LIBRARY_PATH;
  if (env) return [env];
  return [join(root, "lib", "libflash.so"), join(root, "build", "libflash.so")];
}

let loaded: Library | undefined;

/** Opens the library once (lazily) and verifies it; throws FlashAbiError listing every path tried. */
export function library(): Library {
  if (loaded) return loaded;
  const tried: string[] = [];
  for (const path of candidatePaths()) {
    if (!existsSync(path)) {
      tried.push(`${path}: not found`);
      continue;
    }
    let symbols: Symbols;
    try {
      symbols = dlopen(path, SYMBOLS).symbols;
    } catch (e) {
      tried.push(`${path}: ${(e as Error).message}`);
      continue;
    }
    loaded = verify(path, symbols);
    return loaded;
  }
  throw new FlashAbiError(
    `libflash.so could not be loaded (build it with \`bun run build\` or set FLASH_LIBRARY_PATH). Tried:\n  ${tried.join("\n  ")}`,
    Status.ABI,
    "load",
  );
}

function verify(path: string, s: Symbols): Library {
  const abi = s.flash_abi_version();
  if (abi !== ABI_VERSION)
    throw new FlashAbiError(`${path}: ABI version ${abi}, this binding needs ${ABI_VERSION}`, Status.ABI, "load");
  const fwdLayout = readLayout(path, s, 1, "flash_fwd_params", FWD_FIELDS);
  const bwdLayout = readLayout(path, s, 2, "flash_bwd_params", BWD_FIELDS);
  const buildInfo = JSON.parse(s.flash_build_info()!.toString()) as BuildInfo;
  return { path, symbols: s, fwdLayout, bwdLayout, buildInfo };
}

// Compares the library's own field table with the field list generated from the header this binding
// ships with: same names, order, kinds and sizes, and offsets that tile the struct.
function readLayout(
  path: string,
  s: Symbols,
  which: number,
  struct: string,
  expected: readonly (readonly [string, FieldKind])[],
): Layout {
  const countBuf = new Uint32Array(new ArrayBuffer(4));
  const table = s.flash_params_layout(which, countBuf) as Pointer | null;
  const count = countBuf[0]!;
  const size = Number(s.flash_params_sizeof(which));
  const fail = (why: string) => new FlashAbiError(`${path}: ${struct} layout mismatch: ${why}`, Status.ABI, "load");
  if (!table) throw fail("no layout table");
  if (count !== expected.length) throw fail(`library has ${count} fields, binding expects ${expected.length}`);
  const fields = new Map<string, FieldInfo>();
  const ROW = 24; // sizeof(flash_field_info): const char*, 4 x uint32
  for (let i = 0; i < count; i++) {
    const namePtr = read.ptr(table, i * ROW) as Pointer;
    const name = new CString(namePtr).toString();
    const offset = read.u32(table, i * ROW + 8);
    const fsize = read.u32(table, i * ROW + 12);
    const kindCode = read.u32(table, i * ROW + 16);
    const [ename, ekind] = expected[i]!;
    if (name !== ename) throw fail(`field ${i} is "${name}", expected "${ename}"`);
    if (kindCode !== FIELD_KIND_CODE[ekind] || fsize !== FIELD_SIZE[ekind])
      throw fail(`field ${name} has kind ${kindCode}/size ${fsize}, expected ${ekind}`);
    if (offset % fsize !== 0 || offset + fsize > size) throw fail(`field ${name} has offset ${offset}`);
    fields.set(name, { offset, size: fsize, kind: ekind });
  }
  if (fields.get("struct_size")?.offset !== 0) throw fail("struct_size is not the first field");
  return { size, fields };
}

/** Throws the typed error for a failed status, with the library's message. */
export function check(status: number, op: string): void {
  if (status === Status.OK) return;
  const s = library().symbols;
  const message = s.flash_last_error()?.toString() ?? "";
  throw errorFor(status, op, message, status === Status.CUDA ? s.flash_last_cuda_error() : 0);
}
