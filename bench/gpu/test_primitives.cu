// Unit tests of libflash/cuda/primitives/*.cuh on the GPU: each PTX wrapper against a host loop that
// implements the layout contract written in the header. Build and run (scripts/device_run.sh check does):
//   nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Ilibflash bench/gpu/test_primitives.cu -o /tmp/tp && /tmp/tp
// Exit status 0 = all passed.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/fastdiv.h"
#include "cuda/primitives/cp_async.cuh"
#include "cuda/primitives/fastmath.cuh"
#include "cuda/primitives/fragment.cuh"
#include "cuda/primitives/ldmatrix.cuh"
#include "cuda/primitives/mma.cuh"
#include "cuda/primitives/swizzle.cuh"

#include "test_util.cuh"

using namespace flash::cuda::prim;

// ---- mma: A[16][16], B[16][8] (K x N), D[16][8], fragments built from the documented layout ----
template <bool kBf16>
__global__ void k_mma(const uint16_t* A, const uint16_t* B, float* D) {
    const int lane = threadIdx.x, g = lane >> 2, q = lane & 3;
    auto pk = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); };
    uint32_t a[4] = {pk(A[g * 16 + 2 * q], A[g * 16 + 2 * q + 1]), pk(A[(g + 8) * 16 + 2 * q], A[(g + 8) * 16 + 2 * q + 1]),
                     pk(A[g * 16 + 2 * q + 8], A[g * 16 + 2 * q + 9]),
                     pk(A[(g + 8) * 16 + 2 * q + 8], A[(g + 8) * 16 + 2 * q + 9])};
    uint32_t b[2] = {pk(B[(2 * q) * 8 + g], B[(2 * q + 1) * 8 + g]), pk(B[(2 * q + 8) * 8 + g], B[(2 * q + 9) * 8 + g])};
    float d[4] = {0.5f, 0.5f, 0.5f, 0.5f}; // accumulate onto a known C
    mma_m16n8k16<kBf16>(d, a, b);
    D[g * 8 + 2 * q] = d[0];
    D[g * 8 + 2 * q + 1] = d[1];
    D[(g + 8) * 8 + 2 * q] = d[2];
    D[(g + 8) * 8 + 2 * q + 1] = d[3];
}

template <bool kBf16>
static void test_mma() {
    std::vector<uint16_t> A(256), B(128);
    std::vector<float> D(128), ref(128);
    srand(kBf16 ? 7 : 8);
    for (auto& x : A) x = float_to_bits((rand() % 2001 - 1000) / 500.f, kBf16);
    for (auto& x : B) x = float_to_bits((rand() % 2001 - 1000) / 500.f, kBf16);
    for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
            double s = 0.5;
            for (int k = 0; k < 16; ++k) s += double(bits_to_float(A[m * 16 + k], kBf16)) * bits_to_float(B[k * 8 + n], kBf16);
            ref[m * 8 + n] = float(s);
        }
    uint16_t *dA, *dB;
    float* dD;
    CK(cudaMalloc(&dA, 512));
    CK(cudaMalloc(&dB, 256));
    CK(cudaMalloc(&dD, 512));
    CK(cudaMemcpy(dA, A.data(), 512, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, B.data(), 256, cudaMemcpyHostToDevice));
    k_mma<kBf16><<<1, 32>>>(dA, dB, dD);
    CK(cudaGetLastError());
    CK(cudaMemcpy(D.data(), dD, 512, cudaMemcpyDeviceToHost));
    double err = 0;
    for (int i = 0; i < 128; ++i) err = std::fmax(err, std::fabs(D[i] - ref[i]));
    char buf[64];
    std::snprintf(buf, sizeof buf, "max err %.3g", err);
    report(kBf16 ? "mma_m16n8k16 bf16" : "mma_m16n8k16 f16", err < 1e-3, buf);
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dD);
}

// ---- ldmatrix: four 8x8 matrices stored row-major as M[i][r][c] = i*64 + r*8 + c (as 16-bit ints) ----
template <int kN, bool kTrans>
__global__ void k_ldm(uint32_t* out) {
    __shared__ __align__(16) uint16_t s[4 * 64];
    for (int i = threadIdx.x; i < 256; i += 32) s[i] = uint16_t(i);
    __syncwarp();
    const int lane = threadIdx.x;
    const int mat = (lane >> 3) % kN, row = lane & 7;
    const uint32_t addr = smem_u32addr(&s[mat * 64 + row * 8]);
    uint32_t r[kN];
    if constexpr (kN == 1) {
        if constexpr (kTrans) ldmatrix_x1_trans(reinterpret_cast<uint32_t(&)[1]>(r), addr);
        else ldmatrix_x1(reinterpret_cast<uint32_t(&)[1]>(r), addr);
    } else if constexpr (kN == 2) {
        if constexpr (kTrans) ldmatrix_x2_trans(reinterpret_cast<uint32_t(&)[2]>(r), addr);
        else ldmatrix_x2(reinterpret_cast<uint32_t(&)[2]>(r), addr);
    } else {
        if constexpr (kTrans) ldmatrix_x4_trans(reinterpret_cast<uint32_t(&)[4]>(r), addr);
        else ldmatrix_x4(reinterpret_cast<uint32_t(&)[4]>(r), addr);
    }
    for (int i = 0; i < kN; ++i) out[lane * kN + i] = r[i];
}

template <int kN, bool kTrans>
static void test_ldm() {
    uint32_t* d;
    CK(cudaMalloc(&d, 32 * kN * 4));
    k_ldm<kN, kTrans><<<1, 32>>>(d);
    CK(cudaGetLastError());
    std::vector<uint32_t> h(32 * kN);
    CK(cudaMemcpy(h.data(), d, h.size() * 4, cudaMemcpyDeviceToHost));
    bool ok = true;
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, q = lane & 3;
        for (int i = 0; i < kN; ++i) {
            // contract: non-trans {M[g][2q], M[g][2q+1]}, trans {M[2q][g], M[2q+1][g]}
            const uint32_t lo = kTrans ? i * 64 + (2 * q) * 8 + g : i * 64 + g * 8 + 2 * q;
            const uint32_t hi = kTrans ? i * 64 + (2 * q + 1) * 8 + g : i * 64 + g * 8 + 2 * q + 1;
            if (h[lane * kN + i] != (lo | (hi << 16))) ok = false;
        }
    }
    char name[64];
    std::snprintf(name, sizeof name, "ldmatrix_x%d%s", kN, kTrans ? "_trans" : "");
    report(name, ok);
    cudaFree(d);
}

// ---- cp.async: 16-byte copies with src_bytes 16 / 8 / 0 (zero fill), two commit groups ----
__global__ void k_cpasync(const uint4* src, uint4* out) {
    __shared__ uint4 s[64];
    const int t = threadIdx.x;
    s[t] = make_uint4(0xdeadbeef, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef);
    s[32 + t] = s[t];
    __syncthreads();
    const uint32_t bytes = t % 3 == 0 ? 16u : t % 3 == 1 ? 8u : 0u;
    cp_async_16(smem_u32addr(&s[t]), src + t, bytes);
    cp_async_commit();
    cp_async_16(smem_u32addr(&s[32 + t]), src + 32 + t, 16u);
    cp_async_commit();
    cp_async_wait<1>(); // the first group is complete
    __syncthreads();
    out[t] = s[t];
    cp_async_wait<0>();
    __syncthreads();
    out[32 + t] = s[32 + t];
}

static void test_cpasync() {
    std::vector<uint4> h(64), o(64);
    for (int i = 0; i < 64; ++i) h[i] = make_uint4(i * 4 + 1, i * 4 + 2, i * 4 + 3, i * 4 + 4);
    uint4 *d, *dout;
    CK(cudaMalloc(&d, 64 * 16));
    CK(cudaMalloc(&dout, 64 * 16));
    CK(cudaMemcpy(d, h.data(), 64 * 16, cudaMemcpyHostToDevice));
    k_cpasync<<<1, 32>>>(d, dout);
    CK(cudaGetLastError());
    CK(cudaMemcpy(o.data(), dout, 64 * 16, cudaMemcpyDeviceToHost));
    bool ok = true;
    for (int t = 0; t < 32; ++t) {
        const uint4 w = t % 3 == 0 ? h[t] : t % 3 == 1 ? make_uint4(h[t].x, h[t].y, 0, 0) : make_uint4(0, 0, 0, 0);
        ok &= o[t].x == w.x && o[t].y == w.y && o[t].z == w.z && o[t].w == w.w;
        ok &= o[32 + t].x == h[32 + t].x && o[32 + t].w == h[32 + t].w;
    }
    report("cp_async_16 (16/8/0 bytes, wait_group)", ok);
    cudaFree(d);
    cudaFree(dout);
}

// ---- swizzle (host): rows stay permutations, 8 aligned rows of one chunk hit 8 distinct bank groups ----
template <int C>
static void test_swizzle() {
    using L = SwizzledRows<C>;
    bool ok = true;
    for (int row = 0; row < 64; ++row) {
        std::vector<int> seen(L::kPitch, 0);
        for (int c = 0; c < C; ++c) {
            const int p = L::chunk(row, c) - row * L::kPitch;
            if (p < 0 || p >= L::kPitch || seen[p]++) ok = false;
        }
    }
    for (int r0 = 0; r0 < 64; r0 += 8)
        for (int c = 0; c < C; ++c) {
            int mask = 0;
            for (int r = r0; r < r0 + 8; ++r) mask |= 1 << (L::chunk(r, c) % 8);
            if (mask != 0xff) ok = false;
        }
    char name[64];
    std::snprintf(name, sizeof name, "SwizzledRows<%d> (pitch %d)", C, L::kPitch);
    report(name, ok);
}

// ---- exp2_approx / log2_approx: one thread per input through a device function ----
__global__ void k_exp2(const float* x, float* y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = exp2_approx(x[i]);
}
__global__ void k_log2(const float* x, float* y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = log2_approx(x[i]);
}

static std::vector<float> run_elementwise(void (*kernel)(const float*, float*, int), const std::vector<float>& x) {
    const int n = int(x.size());
    std::vector<float> y(n);
    float *dx, *dy;
    CK(cudaMalloc(&dx, n * 4));
    CK(cudaMalloc(&dy, n * 4));
    CK(cudaMemcpy(dx, x.data(), n * 4, cudaMemcpyHostToDevice));
    kernel<<<(n + 255) / 256, 256>>>(dx, dy, n);
    CK(cudaGetLastError());
    CK(cudaMemcpy(y.data(), dy, n * 4, cudaMemcpyDeviceToHost));
    cudaFree(dx);
    cudaFree(dy);
    return y;
}

static void test_exp2() {
    const int n = 4096;
    std::vector<float> x(n);
    for (int i = 0; i < n; ++i) x[i] = -120.f + 130.f * i / (n - 3);
    x[n - 2] = -INFINITY;
    x[n - 1] = 0.f;
    const std::vector<float> y = run_elementwise(k_exp2, x);
    double rel = 0;
    for (int i = 0; i < n - 2; ++i) {
        const double r = std::exp2(double(x[i]));
        if (r > 1e-37) rel = std::fmax(rel, std::fabs(y[i] - r) / r);
    }
    const bool ok = rel < 1e-5 && y[n - 2] == 0.f && y[n - 1] == 1.f;
    char buf[128];
    std::snprintf(buf, sizeof buf, "max rel err %.3g, exp2(-inf)=%g, exp2(0)=%g", rel, y[n - 2], y[n - 1]);
    report("exp2_approx", ok, buf);
}

// log2: relative error over 2^-126..2^127, absolute near 1; the special values softmax relies on
static void test_log2() {
    const int n = 4096;
    std::vector<float> x(n);
    for (int i = 0; i < n - 3; ++i) x[i] = std::exp2(-126.f + 253.f * i / (n - 4));
    x[n - 3] = 0.f;
    x[n - 2] = INFINITY;
    x[n - 1] = 1.f;
    const std::vector<float> y = run_elementwise(k_log2, x);
    double err = 0; // |error| / max(1, |log2 x|): absolute near x = 1, relative elsewhere
    for (int i = 0; i < n - 3; ++i) {
        const double r = std::log2(double(x[i]));
        err = std::fmax(err, std::fabs(y[i] - r) / std::fmax(1.0, std::fabs(r)));
    }
    const bool ok = err < 1e-6 && y[n - 3] == -INFINITY && y[n - 2] == INFINITY && y[n - 1] == 0.f;
    char buf[128];
    std::snprintf(buf, sizeof buf, "max err %.3g, log2(0)=%g, log2(inf)=%g, log2(1)=%g", err, y[n - 3], y[n - 2],
                  y[n - 1]);
    report("log2_approx", ok, buf);
}

// ---- FastDiv: the device quotient against the host's `/`, divisors and dividends at the edges and random ----
__global__ void k_fastdiv(const flash::cuda::FastDiv* dv, const uint32_t* n, uint32_t* q, int nn) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < nn) q[i] = dv[blockIdx.y].div(n[i]);
}

static void test_fastdiv() {
    std::vector<uint32_t> ds = {1, 2, 3, 5, 7, 8, 31, 32, 33, 100, 127, 128, 129, 641, 1000, 4095, 65537, 1u << 20,
                                (1u << 30) + 1, 0x7fffffffu};
    uint32_t x = 12345;
    auto rnd = [&]() { return x = x * 1664525u + 1013904223u; };
    while (ds.size() < 64) ds.push_back(1 + (rnd() >> 1) % (1u << (rnd() % 31 + 1)));
    std::vector<uint32_t> n = {0, 1, 2, 3, 0x7ffffffeu, 0x7fffffffu};
    for (uint32_t d : ds) for (int k = -1; k <= 1; ++k) n.push_back(uint32_t(int64_t(d) * 3 + k) & 0x7fffffffu);
    while (n.size() < 4096) n.push_back(rnd() >> 1);
    std::vector<flash::cuda::FastDiv> dv;
    for (uint32_t d : ds) dv.emplace_back(d);
    flash::cuda::FastDiv* ddv;
    uint32_t *dn, *dq;
    CK(cudaMalloc(&ddv, dv.size() * sizeof(dv[0])));
    CK(cudaMalloc(&dn, n.size() * 4));
    CK(cudaMalloc(&dq, n.size() * ds.size() * 4));
    CK(cudaMemcpy(ddv, dv.data(), dv.size() * sizeof(dv[0]), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dn, n.data(), n.size() * 4, cudaMemcpyHostToDevice));
    int bad = 0;
    for (size_t j = 0; j < ds.size(); ++j) {
        k_fastdiv<<<dim3(unsigned((n.size() + 255) / 256), 1), 256>>>(ddv + j, dn, dq + j * n.size(), int(n.size()));
    }
    CK(cudaGetLastError());
    std::vector<uint32_t> q(n.size() * ds.size());
    CK(cudaMemcpy(q.data(), dq, q.size() * 4, cudaMemcpyDeviceToHost));
    for (size_t j = 0; j < ds.size(); ++j)
        for (size_t i = 0; i < n.size(); ++i)
            if (q[j * n.size() + i] != n[i] / ds[j] || dv[j].div(n[i]) != n[i] / ds[j]) ++bad;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%zu divisors x %zu dividends, %d wrong", ds.size(), n.size(), bad);
    report("FastDiv", bad == 0, buf);
    cudaFree(ddv);
    cudaFree(dn);
    cudaFree(dq);
}

int main() {
    test_mma<false>();
    test_mma<true>();
    test_ldm<1, false>();
    test_ldm<2, false>();
    test_ldm<4, false>();
    test_ldm<1, true>();
    test_ldm<2, true>();
    test_ldm<4, true>();
    test_cpasync();
    test_swizzle<2>();
    test_swizzle<4>();
    test_swizzle<8>();
    test_swizzle<12>();
    test_swizzle<16>();
    test_swizzle<24>();
    test_swizzle<32>();
    test_exp2();
    test_log2();
    test_fastdiv();
    std::printf("%s: %d failure(s)\n", g_fail ? "FAIL" : "PASS", g_fail);
    return g_fail ? 1 : 0;
}
