// libflash for Bun: FlashAttention through a C ABI, with zero-copy CUDA device pointers.
export { flashAttn, flashAttnVarlen } from "./attention.ts";
export type { AttnOptions, AttnResult, VarlenOptions } from "./attention.ts";
export { flashAttnBackward, flashAttnVarlenBackward } from "./backward.ts";
export type { BackwardOptions, BackwardResult } from "./backward.ts";
export { flashAttnWithKVCache } from "./kvcache.ts";
export type { KVCacheOptions } from "./kvcache.ts";
export { PagedKVCache } from "./paged.ts";
export type { PagedKVCacheOptions, PagedAttendOptions } from "./paged.ts";
export { Tensor, contiguousStrides } from "./tensor.ts";
export type { Device } from "./tensor.ts";
export type { DType, AttnDType } from "./dtype.ts";
export type { DevicePtr } from "./params.ts";
export {
  deviceCount, hasCuda, deviceProperties, setDevice, getDevice, deviceSynchronize, deviceMalloc, deviceFree,
  memcpy, memset, MemcpyKind, Stream, Event, synchronize, synchronizeSync,
} from "./device.ts";
export type { DeviceProperties } from "./device.ts";
export { releaseWorkspaces } from "./workspace.ts";
export {
  FlashError, FlashInvalidArgumentError, FlashUnsupportedError, FlashNotImplementedError, FlashCudaError,
  FlashOutOfMemoryError, FlashAbiError, FlashDisposedError, Status,
} from "./errors.ts";
export { library, candidatePaths, ABI_VERSION, type BuildInfo } from "./library.ts";

import { library } from "./library.ts";
/** The loaded library's build description (backends, CUDA archs, head dims, features). */
export function buildInfo() {
  return library().buildInfo;
}

/**
 * The kernel path the last libflash call on this thread took ("cuda.sm90.fwd", "cuda.sm80.fwd", "cpu", ...;
 * "" after a failure). For tests and benchmarks that must know which path ran; the names are informative.
 */
export function lastKernel(): string {
  return library().symbols.flash_last_kernel()?.toString() ?? "";
}
