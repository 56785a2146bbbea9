// cp.async.cg.shared.global 16-byte copies with commit / wait groups (sm80+).
//
// Contract: `smem_addr` (shared state space, 16-byte aligned) receives 16 bytes from `gmem` (16-byte
// aligned global address). With src_bytes < 16 only the first src_bytes are read and the rest of the 16
// bytes are zero-filled; src_bytes == 0 reads nothing (gmem is then never dereferenced) and writes 16 zero
// bytes. Copies are asynchronous: they belong to the group closed by the next cp_async_commit(), and
// cp_async_wait<N>() blocks the calling thread until at most N of its most recently committed groups are
// still pending. Completion is per thread: other threads see the data only after a barrier that follows
// their own wait (__syncthreads()).
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE void cp_async_16(uint32_t smem_addr, const void* gmem, uint32_t src_bytes) {
#if FLASH_SM80_OR_NEWER
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(gmem), "r"(src_bytes)
                 : "memory");
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void cp_async_commit() {
#if FLASH_SM80_OR_NEWER
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

template <int N>
FLASH_DEVICE void cp_async_wait() {
#if FLASH_SM80_OR_NEWER
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

} // namespace flash::cuda::prim
