// mbarrier: the shared-memory transaction barriers that TMA copies complete on (sm90+).
//
// Contract: an mbarrier is one 8-byte word in shared memory (8-byte aligned), initialized once by one
// thread with its expected arrival count, then made visible to the async proxy with mbar_fence_init() and
// a CTA barrier before any use. A phase completes when `count` arrivals have happened AND the transaction
// bytes announced with mbar_arrive_expect_tx() have been delivered by complete_tx (TMA). Phases alternate
// parity 0, 1, 0, ...; mbar_wait(bar, parity) returns once the phase with that parity has completed. On a
// fresh barrier, waiting for parity 1 returns at once (the "previous" phase counts as complete), which is
// how a producer's first pass over an empty ring goes through without a consumer release.
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE void mbar_init(uint32_t bar, uint32_t count) {
#if FLASH_SM90_OR_NEWER
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

// Orders the preceding mbar_init()s before their use by the async proxy (TMA complete_tx).
FLASH_DEVICE void mbar_fence_init() {
#if FLASH_SM90_OR_NEWER
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

FLASH_DEVICE void mbar_arrive(uint32_t bar) {
#if FLASH_SM90_OR_NEWER
    asm volatile("{\n .reg .b64 st;\n mbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

// One arrival that also announces `bytes` of transactions the phase must wait for.
FLASH_DEVICE void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if FLASH_SM90_OR_NEWER
    asm volatile("{\n .reg .b64 st;\n mbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1;\n}\n" ::"r"(bar),
                 "r"(bytes)
                 : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

FLASH_DEVICE bool mbar_try_wait(uint32_t bar, uint32_t parity) {
#if FLASH_SM90_OR_NEWER
    uint32_t ok;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(ok)
        : "r"(bar), "r"(parity)
        : "memory");
    return ok != 0;
#else
    FLASH_ARCH_TRAP();
    return true;
#endif
}

// Blocks until the phase of the given parity has completed (try_wait suspends in hardware for a while
// before returning false, so the loop does not spin hot).
FLASH_DEVICE void mbar_wait(uint32_t bar, uint32_t parity) {
    while (!mbar_try_wait(bar, parity)) {
    }
}

} // namespace flash::cuda::prim
