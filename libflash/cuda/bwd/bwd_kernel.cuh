// FlashAttention-2 backward on mma.sync (sm80+), issue 6. Tile shapes: bwd_config.h.
//
// bwd_kernel (one CTA = block_n keys of one (sequence, KV head)): K and V stay in shared memory; the CTA walks
// every query head of its KV head's group and every query block that can see one of its keys (Q, dO, LSE, D
// through a cp.async ring of qstages slots). Per step:
//   S = Q K^T, dP = dO V^T                     (fp32 registers, SdP warp layout; V, dO, dV are kDV wide: MLA's
//                                              192 / 128 runs with V at 128 columns, bwd_dim_v)
//   P = exp2(t - LSE*log2e) with t the score in log2 units (softcap / ALiBi / mask as the forward),
//   dS = P * (dP*keep/(1-p) - D) (* (1 - tanh^2) with softcap), Pd = P*keep/(1-p)  -> sP, sdS (16 bit)
//   dV += Pd^T dO, dK += dS^T Q                (fp32 registers for the CTA's life, KV warp layout)
//   dQ_accum += dS K                           (fp32 atomics into the workspace; skipped in deterministic mode)
// dK is scaled by the softmax scale once at the end; dK/dV leave through shared memory in coalesced stores.
// GQA/MQA: dK/dV are summed over the group inside the CTA (no temporary, no atomics).
//
// bwd_dq_kernel (deterministic mode): one CTA per (query block, head) recomputes S, dP, dS for the key blocks
// in a fixed (ascending) order and accumulates dQ in registers: bitwise repeatable, no atomics.
//
// Compile-time switches as the forward: kMasked (causal / local window), kFull (softcap, ALiBi, dropout).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../fwd_kernel.cuh" // detail::load_tile, ceil_div
#include "../philox.cuh"
#include "../primitives/cp_async.cuh"
#include "../primitives/fastmath.cuh"
#include "../primitives/fragment.cuh"
#include "../primitives/ldmatrix.cuh"
#include "../primitives/mma.cuh"
#include "../primitives/swizzle.cuh"
#include "bwd_config.h"
#include "bwd_params.h"

namespace flash::cuda {

template <int kD_, bool kSmall_ = false, int kDV_ = kD_>
struct BwdCfg {
    static constexpr BwdTile kTile = bwd_tile(kD_, kSmall_);
    static constexpr int kD = kD_;
    static constexpr int kDV = kDV_; // V / dO / dV columns: kD, or 128 for MLA's 192 / 128 (bwd_dim_v)
    static constexpr int kBM = kTile.block_m;
    static constexpr int kBN = kTile.block_n;
    static constexpr int kWarps = kTile.warps;
    static constexpr int kThreads = 32 * kWarps;
    static constexpr int kQStages = kTile.qstages;
    static constexpr int kChunks = kD / 8;
    using Lay = prim::SwizzledRows<kD / 8>;   // Q, K, dQ, dK (rows x head dim)
    using LayV = prim::SwizzledRows<kDV / 8>; // V, dO, dV (rows x V head dim)
    using LayP = prim::SwizzledRows<kBN / 8>; // P, dS [block_m][block_n]
    static constexpr int kQBytes = Lay::bytes(kBM);
    static constexpr int kDoBytes = LayV::bytes(kBM);
    static constexpr int kKBytes = Lay::bytes(kBN);
    static constexpr int kVBytes = LayV::bytes(kBN);
    static constexpr int kPBytes = LayP::bytes(kBM);
    // main kernel
    static constexpr int kOffK = 0;
    static constexpr int kOffV = kKBytes;
    static constexpr int kOffQ = kKBytes + kVBytes;
    static constexpr int kOffDO = kOffQ + kQStages * kQBytes;
    static constexpr int kOffP = kOffDO + kQStages * kDoBytes;
    static constexpr int kOffDS = kOffP + kPBytes;
    static constexpr int kOffLse = kOffDS + kPBytes;
    static constexpr int kOffD = kOffLse + kQStages * kBM * 4;
    static constexpr int kSmem = kOffD + kQStages * kBM * 4;
    // deterministic dQ kernel
    static constexpr int kDqOffQ = 0;
    static constexpr int kDqOffDO = kQBytes;
    static constexpr int kDqOffK = kQBytes + kDoBytes;
    static constexpr int kDqOffV = kDqOffK + kKBytes;
    static constexpr int kDqOffDS = kDqOffV + kVBytes;
    static constexpr int kDqOffLse = kDqOffDS + kPBytes;
    static constexpr int kDqOffD = kDqOffLse + kBM * 4;
    static constexpr int kDqSmem = kDqOffD + kBM * 4;
    // warp layouts (dK and dV share the KV layout: dV's warps own kKvNTV of its narrower columns)
    static constexpr int kSdpWM = kTile.sdp_wm, kSdpWN = kTile.sdp_wn;
    static constexpr int kSdpMT = kBM / (16 * kSdpWM), kSdpNT = kBN / (8 * kSdpWN);
    static constexpr int kKvWM = kTile.kv_wm, kKvWN = kTile.kv_wn;
    static constexpr int kKvMT = kBN / (16 * kKvWM), kKvNT = kD / (8 * kKvWN), kKvNTV = kDV / (8 * kKvWN);
    static constexpr int kQWM = kTile.q_wm, kQWN = kTile.q_wn;
    static constexpr int kQMT = kBM / (16 * kQWM), kQNT = kD / (8 * kQWN);

    static_assert(kTile.d == kD_, "head dim missing from kBwdTiles");
    static_assert(kDV_ == kD_ || kDV_ == bwd_dim_v(kD_, kDV_), "a narrow-V instantiation bwd_dim_v does not name");
    static_assert(kSmem == bwd_smem_bytes(kTile, kDV_) && kDqSmem == bwd_dq_smem_bytes(kTile, kDV_), "smem formula");
    static_assert(kQStages == 1 || kQStages == 2, "qstages");
    static_assert(kSdpWM * kSdpWN == kWarps && kKvWM * kKvWN == kWarps && kQWM * kQWN == kWarps, "warp layout");
    static_assert(kSdpMT * 16 * kSdpWM == kBM && kSdpNT * 8 * kSdpWN == kBN && kSdpNT % 2 == 0, "SdP layout");
    static_assert(kKvMT * 16 * kKvWM == kBN && kKvNT * 8 * kKvWN == kD && kKvNT % 2 == 0, "KV layout");
    static_assert(kKvNTV * 8 * kKvWN == kDV && kKvNTV % 2 == 0, "KV layout of dV");
    static_assert(kQMT * 16 * kQWM == kBM && kQNT * 8 * kQWN == kD && kQNT % 2 == 0, "dQ layout");
    static_assert(kD % 16 == 0 && kDV % 16 == 0 && kBM % 16 == 0 && kBN % 16 == 0, "tile shape");
};

namespace bwd_detail {

// Per-sequence geometry: api/seqinfo.h, line for line (the backward has no KV cache).
struct Geom {
    int64_t q_row0, k_row0;
    int sq, sk;
};

__device__ __forceinline__ Geom geom(const BwdParams& p, int bi) {
    Geom s;
    s.q_row0 = 0;
    s.sq = p.seqlen_q;
    if (p.cu_seqlens_q) {
        s.q_row0 = p.cu_seqlens_q[bi];
        s.sq = p.cu_seqlens_q[bi + 1] - p.cu_seqlens_q[bi];
    }
    if (p.seqused_q) s.sq = p.seqused_q[bi];
    const int leftpad = p.leftpad_k ? p.leftpad_k[bi] : 0;
    s.k_row0 = 0;
    int kend;
    if (p.cu_seqlens_k) {
        s.k_row0 = p.cu_seqlens_k[bi];
        kend = p.cu_seqlens_k[bi + 1] - p.cu_seqlens_k[bi];
    } else {
        kend = p.seqlen_k;
    }
    if (p.seqused_k) kend = p.seqused_k[bi];
    s.k_row0 += leftpad;
    s.sk = kend - leftpad;
    return s;
}

// Per-lane ldmatrix addressing of a swizzled tile (primitives/swizzle.cuh) for the pattern every operand below
// follows: row = row_run + row_lane + row_c and chunk = c_run + 2 j + lb, where row_run and row_c are multiples
// of 8 (so the swizzle key depends on row_lane only) and row_c, j are compile-time. Since the XOR touches only
// the bits below 2P, chunk(j + P) = chunk(j) + 2P: P registers hold everything and each ldmatrix address is one
// register plus an immediate.
template <class Lay>
struct LaneAddr {
    static constexpr int P = Lay::kChunks % 8 == 0 ? 4 : (Lay::kXor && Lay::kChunks == 4) ? 2 : 1;
    uint32_t a[P];
    __device__ __forceinline__ LaneAddr(uint32_t tile, int row_run, int row_lane, int c_run, int lb) {
        const uint32_t base = tile + uint32_t((row_run + row_lane) * Lay::kPitch * 16);
        const int s = Lay::swz(row_lane);
#pragma unroll
        for (int j = 0; j < P; ++j) a[j] = base + uint32_t(((c_run + 2 * j + lb) ^ s) * 16);
    }
    __device__ __forceinline__ uint32_t at(int row_c, int j) const {
        return a[j % P] + uint32_t(row_c * Lay::kPitch * 16 + (j / P) * 2 * P * 16);
    }
};

// acc[MT][NT][4] += A[m0 .. m0 + 16 MT, 0 .. 16 KSteps) * B[0 .. 16 KSteps, n0 .. n0 + 8 NT) for one warp.
// A is stored [m][k] (kATrans = false) or [k][m] (true) in layout LayA; B is stored [n][k] (kBTrans = false,
// like K for Q K^T) or [k][n] (true, like V for P V) in layout LayB. m0, n0: multiples of 16. Layout
// contracts: ldmatrix.cuh, mma.cuh.
template <bool kBf16, int MT, int NT, int KSteps, bool kATrans, bool kBTrans, class LayA, class LayB>
__device__ __forceinline__ void warp_gemm(float (&acc)[MT][NT][4], uint32_t sA, int m0, uint32_t sB, int n0) {
    using namespace prim;
    const int lane = threadIdx.x & 31;
    // A non-trans: row m0 + 16 mt + (lane & 15), chunk 2 ks + (lane >> 4)
    // A trans:     row 16 ks + (lane & 7) + 8 (lane >> 4), chunk m0/8 + 2 mt + ((lane >> 3) & 1)
    const LaneAddr<LayA> aa = kATrans ? LaneAddr<LayA>(sA, 0, (lane & 7) + 8 * (lane >> 4), m0 / 8, (lane >> 3) & 1)
                                      : LaneAddr<LayA>(sA, m0, lane & 15, 0, lane >> 4);
    // B non-trans: row n0 + 16 np + (lane & 7) + 8 (lane >> 4), chunk 2 ks + ((lane >> 3) & 1)
    // B trans:     row 16 ks + (lane & 7) + 8 ((lane >> 3) & 1), chunk n0/8 + 2 np + (lane >> 4)
    const LaneAddr<LayB> ba = kBTrans ? LaneAddr<LayB>(sB, 0, (lane & 7) + 8 * ((lane >> 3) & 1), n0 / 8, lane >> 4)
                                      : LaneAddr<LayB>(sB, n0, (lane & 7) + 8 * (lane >> 4), 0, (lane >> 3) & 1);
#pragma unroll
    for (int ks = 0; ks < KSteps; ++ks) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            if constexpr (!kATrans) ldmatrix_x4(a[mt], aa.at(mt * 16, ks));
            else ldmatrix_x4_trans(a[mt], aa.at(ks * 16, mt));
        }
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
            uint32_t b[4];
            if constexpr (!kBTrans) ldmatrix_x4(b, ba.at(np * 16, ks));
            else ldmatrix_x4_trans(b, ba.at(ks * 16, np));
            const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                mma_m16n8k16<kBf16>(acc[mt][2 * np], a[mt], b0);
                mma_m16n8k16<kBf16>(acc[mt][2 * np + 1], a[mt], b1);
            }
        }
    }
}

template <int MT, int NT>
__device__ __forceinline__ void zero(float (&acc)[MT][NT][4]) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int t = 0; t < NT; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mt][t][e] = 0.f;
}

// Accumulator tile (MT x NT, this warp's rows m0.. / columns n0..) -> 16-bit swizzled shared tile, times mul.
template <bool kBf16, class Lay, int MT, int NT>
__device__ __forceinline__ void acc_to_smem(unsigned char* s, const float (&acc)[MT][NT][4], int m0, int n0,
                                            float mul) {
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
            for (int t = 0; t < NT; ++t)
                *reinterpret_cast<uint32_t*>(s + Lay::byte_offset(m0 + mt * 16 + g + 8 * r, n0 + t * 8 + 2 * q)) =
                    prim::pack2<kBf16>(acc[mt][t][2 * r] * mul, acc[mt][t][2 * r + 1] * mul);
}

// Rows [0, rows_valid) x columns [0, cols_valid) of a swizzled 16-bit shared tile in layout Lay -> global
// (coalesced).
template <class Cfg, int kRows, class Lay = typename Cfg::Lay>
__device__ __forceinline__ void store_tile(const unsigned char* s, uint16_t* g, int64_t row_stride, int rows_valid,
                                           int cols_valid, bool aligned) {
    constexpr int kC = Lay::kChunks;
    constexpr int kTotal = kRows * kC;
    constexpr int kIters = (kTotal + Cfg::kThreads - 1) / Cfg::kThreads;
#pragma unroll 1
    for (int it = 0; it < kIters; ++it) {
        const int idx = it * Cfg::kThreads + threadIdx.x;
        if (kTotal % Cfg::kThreads != 0 && idx >= kTotal) break;
        const int r = idx / kC, c = idx % kC, col = c * 8;
        if (r >= rows_valid || col >= cols_valid) continue;
        const uint4 u = *reinterpret_cast<const uint4*>(s + Lay::chunk(r, c) * 16);
        uint16_t* dst = g + r * row_stride + col;
        if (aligned && col + 8 <= cols_valid) {
            *reinterpret_cast<uint4*>(dst) = u;
        } else {
            const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
            for (int k = 0; k < 8; ++k)
                if (col + k < cols_valid) dst[k] = uint16_t(w[k >> 1] >> (16 * (k & 1)));
        }
    }
}

// LSE (log2 units; +inf for rows past the sequence) and D of rows [m0, m0 + BM) of head hi -> shared.
template <class Cfg>
__device__ __forceinline__ void load_rowstats(const BwdParams& p, float* sLse, float* sD, int bi, int hi,
                                              const Geom& s, int m0) {
    constexpr float kLog2e = 1.4426950408889634f;
    const int64_t acc_row0 = p.cu_seqlens_q ? s.q_row0 : int64_t(bi) * p.seqlen_q;
    for (int r = threadIdx.x; r < Cfg::kBM; r += Cfg::kThreads) {
        const int i = m0 + r;
        float l = INFINITY, dd = 0.f;
        if (i < s.sq) {
            const int64_t li = p.lse_unpadded ? int64_t(hi) * p.total_q + s.q_row0 + i
                                              : (int64_t(bi) * p.h + hi) * p.seqlen_q + i;
            l = p.lse[li] * kLog2e;
            dd = p.dsum[int64_t(hi) * p.acc_rows + acc_row0 + i];
        }
        sLse[r] = l;
        sD[r] = dd;
    }
}

// S, dP (this warp's SdP tile of query block m0 x key block n0) -> dS (and Pd when sP != null) in shared.
template <class Cfg, bool kBf16, bool kMasked, bool kFull>
__device__ __forceinline__ void scores_to_grads(const BwdParams& p, float (&s)[Cfg::kSdpMT][Cfg::kSdpNT][4],
                                                const float (&dp)[Cfg::kSdpMT][Cfg::kSdpNT][4], unsigned char* sP,
                                                unsigned char* sdS, const float* sLse, const float* sD, int m0,
                                                int n0, int wr0, int wc0, const Geom& sg, int bi, int hi) {
    using namespace prim;
    using LayP = typename Cfg::LayP;
    constexpr int MT = Cfg::kSdpMT, NT = Cfg::kSdpNT, BM = Cfg::kBM, BN = Cfg::kBN;
    constexpr float kLog2e = 1.4426950408889634f;
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int64_t diag = int64_t(sg.sk) - sg.sq;

    float alibi_l2 = 0.f;
    if constexpr (kFull) {
        if (p.alibi) alibi_l2 = p.alibi[int64_t(bi) * p.alibi_batch_stride + hi] * kLog2e;
    }
    bool need_mask = n0 + BN > sg.sk;
    if constexpr (kMasked) {
        if (p.win_right >= 0 && int64_t(n0) + BN - 1 > int64_t(m0) + diag + p.win_right) need_mask = true;
        if (p.win_left >= 0 && int64_t(n0) < int64_t(m0) + BM - 1 + diag - p.win_left) need_mask = true;
    }
    const bool dropout = kFull && p.threshold16 != 0;
    const uint64_t ph_n = p.philox_offset + uint64_t(bi) * uint64_t(p.h) + uint64_t(hi);
    const uint32_t k0 = uint32_t(p.philox_seed), k1 = uint32_t(p.philox_seed >> 32);

#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int rb = wr0 + mt * 16 + g + 8 * r; // row inside the block
            const int i = m0 + rb;
            const float lse2 = sLse[rb], dsum = sD[rb];
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                const int cb = wc0 + t * 8 + 2 * q;
                uint32_t keepw = 0xFFFFFFFFu;
                if (dropout) {
                    const Philox4 x = philox4x32_10(uint32_t((n0 + wc0 + t * 8) >> 3), uint32_t(i), uint32_t(ph_n),
                                                    uint32_t(ph_n >> 32), k0, k1);
                    keepw = q == 0 ? x.x[0] : q == 1 ? x.x[1] : q == 2 ? x.x[2] : x.x[3];
                }
                float pd[2], ds[2];
#pragma unroll
                for (int u = 0; u < 2; ++u) {
                    const int e = 2 * r + u;
                    const int j = n0 + cb + u;
                    float x = s[mt][t][e];
                    float th = 0.f;
                    float pe;
                    if constexpr (kFull) {
                        if (p.softcap_log2 > 0.f) {
                            th = tanhf(x * p.scale_over_softcap);
                            x = p.softcap_log2 * th;
                        } else {
                            x *= p.scale_log2;
                        }
                        if (alibi_l2 != 0.f) x -= alibi_l2 * fabsf(float(int64_t(i) + diag - j));
                        pe = exp2_approx(x - lse2);
                    } else {
                        pe = exp2_approx(fmaf(x, p.scale_log2, -lse2));
                    }
                    if (need_mask) {
                        bool vis = j < sg.sk;
                        if constexpr (kMasked) {
                            const int64_t a = int64_t(i) + diag;
                            if (p.win_left >= 0 && j < a - p.win_left) vis = false;
                            if (p.win_right >= 0 && j > a + p.win_right) vis = false;
                        }
                        if (!vis) pe = 0.f;
                    }
                    float dpv = dp[mt][t][e];
                    pd[u] = pe;
                    if (dropout) {
                        const bool keep = ((keepw >> (16 * u)) & 0xFFFFu) >= p.threshold16;
                        dpv = keep ? dpv * p.rp_keep : 0.f;
                        pd[u] = keep ? pe * p.rp_keep : 0.f;
                    }
                    float dsv = pe * (dpv - dsum);
                    if constexpr (kFull) {
                        if (p.softcap_log2 > 0.f) dsv *= 1.f - th * th;
                    }
                    ds[u] = dsv;
                }
                if (sP) *reinterpret_cast<uint32_t*>(sP + LayP::byte_offset(rb, cb)) = pack2<kBf16>(pd[0], pd[1]);
                *reinterpret_cast<uint32_t*>(sdS + LayP::byte_offset(rb, cb)) = pack2<kBf16>(ds[0], ds[1]);
            }
        }
}

} // namespace bwd_detail

template <class Cfg, bool kBf16, bool kMasked, bool kFull>
__global__ void __launch_bounds__(Cfg::kThreads, 1) bwd_kernel(const __grid_constant__ BwdParams p) {
    using namespace prim;
    using namespace bwd_detail;
    using Lay = typename Cfg::Lay;
    using LayV = typename Cfg::LayV;
    using LayP = typename Cfg::LayP;
    constexpr int D = Cfg::kD, DV = Cfg::kDV, BM = Cfg::kBM, BN = Cfg::kBN, QS = Cfg::kQStages;

    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sK = smem + Cfg::kOffK;
    unsigned char* sV = smem + Cfg::kOffV;
    unsigned char* sQ = smem + Cfg::kOffQ;
    unsigned char* sdO = smem + Cfg::kOffDO;
    unsigned char* sP = smem + Cfg::kOffP;
    unsigned char* sdS = smem + Cfg::kOffDS;
    float* sLse = reinterpret_cast<float*>(smem + Cfg::kOffLse);
    float* sD = reinterpret_cast<float*>(smem + Cfg::kOffD);

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, q = lane & 3;
    const int n_block = blockIdx.x, hki = blockIdx.y, bi = blockIdx.z;
    const Geom sg = geom(p, bi);
    const int n0 = n_block * BN;
    if (n0 >= sg.sk) return;
    const int64_t diag = int64_t(sg.sk) - sg.sq;

    // Query rows that see at least one key of [n0, n0 + BN): the visible range is monotone in the row.
    int64_t r_lo = 0, r_hi = int64_t(sg.sq) - 1;
    if constexpr (kMasked) {
        if (p.win_right >= 0) r_lo = max(r_lo, int64_t(n0) - p.win_right - diag);
        if (p.win_left >= 0) r_hi = min(r_hi, int64_t(min(n0 + BN, sg.sk)) - 1 + p.win_left - diag);
    }
    const int m_begin = r_lo <= r_hi ? int(r_lo / BM) : 0;
    const int nm = r_lo <= r_hi ? int(r_hi / BM) + 1 - m_begin : 0;
    const int n_it = nm * p.group;

    const uint16_t* gK = static_cast<const uint16_t*>(p.k) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.k_batch) +
                         (sg.k_row0 + n0) * p.k_row + int64_t(hki) * p.k_head;
    const uint16_t* gV = static_cast<const uint16_t*>(p.v) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.v_batch) +
                         (sg.k_row0 + n0) * p.v_row + int64_t(hki) * p.v_head;
    if (n_it > 0) {
        detail::load_tile<Cfg, BN>(sK, gK, p.k_row, sg.sk - n0, p.d, p.aligned_k);
        detail::load_tile<Cfg, BN, false, LayV>(sV, gV, p.v_row, sg.sk - n0, p.dv, p.aligned_v);
    }
    cp_async_commit();

    auto load_q = [&](int it, int slot) {
        const int hi = hki * p.group + it / nm;
        const int m0 = (m_begin + it % nm) * BM;
        const uint16_t* gQ = static_cast<const uint16_t*>(p.q) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.q_batch) +
                             (sg.q_row0 + m0) * p.q_row + int64_t(hi) * p.q_head;
        const uint16_t* gdO = static_cast<const uint16_t*>(p.dout) +
                              (p.cu_seqlens_q ? 0 : int64_t(bi) * p.do_batch) + (sg.q_row0 + m0) * p.do_row +
                              int64_t(hi) * p.do_head;
        detail::load_tile<Cfg, BM>(sQ + slot * Cfg::kQBytes, gQ, p.q_row, sg.sq - m0, p.d, p.aligned_q);
        detail::load_tile<Cfg, BM, false, LayV>(sdO + slot * Cfg::kDoBytes, gdO, p.do_row, sg.sq - m0, p.dv,
                                                p.aligned_do);
        load_rowstats<Cfg>(p, sLse + slot * BM, sD + slot * BM, bi, hi, sg, m0);
    };

    // warp tiles
    const int sdp_r0 = (warp % Cfg::kSdpWM) * Cfg::kSdpMT * 16, sdp_c0 = (warp / Cfg::kSdpWM) * Cfg::kSdpNT * 8;
    const int kv_r0 = (warp % Cfg::kKvWM) * Cfg::kKvMT * 16, kv_c0 = (warp / Cfg::kKvWM) * Cfg::kKvNT * 8;
    const int kv_c0v = (warp / Cfg::kKvWM) * Cfg::kKvNTV * 8; // dV's columns
    const int dq_r0 = (warp % Cfg::kQWM) * Cfg::kQMT * 16, dq_c0 = (warp / Cfg::kQWM) * Cfg::kQNT * 8;
    const uint32_t sK_a = smem_u32addr(sK), sV_a = smem_u32addr(sV), sQ_a = smem_u32addr(sQ),
                   sdO_a = smem_u32addr(sdO), sP_a = smem_u32addr(sP), sdS_a = smem_u32addr(sdS);
    const int64_t acc_row0 = p.cu_seqlens_q ? sg.q_row0 : int64_t(bi) * p.seqlen_q;

    float acc_dk[Cfg::kKvMT][Cfg::kKvNT][4], acc_dv[Cfg::kKvMT][Cfg::kKvNTV][4];
    zero(acc_dk);
    zero(acc_dv);

    if constexpr (QS == 2) {
        if (n_it > 0) load_q(0, 0);
        cp_async_commit();
    }
    for (int it = 0; it < n_it; ++it) {
        const int slot = QS == 2 ? (it & 1) : 0;
        if constexpr (QS == 2) {
            if (it + 1 < n_it) load_q(it + 1, slot ^ 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            load_q(it, 0);
            cp_async_commit();
            cp_async_wait<0>();
        }
        __syncthreads();
        const int hi = hki * p.group + it / nm;
        const int m0 = (m_begin + it % nm) * BM;
        const uint32_t sQs = sQ_a + slot * Cfg::kQBytes, sdOs = sdO_a + slot * Cfg::kDoBytes;

        {
            float s[Cfg::kSdpMT][Cfg::kSdpNT][4], dp[Cfg::kSdpMT][Cfg::kSdpNT][4];
            zero(s);
            zero(dp);
            warp_gemm<kBf16, Cfg::kSdpMT, Cfg::kSdpNT, D / 16, false, false, Lay, Lay>(s, sQs, sdp_r0, sK_a, sdp_c0);
            warp_gemm<kBf16, Cfg::kSdpMT, Cfg::kSdpNT, DV / 16, false, false, LayV, LayV>(dp, sdOs, sdp_r0, sV_a,
                                                                                          sdp_c0);
            scores_to_grads<Cfg, kBf16, kMasked, kFull>(p, s, dp, sP, sdS, sLse + slot * BM, sD + slot * BM, m0, n0,
                                                        sdp_r0, sdp_c0, sg, bi, hi);
        }
        __syncthreads();
        warp_gemm<kBf16, Cfg::kKvMT, Cfg::kKvNTV, BM / 16, true, true, LayP, LayV>(acc_dv, sP_a, kv_r0, sdOs, kv_c0v);
        warp_gemm<kBf16, Cfg::kKvMT, Cfg::kKvNT, BM / 16, true, true, LayP, Lay>(acc_dk, sdS_a, kv_r0, sQs, kv_c0);
        if (p.dq_accum) {
            float acc_dq[Cfg::kQMT][Cfg::kQNT][4];
            zero(acc_dq);
            warp_gemm<kBf16, Cfg::kQMT, Cfg::kQNT, BN / 16, false, true, LayP, Lay>(acc_dq, sdS_a, dq_r0, sK_a, dq_c0);
            float* base = p.dq_accum + (int64_t(hi) * p.acc_rows + acc_row0 + m0) * p.acc_d;
#pragma unroll
            for (int mt = 0; mt < Cfg::kQMT; ++mt)
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const int rb = dq_r0 + mt * 16 + g + 8 * r;
                    if (m0 + rb >= sg.sq) continue;
                    float* row = base + int64_t(rb) * p.acc_d + dq_c0 + 2 * q;
#pragma unroll
                    for (int t = 0; t < Cfg::kQNT; ++t) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
                        atomicAdd(reinterpret_cast<float2*>(row + t * 8),
                                  make_float2(acc_dq[mt][t][2 * r], acc_dq[mt][t][2 * r + 1]));
#else
                        atomicAdd(row + t * 8, acc_dq[mt][t][2 * r]);
                        atomicAdd(row + t * 8 + 1, acc_dq[mt][t][2 * r + 1]);
#endif
                    }
                }
        }
        __syncthreads();
    }

    // ---- epilogue: dK * scale, dV -> 16 bits -> shared (over K, V) -> coalesced stores ----
    cp_async_wait<0>();
    __syncthreads();
    acc_to_smem<kBf16, Lay>(sK, acc_dk, kv_r0, kv_c0, p.scale);
    acc_to_smem<kBf16, LayV>(sV, acc_dv, kv_r0, kv_c0v, 1.f);
    __syncthreads();
    uint16_t* gdK = static_cast<uint16_t*>(p.dk_ptr) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.dk_batch) +
                    (sg.k_row0 + n0) * p.dk_row + int64_t(hki) * p.dk_head;
    uint16_t* gdV = static_cast<uint16_t*>(p.dv_ptr) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.dv_batch) +
                    (sg.k_row0 + n0) * p.dv_row + int64_t(hki) * p.dv_head;
    store_tile<Cfg, BN>(sK, gdK, p.dk_row, sg.sk - n0, p.d, p.aligned_dk);
    store_tile<Cfg, BN, LayV>(sV, gdV, p.dv_row, sg.sk - n0, p.dv, p.aligned_dv);
}

// Deterministic dQ: one CTA per (query block, head, sequence); key blocks in ascending order.
template <class Cfg, bool kBf16, bool kMasked, bool kFull>
__global__ void __launch_bounds__(Cfg::kThreads, 1) bwd_dq_kernel(const __grid_constant__ BwdParams p) {
    using namespace prim;
    using namespace bwd_detail;
    using Lay = typename Cfg::Lay;
    using LayV = typename Cfg::LayV;
    using LayP = typename Cfg::LayP;
    constexpr int D = Cfg::kD, DV = Cfg::kDV, BM = Cfg::kBM, BN = Cfg::kBN;

    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sQ = smem + Cfg::kDqOffQ;
    unsigned char* sdO = smem + Cfg::kDqOffDO;
    unsigned char* sK = smem + Cfg::kDqOffK;
    unsigned char* sV = smem + Cfg::kDqOffV;
    unsigned char* sdS = smem + Cfg::kDqOffDS;
    float* sLse = reinterpret_cast<float*>(smem + Cfg::kDqOffLse);
    float* sD = reinterpret_cast<float*>(smem + Cfg::kDqOffD);

    const int warp = threadIdx.x >> 5;
    const int m_block = blockIdx.x, hi = blockIdx.y, bi = blockIdx.z;
    const int hki = hi / p.group;
    const Geom sg = geom(p, bi);
    const int m0 = m_block * BM;
    if (m0 >= sg.sq) return;
    const int64_t diag = int64_t(sg.sk) - sg.sq;

    int n_end = ceil_div(sg.sk, BN), n_begin = 0;
    if constexpr (kMasked) {
        if (p.win_right >= 0) {
            const int64_t lim = int64_t(m0) + BM - 1 + diag + p.win_right + 1;
            const int64_t nb = lim <= 0 ? 0 : (lim + BN - 1) / BN;
            if (nb < n_end) n_end = int(nb);
        }
        if (p.win_left >= 0) {
            const int64_t lo = int64_t(m0) + diag - p.win_left;
            if (lo > 0) n_begin = int(lo / BN < n_end ? lo / BN : n_end);
        }
    }

    const uint16_t* gQ = static_cast<const uint16_t*>(p.q) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.q_batch) +
                         (sg.q_row0 + m0) * p.q_row + int64_t(hi) * p.q_head;
    const uint16_t* gdO = static_cast<const uint16_t*>(p.dout) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.do_batch) +
                          (sg.q_row0 + m0) * p.do_row + int64_t(hi) * p.do_head;
    const uint16_t* gK = static_cast<const uint16_t*>(p.k) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.k_batch) +
                         sg.k_row0 * p.k_row + int64_t(hki) * p.k_head;
    const uint16_t* gV = static_cast<const uint16_t*>(p.v) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.v_batch) +
                         sg.k_row0 * p.v_row + int64_t(hki) * p.v_head;
    detail::load_tile<Cfg, BM>(sQ, gQ, p.q_row, sg.sq - m0, p.d, p.aligned_q);
    detail::load_tile<Cfg, BM, false, LayV>(sdO, gdO, p.do_row, sg.sq - m0, p.dv, p.aligned_do);
    load_rowstats<Cfg>(p, sLse, sD, bi, hi, sg, m0);
    cp_async_commit();

    const int sdp_r0 = (warp % Cfg::kSdpWM) * Cfg::kSdpMT * 16, sdp_c0 = (warp / Cfg::kSdpWM) * Cfg::kSdpNT * 8;
    const int dq_r0 = (warp % Cfg::kQWM) * Cfg::kQMT * 16, dq_c0 = (warp / Cfg::kQWM) * Cfg::kQNT * 8;
    const uint32_t sK_a = smem_u32addr(sK), sV_a = smem_u32addr(sV), sQ_a = smem_u32addr(sQ),
                   sdO_a = smem_u32addr(sdO), sdS_a = smem_u32addr(sdS);

    float acc_dq[Cfg::kQMT][Cfg::kQNT][4];
    zero(acc_dq);
    for (int nb = n_begin; nb < n_end; ++nb) {
        const int n0 = nb * BN;
        detail::load_tile<Cfg, BN>(sK, gK + int64_t(n0) * p.k_row, p.k_row, sg.sk - n0, p.d, p.aligned_k);
        detail::load_tile<Cfg, BN, false, LayV>(sV, gV + int64_t(n0) * p.v_row, p.v_row, sg.sk - n0, p.dv,
                                                p.aligned_v);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        {
            float s[Cfg::kSdpMT][Cfg::kSdpNT][4], dp[Cfg::kSdpMT][Cfg::kSdpNT][4];
            zero(s);
            zero(dp);
            warp_gemm<kBf16, Cfg::kSdpMT, Cfg::kSdpNT, D / 16, false, false, Lay, Lay>(s, sQ_a, sdp_r0, sK_a, sdp_c0);
            warp_gemm<kBf16, Cfg::kSdpMT, Cfg::kSdpNT, DV / 16, false, false, LayV, LayV>(dp, sdO_a, sdp_r0, sV_a,
                                                                                          sdp_c0);
            scores_to_grads<Cfg, kBf16, kMasked, kFull>(p, s, dp, nullptr, sdS, sLse, sD, m0, n0, sdp_r0, sdp_c0, sg,
                                                        bi, hi);
        }
        __syncthreads();
        warp_gemm<kBf16, Cfg::kQMT, Cfg::kQNT, BN / 16, false, true, LayP, Lay>(acc_dq, sdS_a, dq_r0, sK_a, dq_c0);
        __syncthreads();
    }
    cp_async_wait<0>();
    __syncthreads();
    acc_to_smem<kBf16, Lay>(sQ, acc_dq, dq_r0, dq_c0, p.scale);
    __syncthreads();
    uint16_t* gdQ = static_cast<uint16_t*>(p.dq_ptr) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.dq_batch) +
                    (sg.q_row0 + m0) * p.dq_row + int64_t(hi) * p.dq_head;
    store_tile<Cfg, BM>(sQ, gdQ, p.dq_row, sg.sq - m0, p.d, p.aligned_dq);
}

} // namespace flash::cuda
