// AVX2 + FMA kernels, compiled with a target attribute so the rest of the library keeps the baseline ISA.
#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace flash::cpu {
namespace avx2 {

#define FT __attribute__((target("avx2,fma")))
#define MR 6
using V = __m256;
constexpr int W = 8;

FT static inline V vzero() { return _mm256_setzero_ps(); }
FT static inline V vset1(float x) { return _mm256_set1_ps(x); }
FT static inline V vload(const float* p) { return _mm256_loadu_ps(p); }
FT static inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
FT static inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
FT static inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
FT static inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
FT static inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
FT static inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
FT static inline float vhsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
FT static inline float vhmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
FT static inline V vexp2(V x) {
    const V dead = _mm256_cmp_ps(x, vset1(-126.f), _CMP_LT_OQ); // also catches -inf
    x = _mm256_min_ps(_mm256_max_ps(x, vset1(-126.f)), vset1(127.f));
    const V xi = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const V f = vsub(x, xi);
    const V p = FLASH_EXP2_POLY(f);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(xi), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(dead, vmul(p, _mm256_castsi256_ps(e)));
}

#include "simd_body.inc"

#undef FT
#undef MR
} // namespace avx2

const Kernels* kernels_avx2() {
    static const Kernels k = avx2::make_table("avx2");
    return &k;
}

} // namespace flash::cpu

#else
namespace flash::cpu {
const Kernels* kernels_avx2() { return nullptr; }
} // namespace flash::cpu
#endif
