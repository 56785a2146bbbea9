// Unit tests of the sm90 primitives (libflash/cuda/primitives: tma, mbarrier, wgmma, warpgroup incl. named_barrier_or, stmatrix) on a Hopper
// GPU, against host loops of the layout contracts written in the headers. Every tile shape the Hopper
// forward uses is covered: Q K^T (SS, K-major, N = block_n) and P V (RS, MN-major B with several 64-wide
// column blocks, N = head dim). Inputs are small multiples of 1/4, so every product and sum is exact in
// fp32 and the comparison is exact. Build and run (scripts/device_run.sh check does, on sm_90a):
//   nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Ilibflash bench/gpu/test_primitives_sm90.cu -o /tmp/t90
// Exit status 0 = all passed.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/primitives/fragment.cuh"
#include "cuda/primitives/griddep.cuh"
#include "cuda/primitives/ldmatrix.cuh"
#include "cuda/primitives/mbarrier.cuh"
#include "cuda/primitives/smem_io.cuh"
#include "cuda/primitives/stmatrix.cuh"
#include "cuda/primitives/tma.cuh"
#include "cuda/primitives/warpgroup.cuh"
#include "cuda/primitives/wgmma.cuh"

#include "test_util.cuh"

using namespace flash::cuda::prim;

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// A [1][rows][1][cols] tensor, boxes of 64 x box_rows, 128-byte swizzle (as libflash/cuda/hopper/tensor_map.cu).
static CUtensorMap make_map(const void* base, bool bf16, int rows, int cols, int box_rows) {
    static EncodeTiled enc = nullptr;
    if (!enc) {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
        enc = reinterpret_cast<EncodeTiled>(f);
    }
    CUtensorMap m;
    const cuuint64_t dims[4] = {cuuint64_t(cols), cuuint64_t(rows), 1, 1};
    const cuuint64_t strides[3] = {cuuint64_t(cols) * 2, cuuint64_t(rows) * cols * 2, cuuint64_t(rows) * cols * 2};
    const cuuint32_t box[4] = {64, cuuint32_t(box_rows), 1, 1};
    const cuuint32_t es[4] = {1, 1, 1, 1};
    const CUresult r = enc(&m, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
                           const_cast<void*>(base), dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                           CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                           CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        std::printf("cuTensorMapEncodeTiled failed: %d\n", int(r));
        std::exit(2);
    }
    return m;
}

struct Maps {
    CUtensorMap q, k, v;
};

// ---- TMA + mbarrier: one box at a (possibly negative / out-of-range) row origin, dumped byte for byte ----
__global__ void k_tma(const __grid_constant__ Maps m, int row0, uint16_t* out, int box_rows, int cols) {
    extern __shared__ unsigned char raw[];
    const uint32_t base = (smem_u32addr(raw) + 1023u) & ~1023u;
    const uint32_t bar = base, tile = base + 1024;
    const int blocks = cols / 64;
    if (threadIdx.x == 0) {
        mbar_init(bar, 1);
        mbar_fence_init();
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        mbar_arrive_expect_tx(bar, uint32_t(box_rows * cols * 2));
        for (int c = 0; c < blocks; ++c) tma_load_4d(tile + c * box_rows * 128, &m.q, bar, c * 64, row0, 0, 0);
    }
    mbar_wait(bar, 0);
    for (int i = threadIdx.x; i < box_rows * cols / 8; i += blockDim.x) {
        const uint4 u = ld_shared_v4(tile + i * 16);
        reinterpret_cast<uint4*>(out)[i] = u;
    }
}

static void test_tma(int row0) {
    const int rows = 100, cols = 128, box_rows = 64;
    std::vector<uint16_t> h(rows * cols);
    for (int i = 0; i < rows * cols; ++i) h[i] = uint16_t(i + 1); // never 0: zero-fill is recognizable
    uint16_t *d, *o;
    CK(cudaMalloc(&d, h.size() * 2));
    CK(cudaMalloc(&o, box_rows * cols * 2));
    CK(cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    Maps m{};
    m.q = make_map(d, true, rows, cols, box_rows);
    CK(cudaFuncSetAttribute(k_tma, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
    k_tma<<<1, 128, 64 * 1024>>>(m, row0, o, box_rows, cols);
    CK(cudaGetLastError());
    std::vector<uint16_t> got(box_rows * cols);
    CK(cudaMemcpy(got.data(), o, got.size() * 2, cudaMemcpyDeviceToHost));
    // Contract (tma.cuh + wgmma.cuh): element (r, c) of the box sits in column block c / 64 at byte
    // r * 128 + (((c % 64) / 8) ^ (r % 8)) * 16 + (c % 8) * 2; rows outside [0, rows) read as 0.
    int bad = 0;
    for (int r = 0; r < box_rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const int gr = row0 + r;
            const uint16_t want = (gr >= 0 && gr < rows) ? h[gr * cols + c] : 0;
            const int byte = (c / 64) * box_rows * 128 + r * 128 + ((((c % 64) / 8) ^ (r % 8)) * 16) + (c % 8) * 2;
            if (got[byte / 2] != want) ++bad;
        }
    char name[64], buf[64];
    std::snprintf(name, sizeof name, "tma_load_4d swizzle128 row0=%d", row0);
    std::snprintf(buf, sizeof buf, "%d wrong elements", bad);
    report(name, bad == 0, buf);
    cudaFree(d);
    cudaFree(o);
}

// ---- stmatrix.x4 into the swizzled box layout, then tma_store_4d (the Hopper forward's O epilogue) ----
// One warpgroup holds a 64 x cols tile in the wgmma accumulator layout (warp w: rows 16w..16w+15; lane (g, q):
// rows g, g + 8, columns 8t + 2q, 8t + 2q + 1), value = the element's 16-bit pattern (row * cols + col + 1).
__global__ void k_stsm_store(const __grid_constant__ Maps m, int row0, int cols) {
    extern __shared__ unsigned char raw[];
    const uint32_t tile = (smem_u32addr(raw) + 1023u) & ~1023u;
    const int lane = threadIdx.x & 31, wl = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
    const int mi = lane >> 3, rr = lane & 7, srow = 16 * wl + rr + 8 * (mi & 1);
    auto val = [&](int r, int c) { return uint32_t(r * cols + c + 1); };
    auto pk = [&](int r, int c) { return val(r, c) | (val(r, c + 1) << 16); };
    for (int kk = 0; kk < cols / 16; ++kk) {
        const int r0 = 16 * wl + g, c0 = 16 * kk + 2 * q;
        const uint32_t v[4] = {pk(r0, c0), pk(r0 + 8, c0), pk(r0, c0 + 8), pk(r0 + 8, c0 + 8)};
        const int col = 16 * kk + 8 * (mi >> 1);
        stmatrix_x4(tile + (col >> 6) * 64 * 128 + srow * 128 + ((((col & 63) >> 3) ^ (srow & 7)) << 4), v);
    }
    fence_proxy_async_smem();
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int c = 0; c < cols / 64; ++c) tma_store_4d(&m.q, tile + c * 64 * 128, c * 64, row0, 0, 0);
        bulk_commit();
        bulk_wait<0>();
    }
}

static void test_stsm_store(int row0) {
    const int rows = 100, cols = 128;
    uint16_t* d;
    CK(cudaMalloc(&d, rows * cols * 2));
    CK(cudaMemset(d, 0, rows * cols * 2)); // 0 = never written (the tile's values are >= 1)
    Maps m{};
    m.q = make_map(d, true, rows, cols, 64);
    CK(cudaFuncSetAttribute(k_stsm_store, cudaFuncAttributeMaxDynamicSharedMemorySize, 32 * 1024));
    k_stsm_store<<<1, 128, 32 * 1024>>>(m, row0, cols);
    CK(cudaGetLastError());
    std::vector<uint16_t> got(rows * cols);
    CK(cudaMemcpy(got.data(), d, got.size() * 2, cudaMemcpyDeviceToHost));
    // Rows row0 .. row0 + 63 inside [0, rows) hold tile row (r - row0); every other row is untouched.
    int bad = 0;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const int tr = r - row0;
            const uint16_t want = (tr >= 0 && tr < 64) ? uint16_t(tr * cols + c + 1) : 0;
            if (got[r * cols + c] != want) ++bad;
        }
    char name[64], buf[64];
    std::snprintf(name, sizeof name, "stmatrix_x4 + tma_store_4d row0=%d", row0);
    std::snprintf(buf, sizeof buf, "%d wrong elements", bad);
    report(name, bad == 0, buf);
    cudaFree(d);
}

// ---- wgmma: S = Q K^T (SS, K-major, D = 128) then O = P V (RS, V MN-major), one warpgroup ----
template <int BN, int DV, bool kBf16, bool kSwapLboSbo>
__global__ void __launch_bounds__(128) k_wgmma(const __grid_constant__ Maps m, const uint16_t* P, float* S, float* O) {
    constexpr int D = 128;
    extern __shared__ unsigned char raw[];
    const uint32_t base = (smem_u32addr(raw) + 1023u) & ~1023u;
    const uint32_t bar = base, sQ = base + 1024, sK = sQ + 64 * D * 2, sV = sK + BN * D * 2;
    if (threadIdx.x == 0) {
        mbar_init(bar, 1);
        mbar_fence_init();
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        mbar_arrive_expect_tx(bar, uint32_t((64 + BN) * D * 2 + BN * DV * 2));
        for (int c = 0; c < D / 64; ++c) {
            tma_load_4d(sQ + c * 64 * 128, &m.q, bar, c * 64, 0, 0, 0);
            tma_load_4d(sK + c * BN * 128, &m.k, bar, c * 64, 0, 0, 0);
        }
        for (int c = 0; c < DV / 64; ++c) tma_load_4d(sV + c * BN * 128, &m.v, bar, c * 64, 0, 0, 0);
    }
    mbar_wait(bar, 0);

    float s[BN / 2];
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        const uint32_t cb = ks / 4, off = (ks % 4) * 32;
        wgmma_ss<BN, kBf16, 0>(s, desc_kmajor_sw128(sQ + cb * 64 * 128 + off), desc_kmajor_sw128(sK + cb * BN * 128 + off),
                               ks > 0 ? 1u : 0u);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_operand(s);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    for (int j = 0; j < BN / 8; ++j)
        for (int e = 0; e < 4; ++e) S[(16 * w + g + 8 * (e >> 1)) * BN + 8 * j + 2 * q + (e & 1)] = s[4 * j + e];

    // P's A fragments straight from the documented layout (mma.sync m16n8k16 A, rows 16w .. 16w + 15).
    uint32_t a[BN / 16][4];
    auto pk = [&](int r, int c) { return uint32_t(P[r * BN + c]) | (uint32_t(P[r * BN + c + 1]) << 16); };
    for (int kk = 0; kk < BN / 16; ++kk) {
        const int r = 16 * w + g, c = 16 * kk + 2 * q;
        a[kk][0] = pk(r, c);
        a[kk][1] = pk(r + 8, c);
        a[kk][2] = pk(r, c + 8);
        a[kk][3] = pk(r + 8, c + 8);
    }
    float o[DV / 2];
    for (int i = 0; i < DV / 2; ++i) o[i] = 0.25f; // accumulate onto a known C
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
        const uint32_t addr = sV + kk * 16 * 128;
        const uint64_t db = kSwapLboSbo ? detail::smem_desc(addr, 1024, BN * 128) : desc_mnmajor_sw128(addr, BN * 128);
        wgmma_rs<DV, kBf16, 1>(o, a[kk], db, 1u);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_operand(o);
    for (int j = 0; j < DV / 8; ++j)
        for (int e = 0; e < 4; ++e) O[(16 * w + g + 8 * (e >> 1)) * DV + 8 * j + 2 * q + (e & 1)] = o[4 * j + e];
}

template <int BN, int DV, bool kBf16, bool kSwap = false>
static void test_wgmma() {
    constexpr int D = 128;
    std::vector<uint16_t> Q(64 * D), K(BN * D), V(BN * DV), P(64 * BN);
    srand(BN * 7 + DV + kBf16);
    auto rnd = [&] { return float_to_bits(float(rand() % 9 - 4) / 4.f, kBf16); };
    for (auto& x : Q) x = rnd();
    for (auto& x : K) x = rnd();
    for (auto& x : V) x = rnd();
    for (auto& x : P) x = rnd();
    uint16_t *dQ, *dK, *dV, *dP;
    float *dS, *dO;
    CK(cudaMalloc(&dQ, Q.size() * 2));
    CK(cudaMalloc(&dK, K.size() * 2));
    CK(cudaMalloc(&dV, V.size() * 2));
    CK(cudaMalloc(&dP, P.size() * 2));
    CK(cudaMalloc(&dS, 64 * BN * 4));
    CK(cudaMalloc(&dO, 64 * DV * 4));
    CK(cudaMemcpy(dQ, Q.data(), Q.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dK, K.data(), K.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dV, V.data(), V.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dP, P.data(), P.size() * 2, cudaMemcpyHostToDevice));
    Maps m{};
    m.q = make_map(dQ, kBf16, 64, D, 64);
    m.k = make_map(dK, kBf16, BN, D, BN);
    m.v = make_map(dV, kBf16, BN, DV, BN);
    const int smem = 2048 + (64 + BN) * D * 2 + BN * DV * 2;
    auto kern = k_wgmma<BN, DV, kBf16, kSwap>;
    CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    kern<<<1, 128, smem>>>(m, dP, dS, dO);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<float> S(64 * BN), O(64 * DV);
    CK(cudaMemcpy(S.data(), dS, S.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(O.data(), dO, O.size() * 4, cudaMemcpyDeviceToHost));
    double es = 0, eo = 0;
    for (int i = 0; i < 64; ++i)
        for (int n = 0; n < BN; ++n) {
            double r = 0;
            for (int k = 0; k < D; ++k) r += double(bits_to_float(Q[i * D + k], kBf16)) * bits_to_float(K[n * D + k], kBf16);
            es = std::fmax(es, std::fabs(r - S[i * BN + n]));
        }
    for (int i = 0; i < 64; ++i)
        for (int d = 0; d < DV; ++d) {
            double r = 0.25;
            for (int n = 0; n < BN; ++n) r += double(bits_to_float(P[i * BN + n], kBf16)) * bits_to_float(V[n * DV + d], kBf16);
            eo = std::fmax(eo, std::fabs(r - O[i * DV + d]));
        }
    char name[96], buf[96];
    std::snprintf(name, sizeof name, "wgmma_ss m64n%dk16 (QK^T, d128) %s", BN, kBf16 ? "bf16" : "f16");
    std::snprintf(buf, sizeof buf, "max err %.3g", es);
    if (!kSwap) report(name, es == 0.0, buf);
    std::snprintf(name, sizeof name, "wgmma_rs m64n%dk16 trans-B (PV, %d keys) %s%s", DV, BN, kBf16 ? "bf16" : "f16",
                  kSwap ? " [diagnostic: LBO/SBO swapped]" : "");
    std::snprintf(buf, sizeof buf, "max err %.3g", eo);
    if (kSwap) std::printf("INFO %s %s\n", name, buf);
    else report(name, eo == 0.0, buf);
    cudaFree(dQ);
    cudaFree(dK);
    cudaFree(dV);
    cudaFree(dP);
    cudaFree(dS);
    cudaFree(dO);
}

// ---- wgmma SS with A transposed (tnspA, the backward's dQ = dS K): A stored MN-major as At[k][m] (128 keys x
// 128 queries, two 64-wide column blocks of m), B = K[k][n] MN-major (128 keys x 128 columns); D = A(mq) * B(nq)
// for the 64 x 64 piece (mq, nq), one warpgroup ----
template <bool kBf16>
__global__ void __launch_bounds__(128) k_wgmma_ta(const __grid_constant__ Maps m, int mq, int nq, float* Out) {
    extern __shared__ unsigned char raw[];
    const uint32_t base = (smem_u32addr(raw) + 1023u) & ~1023u;
    const uint32_t bar = base, sA = base + 1024, sB = sA + 128 * 128 * 2;
    if (threadIdx.x == 0) {
        mbar_init(bar, 1);
        mbar_fence_init();
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        mbar_arrive_expect_tx(bar, uint32_t(2 * 128 * 128 * 2));
        for (int c = 0; c < 2; ++c) {
            tma_load_4d(sA + c * 128 * 128, &m.q, bar, c * 64, 0, 0, 0);
            tma_load_4d(sB + c * 128 * 128, &m.k, bar, c * 64, 0, 0, 0);
        }
    }
    mbar_wait(bar, 0);
    float d[32];
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 8; ++ks)
        wgmma_ss<64, kBf16, 1, 1>(d, desc_mnmajor_sw128(sA + mq * 128 * 128 + ks * 2048, 128 * 128),
                                  desc_mnmajor_sw128(sB + nq * 128 * 128 + ks * 2048, 128 * 128), ks > 0 ? 1u : 0u);
    wgmma_commit();
    wgmma_wait<0>();
    fence_operand(d);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    for (int j = 0; j < 8; ++j)
        for (int e = 0; e < 4; ++e) Out[(16 * w + g + 8 * (e >> 1)) * 64 + 8 * j + 2 * q + (e & 1)] = d[4 * j + e];
}

template <bool kBf16>
static void test_wgmma_trans_a() {
    std::vector<uint16_t> At(128 * 128), B(128 * 128);
    srand(77 + kBf16);
    auto rnd = [&] { return float_to_bits(float(rand() % 9 - 4) / 4.f, kBf16); };
    for (auto& x : At) x = rnd();
    for (auto& x : B) x = rnd();
    uint16_t *dA, *dB;
    float* dO;
    CK(cudaMalloc(&dA, At.size() * 2));
    CK(cudaMalloc(&dB, B.size() * 2));
    CK(cudaMalloc(&dO, 64 * 64 * 4));
    CK(cudaMemcpy(dA, At.data(), At.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, B.data(), B.size() * 2, cudaMemcpyHostToDevice));
    Maps m{};
    m.q = make_map(dA, kBf16, 128, 128, 128);
    m.k = make_map(dB, kBf16, 128, 128, 128);
    const int smem = 2048 + 2 * 128 * 128 * 2;
    CK(cudaFuncSetAttribute(k_wgmma_ta<kBf16>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    for (int mq = 0; mq < 2; ++mq)
        for (int nq = 0; nq < 2; ++nq) {
            k_wgmma_ta<kBf16><<<1, 128, smem>>>(m, mq, nq, dO);
            CK(cudaGetLastError());
            CK(cudaDeviceSynchronize());
            std::vector<float> O(64 * 64);
            CK(cudaMemcpy(O.data(), dO, O.size() * 4, cudaMemcpyDeviceToHost));
            double e = 0;
            for (int i = 0; i < 64; ++i)
                for (int n = 0; n < 64; ++n) {
                    double r = 0;
                    for (int k = 0; k < 128; ++k)
                        r += double(bits_to_float(At[k * 128 + 64 * mq + i], kBf16)) *
                             bits_to_float(B[k * 128 + 64 * nq + n], kBf16);
                    e = std::fmax(e, std::fabs(r - O[i * 64 + n]));
                }
            char name[96], buf[64];
            std::snprintf(name, sizeof name, "wgmma_ss m64n64k16 trans-A trans-B (dQ = dS K) mq=%d nq=%d %s", mq, nq,
                          kBf16 ? "bf16" : "f16");
            std::snprintf(buf, sizeof buf, "max err %.3g", e);
            report(name, e == 0.0, buf);
        }
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dO);
}

// ---- bulk reduce-add (cp.reduce.async.bulk .add.f32): each of 4 warps adds its 16 rows of 64 floats (from a
// padded shared buffer, row stride 272 B) into a global [64][64] array, twice (the second after wait_read) ----
__global__ void k_bulk_reduce(float* g) {
    extern __shared__ unsigned char raw[];
    const uint32_t base = (smem_u32addr(raw) + 127u) & ~127u;
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int rep = 0; rep < 2; ++rep) {
        if (lane < 16 && rep > 0) bulk_wait_read<0>();
        __syncwarp();
        for (int i = lane; i < 16 * 64; i += 32) {
            const int r = 16 * w + i / 64, c = i % 64;
            st_shared_b32(base + r * 272 + c * 4, __float_as_uint(float(r * 64 + c) * (rep + 1)));
        }
        fence_proxy_async_smem();
        __syncwarp();
        if (lane < 16) {
            const int r = 16 * w + lane;
            bulk_reduce_add_f32(g + r * 64, base + r * 272, 256);
            bulk_commit();
        }
    }
    if (lane < 16) bulk_wait<0>();
}

static void test_bulk_reduce() {
    std::vector<float> h(64 * 64);
    for (int i = 0; i < 64 * 64; ++i) h[i] = 0.5f;
    float* d;
    CK(cudaMalloc(&d, h.size() * 4));
    CK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    k_bulk_reduce<<<1, 128, 64 * 272 + 128>>>(d);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), d, h.size() * 4, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < 64 * 64; ++i)
        if (h[i] != 0.5f + 3.f * float(i)) ++bad;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%d wrong elements", bad);
    report("bulk_reduce_add_f32 (16 rows x 256 B per warp, twice)", bad == 0, buf);
    cudaFree(d);
}

// ---- programmatic dependent launch (griddep.cuh): the primary lets the dependent start at once, then spends
// ~50 us before writing its output; the dependent waits (griddep_wait) and copies it. Without the wait the
// copy would read the poison, so a pass shows the wait ordered the two grids. A second dependent that does
// not wait shows the launch really overlapped (it must see at least one poisoned value). ----
__global__ void k_pdl_primary(int* data, int n) {
    griddep_launch_dependents();
    const long long t0 = clock64();
    while (clock64() - t0 < 100000) {
    }
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) data[i] = i * 3 + 1;
}
__global__ void k_pdl_dependent(const int* data, int* out, int n, int wait) {
    if (wait) griddep_wait();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = *reinterpret_cast<const volatile int*>(data + i);
}

static void test_griddep() {
    const int n = 1 << 16;
    int *data, *out;
    CK(cudaMalloc(&data, n * 4));
    CK(cudaMalloc(&out, n * 4));
    std::vector<int> h(n);
    for (int wait = 1; wait >= 0; --wait) {
        CK(cudaMemset(data, 0xff, n * 4)); // poison: -1
        CK(cudaMemset(out, 0, n * 4));
        k_pdl_primary<<<8, 256>>>(data, n);
        cudaLaunchConfig_t cfg{};
        cfg.gridDim = dim3(8);
        cfg.blockDim = dim3(256);
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        CK(cudaLaunchKernelEx(&cfg, k_pdl_dependent, static_cast<const int*>(data), out, n, wait));
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(h.data(), out, n * 4, cudaMemcpyDeviceToHost));
        int stale = 0;
        for (int i = 0; i < n; ++i) stale += h[i] != i * 3 + 1;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%d of %d values not yet written", stale, n);
        if (wait) report("griddep_wait orders a programmatic dependent after its primary", stale == 0, buf);
        else report("griddep_launch_dependents lets the dependent start early (no wait: stale reads)", stale > 0, buf);
    }
    cudaFree(data);
    cudaFree(out);
}

// ---- named_barrier_or (warpgroup.cuh): 3 groups of 128 threads, each voting on its own barrier id; the vote of a
// group is true iff one of its threads passed true (thread `who` of group 1, nobody in group 0, every thread of group
// 2). Every thread writes what it got back, so a vote that leaked across groups or missed a warp shows. ----
__global__ void k_bar_or(int who, int* out) {
    const int grp = threadIdx.x / 128, t = threadIdx.x % 128;
    const bool pred = grp == 2 || (grp == 1 && t == who);
    out[threadIdx.x] = named_barrier_or(6 + grp, 128, pred) ? 1 : 0;
}

static void test_bar_or() {
    int* out;
    CK(cudaMalloc(&out, 384 * 4));
    for (int who : {0, 37, 127}) {
        CK(cudaMemset(out, 0xff, 384 * 4));
        k_bar_or<<<1, 384>>>(who, out);
        CK(cudaDeviceSynchronize());
        std::vector<int> h(384);
        CK(cudaMemcpy(h.data(), out, 384 * 4, cudaMemcpyDeviceToHost));
        int bad = 0;
        for (int i = 0; i < 384; ++i) bad += h[i] != (i >= 128 ? 1 : 0);
        char buf[64];
        std::snprintf(buf, sizeof buf, "true voter %d of group 1: %d threads got a wrong vote", who, bad);
        report("named_barrier_or votes within its group", bad == 0, buf);
    }
    cudaFree(out);
}

int main() {
    int dev = 0;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    if (prop.major != 9) {
        std::printf("SKIP sm90 primitives: %s is sm_%d%d\n", prop.name, prop.major, prop.minor);
        return 0;
    }
    test_tma(0);
    test_tma(60);  // rows past the end read as zeros
    test_tma(-10); // negative rows (the last key block's origin) read as zeros
    test_stsm_store(0);
    test_stsm_store(20);
    test_stsm_store(60); // rows past the tensor's end are not written
    test_wgmma<128, 128, true>();
    test_wgmma<128, 128, false>();
    test_wgmma<80, 256, true>();
    test_wgmma<112, 192, true>();
    test_wgmma<128, 64, false>();
    test_bulk_reduce();
    test_wgmma_trans_a<true>();
    test_wgmma_trans_a<false>();
    test_griddep();
    test_bar_or();
    test_wgmma<80, 256, true, true>(); // diagnostic only: which descriptor field strides the column blocks
    std::printf("%s: %d failed\n", g_fail ? "FAILED" : "ALL PASSED", g_fail);
    return g_fail ? 1 : 0;
}
