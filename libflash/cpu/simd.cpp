// Run-time ISA choice plus the portable fallback (a 4-lane struct the compiler maps to SSE2 / plain code).
#include "simd.h"

#include "cpu_backend.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace flash::cpu {
namespace scalar {

#define FT
#define MR 4
struct V {
    float x[4];
};
constexpr int W = 4;

static inline V vzero() { return V{{0.f, 0.f, 0.f, 0.f}}; }
static inline V vset1(float a) { return V{{a, a, a, a}}; }
static inline V vload(const float* p) { return V{{p[0], p[1], p[2], p[3]}}; }
static inline void vstore(float* p, V v) { std::memcpy(p, v.x, sizeof v.x); }
#define FLASH_LANES(expr)                                                                                    \
    V r;                                                                                                     \
    for (int i = 0; i < 4; ++i) r.x[i] = (expr);                                                             \
    return r
static inline V vadd(V a, V b) { FLASH_LANES(a.x[i] + b.x[i]); }
static inline V vsub(V a, V b) { FLASH_LANES(a.x[i] - b.x[i]); }
static inline V vmul(V a, V b) { FLASH_LANES(a.x[i] * b.x[i]); }
static inline V vfma(V a, V b, V c) { FLASH_LANES(a.x[i] * b.x[i] + c.x[i]); }
static inline V vmax(V a, V b) { FLASH_LANES(a.x[i] > b.x[i] ? a.x[i] : b.x[i]); }
static inline V vexp2(V a) { FLASH_LANES(std::exp2(a.x[i])); }
#undef FLASH_LANES
static inline float vhsum(V v) { return (v.x[0] + v.x[2]) + (v.x[1] + v.x[3]); }
static inline float vhmax(V v) { return std::fmax(std::fmax(v.x[0], v.x[2]), std::fmax(v.x[1], v.x[3])); }

#include "simd_body.inc"

#undef FT
#undef MR
} // namespace scalar

const Kernels* kernels_scalar() {
    static const Kernels k = scalar::make_table("scalar");
    return &k;
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
// CPUID says what the core has; XGETBV says whether the OS saves the wide registers.
bool os_saves(uint64_t mask) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; // OSXSAVE
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t(hi) << 32 | lo) & mask) == mask;
}
bool has_avx2() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 12))) return false; // FMA
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 5))) return false;
    return os_saves(0x6);
}
bool has_avx512() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 16))) return false; // AVX512F
    return has_avx2() && os_saves(0xE6);
}
#else
bool has_avx2() { return false; }
bool has_avx512() { return false; }
#endif

const Kernels* choose() {
    const Kernels* best = kernels_scalar();
    const Kernels* neon = kernels_neon();
    const Kernels* avx2 = has_avx2() ? kernels_avx2() : nullptr;
    const Kernels* avx512 = has_avx512() ? kernels_avx512() : nullptr;
    if (neon) best = neon;
    if (avx2) best = avx2;
    if (avx512) best = avx512;
    if (const char* want = std::getenv("FLASH_CPU_SIMD")) {
        for (const Kernels* k : {kernels_scalar(), neon, avx2, avx512})
            if (k && std::strcmp(k->name, want) == 0) best = k;
    }
    return best;
}

} // namespace

const Kernels& kernels() {
    static const Kernels* k = choose();
    return *k;
}

const char* simd_name() { return kernels().name; }

} // namespace flash::cpu
