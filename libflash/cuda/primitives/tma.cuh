// TMA: cp.async.bulk.tensor tile loads (sm90+), completing on an mbarrier, and tile stores; bulk fp32 reduce-add
// into global.
//
// Contract: `map` is a CUtensorMap built on the host (libflash/cuda/hopper/tensor_map.h) and passed to the
// kernel as (part of) a __grid_constant__ parameter, so its address is a parameter-space address the copy
// engine can read. tma_load_4d() copies the box at element coordinates (c0 innermost, c1, c2, c3) into
// shared memory at `dst` (aligned to 1024 bytes for 128-byte swizzle, the swizzle being a function of the
// address bits 4-9), with the map's swizzle applied; elements outside the tensor's extents are written as
// zeros and still count toward the transaction bytes. It completes `bar`'s transaction count by the box's
// full byte size. Issue from one thread.
#pragma once

#include <cuda.h>

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE void tma_prefetch_map(const CUtensorMap* map) {
#if FLASH_SM90_OR_NEWER
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

FLASH_DEVICE void tma_load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1, int c2, int c3) {
#if FLASH_SM90_OR_NEWER
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, "
        "%6}], [%2];\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
        : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

// The reverse copy: the box at element coordinates (c0 innermost, c1, c2, c3) written from shared memory at
// `src` (laid out as tma_load_4d would have written it, same alignment) to global memory; elements outside the
// tensor's extents are not written. Completes through this thread's bulk groups (bulk_commit(), then
// bulk_wait_read<N>() before `src` is rewritten, bulk_wait<N>() before the writes must be visible). `src` was
// written by ordinary stores: fence_proxy_async_smem() in each writer and a barrier first. Issue from one thread.
FLASH_DEVICE void tma_store_4d(const CUtensorMap* map, uint32_t src, int c0, int c1, int c2, int c3) {
#if FLASH_SM90_OR_NEWER
    asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(
                     reinterpret_cast<uint64_t>(map)),
                 "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

// Bulk reduce (sm90): cp.reduce.async.bulk ... .add.f32, `bytes` (a multiple of 16) of fp32 from shared memory
// at `src` (16-byte aligned) added element-wise into global memory at `dst` (16-byte aligned) by the copy
// engine; relaxed atomic adds at gpu scope per element (not ordered among themselves). Issued by one thread per
// copy; bulk_commit() closes this thread's group of copies; bulk_wait_read<N>() waits until at most N of the
// thread's groups still read their shared source (the buffer may then be rewritten), bulk_wait<N>() until they
// have completed. The source is written by ordinary stores: fence_proxy_async_smem() in each writer, then a
// barrier, before the copy is issued.
FLASH_DEVICE void bulk_reduce_add_f32(float* dst, uint32_t src, uint32_t bytes) {
#if FLASH_SM90_OR_NEWER
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(dst), "r"(src),
                 "r"(bytes)
                 : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

FLASH_DEVICE void bulk_commit() {
#if FLASH_SM90_OR_NEWER
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

template <int N>
FLASH_DEVICE void bulk_wait_read() {
#if FLASH_SM90_OR_NEWER
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

template <int N>
FLASH_DEVICE void bulk_wait() {
#if FLASH_SM90_OR_NEWER
    asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

// Shared memory written by ordinary stores and read next by the async proxy (wgmma operands, TMA stores)
// needs this fence in each writing thread before the barrier that publishes it.
FLASH_DEVICE void fence_proxy_async_smem() {
#if FLASH_SM90_OR_NEWER
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

} // namespace flash::cuda::prim
