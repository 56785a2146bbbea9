// Plain shared-memory stores and loads by 32-bit shared-state-space address (from smem_u32addr()), for
// tiles addressed by byte offsets (the swizzled TMA / wgmma layouts) rather than through C++ pointers.
// Contract: st/ld_shared_b32 need a 4-byte aligned address, st_shared_v2_f32 an 8-byte, ld_shared_v4 a 16-byte one. Ordinary
// (generic-proxy) accesses: a tile they write that the async proxy reads next needs fence_proxy_async_smem().
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE void st_shared_b32(uint32_t addr, uint32_t v) {
#if defined(__CUDA_ARCH__)
    asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
#endif
}

// 8 bytes (x at addr, y at addr + 4); addr 8-byte aligned.
FLASH_DEVICE void st_shared_v2_f32(uint32_t addr, float x, float y) {
#if defined(__CUDA_ARCH__)
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(x), "f"(y) : "memory");
#endif
}

FLASH_DEVICE uint32_t ld_shared_b32(uint32_t addr) {
    uint32_t v = 0;
#if defined(__CUDA_ARCH__)
    asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(addr) : "memory");
#endif
    return v;
}

FLASH_DEVICE uint4 ld_shared_v4(uint32_t addr) {
    uint4 u = {0u, 0u, 0u, 0u};
#if defined(__CUDA_ARCH__)
    asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "r"(addr)
                 : "memory");
#endif
    return u;
}

} // namespace flash::cuda::prim
