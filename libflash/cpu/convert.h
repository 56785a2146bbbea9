// Exact scalar conversions between fp16 / bf16 storage and fp32 (round-to-nearest-even, NaN kept NaN),
// written out bit by bit so every build (gcc, clang, zig, any -march) gives the same bits.
#pragma once

#include <cstdint>
#include <cstring>

#include "../api/problem.h"

namespace flash::cpu {

inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float bits_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return bits_f32(sign | 0x7F800000u | (m << 13));
    if (e == 0) {
        // Subnormal halves are m * 2^-24, exactly representable as a float.
        const float f = float(m) * bits_f32(0x33800000u);
        return bits_f32(sign | f32_bits(f));
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

inline uint16_t float_to_half(float f) {
    uint32_t x = f32_bits(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    x &= 0x7FFFFFFFu;
    if (x >= 0x7F800000u) return uint16_t(sign | (x > 0x7F800000u ? 0x7E00u : 0x7C00u));
    if (x >= 0x477FF000u) return uint16_t(sign | 0x7C00u); // >= 65520 rounds (ties-to-even) to inf
    if (x >= 0x38800000u) {                                  // normal half: rebias exponent, round at bit 13
        x += 0xC8000FFFu + ((x >> 13) & 1u);
        return uint16_t(sign | (x >> 13));
    }
    // Subnormal: adding 0.5 leaves a float whose ulp is 2^-24, so the FPU does the RNE for us
    // (a carry into 1024 is exactly the smallest normal half's encoding).
    const float r = bits_f32(x) + 0.5f;
    return uint16_t(sign | (f32_bits(r) - 0x3F000000u));
}

inline float bf16_to_float(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

inline uint16_t float_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x0040u); // quiet the NaN
    return uint16_t((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// Storage tags: the kernels are templated on one of these.
struct F16 {
    using T = uint16_t;
    static float load(T v) { return half_to_float(v); }
    static T store(float f) { return float_to_half(f); }
};
struct BF16 {
    using T = uint16_t;
    static float load(T v) { return bf16_to_float(v); }
    static T store(float f) { return float_to_bf16(f); }
};
struct F32 {
    using T = float;
    static float load(T v) { return v; }
    static T store(float f) { return f; }
};

// Calls fn.template operator()<Tag>() for the problem's dtype.
template <class Fn>
auto dispatch_dtype(DType t, Fn&& fn) {
    switch (t) {
    case DType::F16: return fn(F16{});
    case DType::BF16: return fn(BF16{});
    default: return fn(F32{});
    }
}

} // namespace flash::cpu
