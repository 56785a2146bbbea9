// AVX-512F kernels, compiled with a target attribute so the rest of the library keeps the baseline ISA.
#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
// GCC 12's AVX-512 intrinsics self-initialize their "undefined" operands, which trips these warnings.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace flash::cpu {
namespace avx512 {

#define FT __attribute__((target("avx512f,avx2,fma")))
#define MR 8
using V = __m512;
constexpr int W = 16;

FT static inline V vzero() { return _mm512_setzero_ps(); }
FT static inline V vset1(float x) { return _mm512_set1_ps(x); }
FT static inline V vload(const float* p) { return _mm512_loadu_ps(p); }
FT static inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
FT static inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
FT static inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
FT static inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
FT static inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
FT static inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
FT static inline float vhsum(V v) { return _mm512_reduce_add_ps(v); }
FT static inline float vhmax(V v) { return _mm512_reduce_max_ps(v); }
FT static inline V vexp2(V x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, vset1(-126.f), _CMP_GE_OQ); // -inf and NaN are dead
    x = _mm512_min_ps(_mm512_max_ps(x, vset1(-126.f)), vset1(127.f));
    const V xi = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const V f = vsub(x, xi);
    const V p = FLASH_EXP2_POLY(f);
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(xi), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps(live, vmul(p, _mm512_castsi512_ps(e)));
}

#include "simd_body.inc"

#undef FT
#undef MR
} // namespace avx512

const Kernels* kernels_avx512() {
    static const Kernels k = avx512::make_table("avx512");
    return &k;
}

} // namespace flash::cpu

#else
namespace flash::cpu {
const Kernels* kernels_avx512() { return nullptr; }
} // namespace flash::cpu
#endif
