// Arch guard shared by every primitive. Each PTX wrapper compiles its asm only where
// FLASH_SM80_OR_NEWER holds (device passes for sm_80 and newer). The host pass sees an empty body (the
// functions are never called from host code), and a device pass for an older arch traps, so a wrong
// -arch can never silently compute garbage.
#pragma once

#include <cstdint>

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 800)
#define FLASH_SM80_OR_NEWER 1
#else
#define FLASH_SM80_OR_NEWER 0
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 800)
#define FLASH_ARCH_UNSUPPORTED() __trap()
#else
#define FLASH_ARCH_UNSUPPORTED() ((void)0)
#endif

#define FLASH_DEVICE __device__ __forceinline__
