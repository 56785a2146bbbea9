// The vectorized inner loops of the CPU backend, one table per instruction set, chosen once at run time.
// Buffers handed to these are fp32 with their vectorized dimension padded to a multiple of kPad.
#pragma once

#include <cstdint>

namespace flash::cpu {

constexpr int kPad = 16; // floats; a multiple of every ISA's vector width

struct Kernels {
    const char* name;
    // C[M x N] (+)= A[M x K] * B[K x N]. A(r, k) = A[r*a_rs + k*a_ks] (so A may be a transposed view);
    // B and C are row-major with N % kPad == 0. accumulate = 0 overwrites C.
    void (*gemm)(int M, int N, int K, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t ldb,
                 float* C, int64_t ldc, int accumulate);
    // max of x[0..n), n % kPad == 0.
    float (*row_max)(const float* x, int n);
    // x[i] = exp2(x[i] - sub) (exp2(-inf) = 0), returns the sum; n % kPad == 0.
    float (*exp2_sum)(float* x, int n, float sub);
    // x[i] *= s; n % kPad == 0.
    void (*scale)(float* x, int n, float s);
    // ds[i] = p[i] * (dp[i] - d); n % kPad == 0.
    void (*dsoftmax)(float* ds, const float* p, const float* dp, int n, float d);
};

// The table for this machine: FLASH_CPU_SIMD=scalar|avx2|avx512|neon forces one (if the machine has it).
const Kernels& kernels();

// Per-ISA tables (null where the build or the machine lacks the ISA).
const Kernels* kernels_avx512();
const Kernels* kernels_avx2();
const Kernels* kernels_neon();
const Kernels* kernels_scalar();

} // namespace flash::cpu

// Shared by the per-ISA vexp2 implementations (needs vfma/vset1 of the including ISA).
// 2^x on x <= ~127: round-to-nearest split x = i + f, f in [-1/2, 1/2], degree-7 Taylor of 2^f (error below
// 1e-8 relative), scaled by building 2^i in the exponent field. Inputs below -126 give exactly 0.
#define FLASH_EXP2_POLY(f)                                                                                  \
    vfma(vfma(vfma(vfma(vfma(vfma(vfma(vset1(1.525273380405984e-05f), f, vset1(1.5403530393381606e-04f)), f, \
                                  vset1(1.3333558146428443e-03f)),                                           \
                             f, vset1(9.618129107628477e-03f)),                                              \
                        f, vset1(5.550410866482158e-02f)),                                                   \
                   f, vset1(2.402265069591007e-01f)),                                                        \
              f, vset1(6.931471805599453e-01f)),                                                             \
         f, vset1(1.0f))
