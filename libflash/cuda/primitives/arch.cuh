// Arch guards shared by every primitive. Each PTX wrapper compiles its asm only where its guard holds; the
// host pass sees an empty body (the functions are never called from host code), and a device pass for an
// arch without the instruction traps, so a wrong -arch can never silently compute garbage.
//   FLASH_SM80_OR_NEWER: mma.sync, ldmatrix, cp.async (sm80+).
//   FLASH_SM90_OR_NEWER: mbarrier expect-tx / try_wait.parity, cp.async.bulk.tensor (TMA), named barriers
//                        with the async proxy fence (sm90+).
//   FLASH_SM90A:         wgmma.mma_async and setmaxnreg, which exist only on the arch-specific target
//                        sm_90a (`-gencode=arch=compute_90a,code=sm_90a`), not on sm_90 or later archs.
#pragma once

#include <cstdint>

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 800)
#define FLASH_SM80_OR_NEWER 1
#else
#define FLASH_SM80_OR_NEWER 0
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
#define FLASH_SM90_OR_NEWER 1
#else
#define FLASH_SM90_OR_NEWER 0
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FLASH_SM90A 1
#else
#define FLASH_SM90A 0
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 800)
#define FLASH_ARCH_UNSUPPORTED() __trap()
#else
#define FLASH_ARCH_UNSUPPORTED() ((void)0)
#endif

// For sm90 / sm90a wrappers: a device pass that lacks the instruction traps (such a kernel must never be
// launched there; the host dispatcher checks the device and the compiled archs first).
#if defined(__CUDA_ARCH__)
#define FLASH_ARCH_TRAP() __trap()
#else
#define FLASH_ARCH_TRAP() ((void)0)
#endif

#define FLASH_DEVICE __device__ __forceinline__

namespace flash::cuda::prim {

// x, as a value the compiler cannot see through (an empty asm; no instruction is emitted): a computation fed
// by it is not merged with the same computation fed by x itself, so its result is recomputed where needed
// instead of being kept live (or spilled) across a long loop.
FLASH_DEVICE int opaque(int x) {
    asm volatile("" : "+r"(x));
    return x;
}

} // namespace flash::cuda::prim
