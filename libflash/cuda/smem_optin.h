// Opting a kernel in to more than 48 KB of dynamic shared memory, once per (kernel, device): the attribute
// call sits on every launch's path otherwise. `configured` is the kernel's own static bit set (device ids
// < 64; larger ids call the runtime every time).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "api/error.h"

namespace flash::cuda {

template <class Kernel>
int32_t ensure_smem_optin(Kernel kernel, int bytes, std::atomic<uint64_t>& configured, const char* what) {
    if (bytes <= 48 * 1024) return FLASH_OK;
    int dev = 0;
    if (const cudaError_t e = cudaGetDevice(&dev); e != cudaSuccess)
        return set_cuda_error(e, cudaGetErrorString(e), what);
    const uint64_t bit = dev < 64 ? (uint64_t(1) << dev) : 0;
    if (bit && (configured.load(std::memory_order_relaxed) & bit)) return FLASH_OK;
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), what);
    configured.fetch_or(bit, std::memory_order_relaxed);
    return FLASH_OK;
}

} // namespace flash::cuda
