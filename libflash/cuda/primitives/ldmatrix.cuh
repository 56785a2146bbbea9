// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16 : warp-wide load of 8x8 16-bit matrices.
//
// Layout contract. Matrix i (i < 1, 2 or 4) is addressed by lanes 8i .. 8i+7: lane 8i + r gives the
// shared-memory address (16-byte aligned) of row r of matrix i (8 contiguous 16-bit elements). For x1 /
// x2 only lanes 0-7 / 0-15 supply addresses (the other lanes' addresses are ignored but must be valid
// expressions). Result register i of lane l (g = l / 4, q = l % 4) holds, for matrix i:
//   non-trans:  { M[g][2q], M[g][2q+1] }   (row g, two adjacent columns)
//   .trans:     { M[2q][g], M[2q+1][g] }   (column g, two adjacent rows): the transposed fragment
// So a non-trans load of a row-major A tile yields mma A fragments, of K[key][dim] yields B fragments for
// Q K^T, and a .trans load of V[key][dim] yields B fragments for P V (see mma.cuh).
// `smem_addr` is a shared-state-space address (from smem_u32addr()).
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE uint32_t smem_u32addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

FLASH_DEVICE void ldmatrix_x1(uint32_t (&r)[1], uint32_t smem_addr) {
#if FLASH_SM80_OR_NEWER
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void ldmatrix_x2(uint32_t (&r)[2], uint32_t smem_addr) {
#if FLASH_SM80_OR_NEWER
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem_addr));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_addr) {
#if FLASH_SM80_OR_NEWER
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void ldmatrix_x1_trans(uint32_t (&r)[1], uint32_t smem_addr) {
#if FLASH_SM80_OR_NEWER
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void ldmatrix_x2_trans(uint32_t (&r)[2], uint32_t smem_addr) {
#if FLASH_SM80_OR_NEWER
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem_addr));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem_addr) {
#if FLASH_SM80_OR_NEWER
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

} // namespace flash::cuda::prim
