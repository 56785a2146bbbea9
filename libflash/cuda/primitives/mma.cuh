// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 : D = A * B + D, accumulated in place.
//
// Layout contract (lane = threadIdx.x % 32, g = lane / 4, q = lane % 4; 16-bit pairs packed little-end
// first into one uint32, i.e. the lower column / lower k index in the low half):
//   A (16 x 16, row-major, M x K):  a[0] = A[g    ][2q .. 2q+1]     a[1] = A[g + 8][2q .. 2q+1]
//                                   a[2] = A[g    ][2q+8 .. 2q+9]   a[3] = A[g + 8][2q+8 .. 2q+9]
//   B (16 x 8, "col", K x N):       b[0] = B[2q .. 2q+1][g]         b[1] = B[2q+8 .. 2q+9][g]
//       (= rows g of an N x K row-major matrix such as K[key][dim], which is why QK^T needs no transpose)
//   C/D (16 x 8, fp32):             d[0..1] = D[g][2q .. 2q+1]      d[2..3] = D[g + 8][2q .. 2q+1]
// Note that the C layout of two adjacent n8 tiles (columns 0-7 and 8-15) equals the A layout of one
// k16 slice after packing to 16 bits: see fragment.cuh (P is reused from registers this way).
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if FLASH_SM80_OR_NEWER
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

FLASH_DEVICE void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if FLASH_SM80_OR_NEWER
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    FLASH_ARCH_UNSUPPORTED();
#endif
}

// Dispatch on the element type (kBf16 = true for __nv_bfloat16).
template <bool kBf16>
FLASH_DEVICE void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    if constexpr (kBf16) mma_m16n8k16_bf16(d, a, b);
    else mma_m16n8k16_f16(d, a, b);
}

} // namespace flash::cuda::prim
