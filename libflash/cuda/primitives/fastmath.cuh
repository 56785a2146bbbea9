// Fast transcendental functions.
//
// exp2_approx(x): ex2.approx.ftz.f32, 2^x with max relative error ~2^-22 for finite x; exp2_approx(-inf)
// is +0 and flushes denormal results to 0 (what softmax wants: exp2(s - max) with s = -inf is exactly 0).
// log2_approx(x): lg2.approx.ftz.f32, log2(x) with max absolute error ~2^-22 for x in [0.5, 2] and relative error
// ~2^-22 elsewhere; log2(+0) = -inf, log2(+inf) = +inf, log2(x < 0) = NaN.
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

FLASH_DEVICE float exp2_approx(float x) {
    float y;
#if defined(__CUDA_ARCH__)
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
#else
    y = 0.f;
#endif
    return y;
}

FLASH_DEVICE float log2_approx(float x) {
    float y;
#if defined(__CUDA_ARCH__)
    asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
#else
    y = 0.f;
#endif
    return y;
}

} // namespace flash::cuda::prim
