// stmatrix.sync.aligned.m8n8.x4.shared.b16 (sm90+): warp-wide store of four 8x8 16-bit matrices.
//
// Layout contract (the mirror of ldmatrix_x4, non-transposed): lane 8i + r gives the shared-memory address
// (16-byte aligned) of row r of matrix i; register i of lane l (g = l / 4, q = l % 4) holds { M_i[g][2q],
// M_i[g][2q+1] }, the low half first. That is the mma / wgmma accumulator layout after packing two adjacent
// fp32 columns to 16 bits, so a 16 x 16 accumulator block leaves registers in four instructions fewer than
// thirty-two 32-bit stores would take. `smem_addr` is a shared-state-space address.
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE void stmatrix_x4(uint32_t smem_addr, const uint32_t (&r)[4]) {
#if FLASH_SM90_OR_NEWER
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_addr), "r"(r[0]),
                 "r"(r[1]), "r"(r[2]), "r"(r[3])
                 : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

} // namespace flash::cuda::prim
