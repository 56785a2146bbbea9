// Fragment helpers for mma.m16n8k16 (layouts in mma.cuh).
//
// - lane_g()/lane_q(): g = lane / 4 (the row, or B column, a lane owns), q = lane % 4 (its column pair).
// - pack2<kBf16>(x, y): two fp32 -> one uint32 of two 16-bit values, x in the low half (round to nearest).
// - C-to-A reuse: for a 16 x 16 slice made of accumulator tiles c_lo (cols 0-7) and c_hi (cols 8-15),
//   the A fragment is { pack2(c_lo[0], c_lo[1]), pack2(c_lo[2], c_lo[3]), pack2(c_hi[0], c_hi[1]),
//   pack2(c_hi[2], c_hi[3]) } (acc_to_a): row g / g+8 and column pair 2q / 2q+8 line up exactly.
// - quad_max / quad_sum: reduce over the 4 lanes of a quad (the lanes that share row g), result in all 4.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE int lane_id() { return threadIdx.x & 31; }
FLASH_DEVICE int lane_g() { return (threadIdx.x & 31) >> 2; }
FLASH_DEVICE int lane_q() { return threadIdx.x & 3; }

template <bool kBf16>
FLASH_DEVICE uint32_t pack2(float x, float y) {
    if constexpr (kBf16) {
        __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
        return *reinterpret_cast<uint32_t*>(&v);
    } else {
        __half2 v = __floats2half2_rn(x, y);
        return *reinterpret_cast<uint32_t*>(&v);
    }
}

template <bool kBf16>
FLASH_DEVICE void acc_to_a(uint32_t (&a)[4], const float (&c_lo)[4], const float (&c_hi)[4]) {
    a[0] = pack2<kBf16>(c_lo[0], c_lo[1]);
    a[1] = pack2<kBf16>(c_lo[2], c_lo[3]);
    a[2] = pack2<kBf16>(c_hi[0], c_hi[1]);
    a[3] = pack2<kBf16>(c_hi[2], c_hi[3]);
}

FLASH_DEVICE float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
    return x;
}

FLASH_DEVICE float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x;
}

// Element type <-> float for scalar paths.
template <bool kBf16>
FLASH_DEVICE float to_float(uint16_t bits) {
    if constexpr (kBf16) return __bfloat162float(__ushort_as_bfloat16(bits));
    else return __half2float(__ushort_as_half(bits));
}
template <bool kBf16>
FLASH_DEVICE uint16_t from_float(float x) {
    if constexpr (kBf16) return __bfloat16_as_ushort(__float2bfloat16_rn(x));
    else return __half_as_ushort(__float2half_rn(x));
}

} // namespace flash::cuda::prim
