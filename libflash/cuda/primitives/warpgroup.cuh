// Warpgroup-level control (sm90): register reallocation between warpgroups and named barriers.
//
// - setmaxnreg_inc<N>() / setmaxnreg_dec<N>() (sm_90a): every thread of the calling warpgroup moves to N
//   registers (N a multiple of 8 in [24, 256]). Takes effect only when the kernel has a register cap at
//   entry (__launch_bounds__(threads, 1)); the compiler warns (C7508) when it cannot honour it. The total
//   over warpgroups must stay within the CTA's allocation at launch.
// - named_barrier_sync(id, threads) / named_barrier_arrive(id, threads): bar.sync / bar.arrive on hardware
//   barrier `id` (1..15; 0 is __syncthreads) among `threads` threads (a multiple of 32). arrive does not
//   wait, so a producer of an event can signal a waiter without blocking.
// - named_barrier_or(id, threads, pred): bar.red.or.pred -- waits like named_barrier_sync and returns, in every
//   one of the `threads` threads, whether `pred` held in any of them (a vote wider than a warp: a warpgroup's
//   wgmma must be issued by all of its warps or none).
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

template <int N>
FLASH_DEVICE void setmaxnreg_inc() {
#if FLASH_SM90A
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#else
    FLASH_ARCH_TRAP();
#endif
}

template <int N>
FLASH_DEVICE void setmaxnreg_dec() {
#if FLASH_SM90A
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#else
    FLASH_ARCH_TRAP();
#endif
}

FLASH_DEVICE void named_barrier_sync(int id, int threads) {
#if FLASH_SM80_OR_NEWER
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void named_barrier_arrive(int id, int threads) {
#if FLASH_SM80_OR_NEWER
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE bool named_barrier_or(int id, int threads, bool pred) {
#if FLASH_SM80_OR_NEWER
    uint32_t any;
    asm volatile("{\n"
                 " .reg .pred p, q;\n"
                 " setp.ne.u32 p, %1, 0;\n"
                 " bar.red.or.pred q, %2, %3, p;\n"
                 " selp.u32 %0, 1, 0, q;\n"
                 "}\n"
                 : "=r"(any)
                 : "r"(uint32_t(pred)), "r"(id), "r"(threads)
                 : "memory");
    return any != 0;
#else
    FLASH_ARCH_UNSUPPORTED();
    return pred;
#endif
}

} // namespace flash::cuda::prim
