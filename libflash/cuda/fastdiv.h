// Division of non-negative 31-bit integers by a divisor fixed at launch: the host computes a multiplier and a
// shift once (round-up method: m = floor(2^32 (2^s - d) / d) + 1, s = ceil(log2 d)), the device divides with
// one IMAD.HI, an add and a shift instead of the ~25 dependent instructions (I2F, MUFU.RCP, F2I, fix-ups) of a
// run-time `/`. Exact for every 0 <= n < 2^31 and 1 <= d < 2^31: t = umulhi(n, m) <= n, so t + n fits 32 bits.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define FLASH_HD __host__ __device__ __forceinline__
#else
#define FLASH_HD inline
#endif

namespace flash::cuda {

struct FastDiv {
    uint32_t d = 1, mul = 0, shift = 0;

    FastDiv() = default;
    explicit FastDiv(uint32_t divisor) : d(divisor) {
        while ((uint64_t(1) << shift) < d) ++shift;
        mul = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
    }

    FLASH_HD uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
        const uint32_t t = __umulhi(n, mul);
#else
        const uint32_t t = uint32_t((uint64_t(n) * mul) >> 32);
#endif
        return (t + n) >> shift;
    }
};

} // namespace flash::cuda

#undef FLASH_HD
