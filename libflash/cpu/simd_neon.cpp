// NEON kernels for aarch64 (always present there, so no run-time check).
#include "simd.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace flash::cpu {
namespace neon {

#define FT
#define MR 6
using V = float32x4_t;
constexpr int W = 4;

static inline V vzero() { return vdupq_n_f32(0.f); }
static inline V vset1(float x) { return vdupq_n_f32(x); }
static inline V vload(const float* p) { return vld1q_f32(p); }
static inline void vstore(float* p, V v) { vst1q_f32(p, v); }
static inline V vadd(V a, V b) { return vaddq_f32(a, b); }
static inline V vsub(V a, V b) { return vsubq_f32(a, b); }
static inline V vmul(V a, V b) { return vmulq_f32(a, b); }
static inline V vfma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
static inline V vmax(V a, V b) { return vmaxq_f32(a, b); }
static inline float vhsum(V v) { return vaddvq_f32(v); }
static inline float vhmax(V v) { return vmaxvq_f32(v); }
static inline V vexp2(V x) {
    const uint32x4_t live = vcgeq_f32(x, vset1(-126.f));
    x = vminq_f32(vmaxq_f32(x, vset1(-126.f)), vset1(127.f));
    const V xi = vrndnq_f32(x);
    const V f = vsub(x, xi);
    const V p = FLASH_EXP2_POLY(f);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(xi), vdupq_n_s32(127)), 23);
    return vreinterpretq_f32_u32(vandq_u32(live, vreinterpretq_u32_f32(vmul(p, vreinterpretq_f32_s32(e)))));
}

#include "simd_body.inc"

#undef FT
#undef MR
} // namespace neon

const Kernels* kernels_neon() {
    static const Kernels k = neon::make_table("neon");
    return &k;
}

} // namespace flash::cpu

#else
namespace flash::cpu {
const Kernels* kernels_neon() { return nullptr; }
} // namespace flash::cpu
#endif
