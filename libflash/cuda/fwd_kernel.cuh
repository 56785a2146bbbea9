// FlashAttention-2 forward on mma.sync (sm80+): one CTA = one (query block, split, batch, head).
//
// Algorithm (FA2): the CTA's block_m query rows are split across warps (each warp owns kMT m16 tiles and
// never talks to the others); K and V tiles of block_n keys stream through a cp.async ring of `stages`
// slots (groups issued in the order Q+K0, V0, K1, V1, ...: V_j loads under Q K_j^T, K_{j+S} under the
// softmax and P V_j); S = Q K^T accumulates in fp32 registers; online softmax in fp32 with exp2 and the
// scale folded into one FFMA; P is converted to 16 bits in registers and used directly as the A operand of
// P V (accumulator layout == A layout, fragment.cuh); O is normalized once at the end (deferred 1/l); the
// LSE is written in the natural log. Key blocks are visited from the last to the first so the masked
// blocks (sequence end, causal diagonal) come first; blocks wholly outside the mask window are skipped.
//
// Compile-time switches: kMasked (causal / local window: per-element window test on diagonal blocks),
// kFull (softcap, ALiBi, dropout: the scores are mapped to log2 units first). Everything else (lengths,
// varlen, seqused, leftpad, GQA, head dims below the instantiation, unaligned tensors, splits) is runtime.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "fwd_config.h"
#include "fwd_params.h"
#include "philox.cuh"
#include "primitives/cp_async.cuh"
#include "primitives/fastmath.cuh"
#include "primitives/fragment.cuh"
#include "primitives/ldmatrix.cuh"
#include "primitives/mma.cuh"
#include "primitives/swizzle.cuh"

namespace flash::cuda {

template <int kD_, bool kMasked_, int kDV_ = kD_>
struct FwdCfg {
    static constexpr FwdTile kTile = fwd_tile(kD_, kMasked_);
    static constexpr int kD = kD_;
    static constexpr int kDV = kDV_; // V / O columns: kD, or 128 for MLA's 192 / 128 (fwd_dim_v)
    static constexpr int kBM = kTile.block_m;
    static constexpr int kBN = kTile.block_n;
    static constexpr int kWarps = kTile.warps;
    static constexpr int kStages = kTile.stages;
    static constexpr int kMinBlocks = kTile.ctas_per_sm;
    static constexpr bool kQInRegs = kTile.q_in_regs;
    static constexpr bool kSplitBody = kTile.split_body;
    static constexpr bool kLazyRescale = kTile.lazy_rescale;
    static constexpr bool kTwoChains = kTile.two_chains;
    static constexpr bool kFullLoad = kTile.full_load;
    static constexpr bool kReverseM = kTile.reverse_m;
    static constexpr bool kLateSync = kTile.late_sync;
    static constexpr int kThreads = 32 * kWarps;
    static constexpr int kMT = kBM / (16 * kWarps); // m16 tiles per warp
    static constexpr int kChunks = kD / 8;          // 16-byte chunks per row
    using Lay = prim::SwizzledRows<kChunks>;        // Q and K rows (and O staged in Q's place)
    using LayV = prim::SwizzledRows<kDV / 8>;       // V rows
    static constexpr int kQBytes = Lay::bytes(kBM);
    static constexpr int kKVBytes = Lay::bytes(kBN); // one K slot
    static constexpr int kVBytes = LayV::bytes(kBN); // one V slot
    static constexpr int kSmem = kQBytes + kStages * (kKVBytes + kVBytes);
    static_assert(kTile.d == kD_, "head dim missing from kFwdTiles");
    static_assert(kDV_ == kD_ || kDV_ == fwd_dim_v(kD_, kDV_), "a narrow-V instantiation fwd_dim_v does not name");
    static_assert(fwd_tile_error(kTile) == nullptr, "this tile row breaks a rule of fwd_tile_error");
    static_assert(kSmem == fwd_smem_bytes(kTile, kDV_), "fwd_smem_bytes out of step with the kernel's layout");
};

__host__ __device__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

namespace detail {

// Physical chunk of logical chunk 2k + lb for a lane whose swizzle row key is s (rows start at multiples of
// 8, so the swizzle depends on the lane only): ((2k) & ~7) + lco[k & 3], lco[j] = (2j + lb) ^ s.
template <class Lay>
struct LaneChunks {
    int lco[4];
    __device__ __forceinline__ LaneChunks(int lb, int row_in_8) {
#pragma unroll
        for (int j = 0; j < 4; ++j) lco[j] = ((2 * j + lb) ^ Lay::swz(row_in_8));
    }
    __device__ __forceinline__ int phys(int k) const { return ((2 * k) & ~7) + lco[k & 3]; }
};

// Copies rows [0, kRows) x elements [0, Lay::kChunks * 8) of a strided global tile into the swizzled shared tile:
// rows >= rows_valid and columns >= cols_valid are zero-filled. Full 16-byte chunks of an aligned tensor go
// through cp.async (part of the caller's next commit group); everything else through scalar loads.
// kWhole: a tile whose rows and columns all exist takes a copy of the fast path without per-row checks (fwd_config.h
// full_load).
template <class Cfg, int kRows, bool kWhole = false, class Lay = typename Cfg::Lay>
__device__ __forceinline__ void load_tile(unsigned char* s, const uint16_t* g, int64_t row_stride, int rows_valid,
                                          int cols_valid, bool aligned) {
    constexpr int kC = Lay::kChunks;
    constexpr int kTotal = kRows * kC;
    constexpr int kIters = (kTotal + Cfg::kThreads - 1) / Cfg::kThreads;
    // Fast path: kL lanes per row, each with kK chunks (load_lane_chunks). Without such a split the
    // lanes per row become the next power of two of the chunk count and the lanes past it idle (12 -> 16,
    // 24 -> 32: the padding of bench/NOTES.md mma.sync step 13, whose idle lanes cost a quarter more copy
    // instructions and a divergent branch per copy, step 15); without that either, the general loop.
    constexpr int kPadded = Cfg::kThreads % kC == 0 ? kC : kC <= 16 ? 16 : kC <= 32 ? 32 : kC; // step 13's lanes
#if defined(FLASH_TUNE_NOPAD) // A/B builds only: the layouts before the padding
    constexpr int kK = Cfg::kThreads % kC == 0 ? 1 : 0, kCP = kC;
#elif defined(FLASH_TUNE_PAD) // A/B builds only: the padded lanes of step 13
    constexpr int kK = 1, kCP = kPadded;
#else
    constexpr int kK0 = load_lane_chunks(kC, Cfg::kThreads, kRows);
    constexpr int kK = kK0 > 0 ? kK0 : 1;
    constexpr int kCP = kK0 > 0 ? kC : kPadded;
#endif
    constexpr int kL = kK > 0 ? kCP / kK : kCP; // lanes per row
    const uint32_t s_addr = prim::smem_u32addr(s);
    if constexpr (kK > 0 && Cfg::kThreads % kL == 0 && kRows % (Cfg::kThreads / kL) == 0) {
        // Each thread owns chunks c0, c0 + kL, .. (kK of them; a row's kL lanes read kL neighbouring chunks per copy) of
        // rows r0, r0 + kStep, ...; one pointer walks down.
        constexpr int kStep = Cfg::kThreads / kL;
        const int r0 = threadIdx.x / kL, c0 = threadIdx.x % kL, col = c0 * 8;
        if constexpr (kWhole) {
            // Every row and column of the tile exists (the same answer for the whole CTA, so no warp splits
            // between the two loops): no per-row check or select.
            if (aligned && rows_valid >= kRows && cols_valid >= kC * 8) {
                if (kCP != kC && c0 >= kC) return;
                const uint16_t* gp = g + r0 * row_stride + col;
                const int64_t gstep = kStep * row_stride;
#pragma unroll
                for (int it = 0; it < kRows / kStep; ++it) {
#pragma unroll
                    for (int k = 0; k < kK; ++k)
                        prim::cp_async_16(s_addr + Lay::chunk(r0 + it * kStep, c0 + k * kL) * 16, gp + 8 * k * kL, 16u);
                    gp += gstep;
                }
                return;
            }
        }
        // One chunk per lane over all kC chunks, a thread whose chunk straddles cols_valid takes the general loop
        // alone: its chunks there are the same ones (kThreads is a multiple of kC). Otherwise the two mappings
        // differ, so the whole CTA takes one path: this one when no chunk straddles.
        const bool cols_ok = kCP == kC && kK == 1 ? (col + 8 <= cols_valid || col >= cols_valid)
                                                  : (cols_valid % 8 == 0 || cols_valid >= kC * 8);
        if (aligned && cols_ok) {
            if (kCP != kC && c0 >= kC) return;
            const uint16_t* gp = g + r0 * row_stride + col;
            const int64_t gstep = kStep * row_stride;
#pragma unroll
            for (int it = 0; it < kRows / kStep; ++it) {
                const int r = r0 + it * kStep;
                const bool rv = r < rows_valid;
#pragma unroll
                for (int k = 0; k < kK; ++k) {
                    const bool v = rv && col + 8 * k * kL < cols_valid;
                    prim::cp_async_16(s_addr + Lay::chunk(r, c0 + k * kL) * 16, v ? gp + 8 * k * kL : g, v ? 16u : 0u);
                }
                gp += gstep;
            }
            return;
        }
    }
    // Not unrolled on purpose: unrolled, the compiler hoists every iteration's 64-bit row offset out of the
    // key loop and spends 2-3 registers per iteration (100+ at d=256); the copies are asynchronous anyway.
#pragma unroll 1
    for (int it = 0; it < kIters; ++it) {
        const int idx = it * Cfg::kThreads + threadIdx.x;
        if (kTotal % Cfg::kThreads != 0 && idx >= kTotal) break;
        const int r = idx / kC, c = idx % kC;
        const int col = c * 8;
        const bool rv = r < rows_valid;
        const int off = Lay::chunk(r, c) * 16;
        if (aligned && (col + 8 <= cols_valid || col >= cols_valid)) {
            const bool v = rv && col < cols_valid;
            prim::cp_async_16(s_addr + off, v ? g + r * row_stride + col : g, v ? 16u : 0u);
        } else {
            uint16_t e[8];
#pragma unroll
            for (int k = 0; k < 8; ++k) e[k] = (rv && col + k < cols_valid) ? g[r * row_stride + col + k] : uint16_t(0);
            uint4 u;
            u.x = e[0] | (uint32_t(e[1]) << 16);
            u.y = e[2] | (uint32_t(e[3]) << 16);
            u.z = e[4] | (uint32_t(e[5]) << 16);
            u.w = e[6] | (uint32_t(e[7]) << 16);
            *reinterpret_cast<uint4*>(s + off) = u;
        }
    }
}

} // namespace detail

template <class Cfg, bool kBf16, bool kMasked, bool kFull>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) fwd_kernel(const __grid_constant__ FwdParams p) {
    using namespace prim;
    using Lay = typename Cfg::Lay;
    using LayV = typename Cfg::LayV;
    constexpr int D = Cfg::kD, DV = Cfg::kDV, BM = Cfg::kBM, BN = Cfg::kBN, S = Cfg::kStages, MT = Cfg::kMT;
    constexpr int kKSteps = D / 16;   // k16 steps of Q K^T
    constexpr int kNT = BN / 8;       // n8 tiles of S
    constexpr int kOT = DV / 8;       // n8 tiles of O
    constexpr int kPVSteps = BN / 16; // k16 steps of P V
    constexpr float kLn2 = 0.6931471805599453f;
    constexpr float kLog2e = 1.4426950408889634f;

    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sQ = smem;
    unsigned char* sK = smem + Cfg::kQBytes;
    unsigned char* sV = sK + S * Cfg::kKVBytes;

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, q = lane & 3;

    const int num_m_blocks = gridDim.x / p.num_splits;
    // The CTA's (m block, split, head, batch). Called again in the epilogue (on an opaque copy of sec_pairs, so
    // it is not merged with this call): blockIdx can be re-read there for free, decoded values would have to
    // stay live through the key loop (ptxas, d128 causal: 8 -> 84 B of spills).
    auto coords = [&](int sec_pairs, int& m_block, int& split, int& hi, int& bi) {
        if (kMasked && sec_pairs > 0) { // L2 sections, heaviest m block first (tile_order.h; one split)
            const int lin = int(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z)); // < 2^31 (host)
            const int pairs = int(gridDim.y * gridDim.z), per = sec_pairs * num_m_blocks;
            const int sec = lin / per, within = lin - sec * per;
            const int n = min(sec_pairs, pairs - sec * sec_pairs);
            const int mr = within / n, pair = sec * sec_pairs + within - mr * n;
            m_block = num_m_blocks - 1 - mr;
            split = 0;
            bi = pair / int(gridDim.y);
            hi = pair - bi * int(gridDim.y);
        } else {
            const int mb_raw = blockIdx.x / p.num_splits;
            split = blockIdx.x % p.num_splits;
            // Causal / local with kReverseM: the first CTAs of a head take its last m-blocks (the longest key
            // ranges). Per head dim in fwd_config.h (measured: d128 faster in launch order, d256 reversed).
            m_block = (kMasked && Cfg::kReverseM) ? (num_m_blocks - 1 - mb_raw) : mb_raw;
            hi = blockIdx.y;
            bi = blockIdx.z;
        }
    };
    int m_block, split, hi, bi;
    coords(p.sec_pairs, m_block, split, hi, bi);
    const int hki = hi / p.group;

    // ---- per-sequence geometry: api/seqinfo.h, line for line ----
    int64_t q_row0 = 0;
    int sq = p.seqlen_q;
    if (p.cu_seqlens_q) {
        q_row0 = p.cu_seqlens_q[bi];
        sq = p.cu_seqlens_q[bi + 1] - p.cu_seqlens_q[bi];
    }
    if (p.seqused_q) sq = p.seqused_q[bi];
    const int leftpad = p.leftpad_k ? p.leftpad_k[bi] : 0;
    int64_t k_row0 = 0;
    int kend;
    if (p.cu_seqlens_k) {
        k_row0 = p.cu_seqlens_k[bi];
        kend = p.cu_seqlens_k[bi + 1] - p.cu_seqlens_k[bi];
    } else {
        kend = p.seqlen_k;
    }
    if (p.seqused_k) kend = p.seqused_k[bi];
    k_row0 += leftpad;
    const int sk = kend - leftpad;

    const int m0 = m_block * BM;
    if (m0 >= sq) return;
    const int64_t diag = int64_t(sk) - sq; // query row i sees keys up to i + diag (+ right)

    // ---- key-block range: skip blocks wholly outside the window; split-KV share ----
    int n_end = ceil_div(sk, BN), n_begin = 0;
    if constexpr (kMasked) {
        if (p.win_right >= 0) {
            const int64_t lim = int64_t(m0) + BM - 1 + diag + p.win_right + 1; // one past the last visible key
            const int64_t nb = lim <= 0 ? 0 : (lim + BN - 1) / BN;
            if (nb < n_end) n_end = int(nb);
        }
        if (p.win_left >= 0) {
            const int64_t lo = int64_t(m0) + diag - p.win_left; // first visible key of the first row
            if (lo > 0) n_begin = int(lo / BN < n_end ? lo / BN : n_end);
        }
    }
    if (p.num_splits > 1) {
        const int per = ceil_div(ceil_div(sk, BN), p.num_splits);
        n_begin = max(n_begin, split * per);
        n_end = min(n_end, (split + 1) * per);
    }
    const int ntiles = n_end > n_begin ? n_end - n_begin : 0;

    // ---- global bases (64-bit) ----
    const uint16_t* gQ = static_cast<const uint16_t*>(p.q) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.q_batch) +
                         (q_row0 + m0) * p.q_row + int64_t(hi) * p.q_head;
    const uint16_t* gK = static_cast<const uint16_t*>(p.k) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.k_batch) +
                         k_row0 * p.k_row + int64_t(hki) * p.k_head;
    const uint16_t* gV = static_cast<const uint16_t*>(p.v) + (p.cu_seqlens_k ? 0 : int64_t(bi) * p.v_batch) +
                         k_row0 * p.v_row + int64_t(hki) * p.v_head;
    const bool al_k = p.aligned_k, al_v = p.aligned_v;

    auto nblk = [&](int j) { return n_end - 1 - j; };
    auto load_k = [&](int j, int slot) {
        const int n = nblk(j);
        detail::load_tile<Cfg, BN, Cfg::kFullLoad>(sK + slot * Cfg::kKVBytes, gK + int64_t(n) * BN * p.k_row, p.k_row,
                                                   sk - n * BN, p.d, al_k);
    };
    auto load_v = [&](int j, int slot) {
        const int n = nblk(j);
        detail::load_tile<Cfg, BN, Cfg::kFullLoad, LayV>(sV + slot * Cfg::kVBytes, gV + int64_t(n) * BN * p.v_row,
                                                         p.v_row, sk - n * BN, p.dv, al_v);
    };

    // ---- prologue: [Q, K0], [V0], [K1], ..., [V_{S-2}], [K_{S-1}] ----
    if (ntiles > 0) {
        detail::load_tile<Cfg, BM, Cfg::kFullLoad>(sQ, gQ, p.q_row, sq - m0, p.d, p.aligned_q);
        load_k(0, 0);
    }
    cp_async_commit();
#pragma unroll
    for (int s = 0; s + 1 < S; ++s) {
        if (s < ntiles) load_v(s, s);
        cp_async_commit();
        if (s + 1 < ntiles) load_k(s + 1, s + 1);
        cp_async_commit();
    }

    // ---- per-lane ldmatrix addressing ----
    const int warp_row0 = warp * MT * 16; // first row of this warp inside the block
    // Q (A, non-trans): lane -> row (lane & 15), chunk 2k + (lane >> 4)
    const detail::LaneChunks<Lay> qch(lane >> 4, lane & 7);
    const int q_row_off = (warp_row0 + (lane & 15)) * Lay::kPitch * 16;
    // K (B, non-trans, x4 = two n8 tiles): lane -> key (lane & 7) + 8 * (lane >> 4), chunk 2k + ((lane >> 3) & 1)
    const detail::LaneChunks<Lay> kch((lane >> 3) & 1, lane & 7);
    const int k_row_off = ((lane & 7) + 8 * (lane >> 4)) * Lay::kPitch * 16;
    // V (B, trans, x4 = two n8 tiles of dv): lane -> key (lane & 7) + 8 * ((lane >> 3) & 1), chunk 2k + (lane >> 4);
    // the same (lb, row) pair as Q, so the same chunks (and registers) while V's rows swizzle as Q's do
    const detail::LaneChunks<LayV> vch(lane >> 4, lane & 7);
    const int v_row_off = ((lane & 7) + 8 * ((lane >> 3) & 1)) * LayV::kPitch * 16;
    const uint32_t sQ_a = smem_u32addr(sQ), sK_a = smem_u32addr(sK), sV_a = smem_u32addr(sV);

    // ---- feature constants ----
    const float sl2 = kFull ? 1.f : p.scale_log2; // factor from the stored score to log2 units
    float alibi_l2 = 0.f;
    if constexpr (kFull) {
        if (p.alibi) alibi_l2 = p.alibi[int64_t(bi) * p.alibi_batch_stride + hi] * kLog2e;
    }
    const uint64_t ph_n = p.philox_offset + uint64_t(bi) * uint64_t(p.h) + uint64_t(hi);

    float acc_o[MT][kOT][4];
    float row_max[MT][2], row_sum[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int t = 0; t < kOT; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc_o[mt][t][e] = 0.f;
        row_max[mt][0] = row_max[mt][1] = -INFINITY;
        row_sum[mt][0] = row_sum[mt][1] = 0.f;
    }
    uint32_t q_frag[Cfg::kQInRegs ? MT : 1][Cfg::kQInRegs ? kKSteps : 1][4];

    // One key block. kDoMask: the block straddles the sequence end or a window edge. The body is instantiated
    // twice so that the (few) masked blocks' temporaries do not raise register pressure in the plain ones.
    // do_mask is std::true_type / std::false_type (split body) or a run-time bool (one body).
    auto block = [&](const int j, auto do_mask) {
        bool mask_now;
        if constexpr (std::is_same_v<decltype(do_mask), bool>) mask_now = do_mask;
        else mask_now = decltype(do_mask)::value;
        const int slot = S == 1 ? 0 : j % S;
        cp_async_wait<2 * S - 2>();
        __syncthreads();
        if (j + S - 1 < ntiles) load_v(j + S - 1, (j + S - 1) % S);
        cp_async_commit();

        if constexpr (Cfg::kQInRegs) {
            if (j == 0) {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int ks = 0; ks < kKSteps; ++ks)
                        ldmatrix_x4(q_frag[mt][ks], sQ_a + q_row_off + mt * 16 * Lay::kPitch * 16 + qch.phys(ks) * 16);
            }
        }

        // ---- S = Q K^T ----
        float acc_s[MT][kNT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int t = 0; t < kNT; ++t)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc_s[mt][t][e] = 0.f;
        const uint32_t sKs = sK_a + slot * Cfg::kKVBytes + k_row_off;
#pragma unroll
        for (int ks = 0; ks < kKSteps; ++ks) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                if constexpr (Cfg::kQInRegs) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) a[mt][e] = q_frag[mt][ks][e];
                } else {
                    ldmatrix_x4(a[mt], sQ_a + q_row_off + mt * 16 * Lay::kPitch * 16 + qch.phys(ks) * 16);
                }
            }
#pragma unroll
            for (int np = 0; np < kNT / 2; ++np) {
                uint32_t b[4];
                ldmatrix_x4(b, sKs + np * 16 * Lay::kPitch * 16 + kch.phys(ks) * 16);
                const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma_m16n8k16<kBf16>(acc_s[mt][2 * np], a[mt], b0);
                    mma_m16n8k16<kBf16>(acc_s[mt][2 * np + 1], a[mt], b1);
                }
            }
        }

        // V(j) is waited for and K(j + S) issued into the slot S = Q K^T just read: FA2's place, between the two
        // GEMMs, or (kLateSync, fwd_config.h late_sync) after the softmax, so that the softmax follows the S HMMAs
        // without a barrier between them.
        auto next_k = [&] {
            cp_async_wait<2 * S - 2>();
            __syncthreads();
            if (j + S < ntiles) load_k(j + S, slot);
            cp_async_commit();
        };
        if constexpr (!Cfg::kLateSync) next_k();

        // ---- scores -> probabilities (online softmax) ----
        const int n0 = nblk(j) * BN;
        if constexpr (kFull) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int t = 0; t < kNT; ++t)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        float x = acc_s[mt][t][e];
                        x = p.softcap_log2 > 0.f ? p.softcap_log2 * tanhf(x * p.scale_over_softcap) : x * p.scale_log2;
                        if (alibi_l2 != 0.f) {
                            const int i = m0 + warp_row0 + mt * 16 + g + 8 * (e >> 1);
                            const int c = n0 + t * 8 + 2 * q + (e & 1);
                            x -= alibi_l2 * fabsf(float(int64_t(i) + diag - c));
                        }
                        acc_s[mt][t][e] = x;
                    }
        }
        if (mask_now) {
            // The mask rule of api/problem.h in offsets: for element (mt, t, e) of this lane, with
            // kc = t*8 + (e&1) - mt*16 - 8*(e>>1) (compile time) and column - row = toff + lane_off + kc:
            //   right:  column <= row + diag + right  <=>  kc <= R;   left: kc >= L;   end: t*8 + (e&1) < K.
            // R, L, K are clamped to +-kClamp, beyond any |kc|, so the tests stay exact in 32 bits.
            constexpr int64_t kClamp = BM + BN + 64;
            auto clampi = [](int64_t x) { return int(x < -kClamp ? -kClamp : x > kClamp ? kClamp : x); };
            const int K = clampi(int64_t(sk) - n0 - 2 * q);
            int R = int(kClamp), L = -int(kClamp);
            if constexpr (kMasked) {
                const int lane_off = 2 * q - g;
                const int64_t toff = int64_t(n0) - m0 - warp_row0;
                if (p.win_right >= 0) R = clampi(diag + p.win_right - toff - lane_off);
                if (p.win_left >= 0) L = clampi(diag - p.win_left - toff - lane_off);
            }
            // Causal blocks short of the sequence's end test R alone (one ISETP + FSEL per score, not three).
            auto apply = [&](auto right_only) {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int t = 0; t < kNT; ++t)
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int tc = t * 8 + (e & 1);
                            const int kc = tc - mt * 16 - 8 * (e >> 1);
                            const bool out = decltype(right_only)::value ? kc > R : tc >= K || kc > R || kc < L;
                            if (out) acc_s[mt][t][e] = -INFINITY;
                        }
            };
            if (K >= BN && L == -int(kClamp)) apply(std::true_type{});
            else apply(std::false_type{});
        }
        // Row max -> rescale factor alpha -> p = exp2(s * sl2 - max * sl2) with one FFMA. kLazyRescale: alpha is
        // exactly 1 when a row max did not move, and the O rescale is skipped when no row of the warp moved (no
        // bit changes). Per config: it lowers register pressure at d128 and costs time at d64 (bench/NOTES.md).
        float alpha[MT][2];
        [[maybe_unused]] bool moved = false;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const float old = row_max[mt][r];
                // kTwoChains: two max chains (even / odd column tiles) and two sum chains (a thread's even / odd
                // column). At two warps per scheduler the other warp does not hide their latency (bench/NOTES.md,
                // mma.sync step 11).
                constexpr int kCh = Cfg::kTwoChains ? 2 : 1;
                float m2[2] = {old, -INFINITY};
#pragma unroll
                for (int t = 0; t < kNT; ++t)
                    m2[t % kCh] = fmaxf(m2[t % kCh], fmaxf(acc_s[mt][t][2 * r], acc_s[mt][t][2 * r + 1]));
                const float mx = quad_max(kCh == 2 ? fmaxf(m2[0], m2[1]) : m2[0]);
                const float m_use = mx == -INFINITY ? 0.f : mx;
                const float ms = m_use * sl2;
                if constexpr (Cfg::kLazyRescale) {
                    alpha[mt][r] = mx == old ? 1.f : exp2_approx(old * sl2 - ms);
                    moved |= mx != old;
                } else {
                    alpha[mt][r] = exp2_approx(old * sl2 - ms);
#pragma unroll
                    for (int t = 0; t < kOT; ++t) {
                        acc_o[mt][t][2 * r] *= alpha[mt][r];
                        acc_o[mt][t][2 * r + 1] *= alpha[mt][r];
                    }
                }
                row_max[mt][r] = mx;
                float sum2[2] = {0.f, 0.f};
#pragma unroll
                for (int t = 0; t < kNT; ++t) {
#pragma unroll
                    for (int e = 2 * r; e < 2 * r + 2; ++e) {
                        const float pe = exp2_approx(fmaf(acc_s[mt][t][e], sl2, -ms));
                        acc_s[mt][t][e] = pe;
                        sum2[kCh == 2 ? e & 1 : 0] += pe;
                    }
                }
                row_sum[mt][r] = row_sum[mt][r] * alpha[mt][r] + (kCh == 2 ? sum2[0] + sum2[1] : sum2[0]);
            }
        }
        if constexpr (Cfg::kLazyRescale) {
            if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int t = 0; t < kOT; ++t)
#pragma unroll
                        for (int e = 0; e < 4; ++e) acc_o[mt][t][e] *= alpha[mt][e >> 1];
            }
        }
        if constexpr (kFull) {
            if (p.threshold16 != 0) {
                const uint32_t k0 = uint32_t(p.philox_seed), k1 = uint32_t(p.philox_seed >> 32);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int r = 0; r < 2; ++r) {
                        const uint32_t i = uint32_t(m0 + warp_row0 + mt * 16 + g + 8 * r);
#pragma unroll
                        for (int t = 0; t < kNT; ++t) {
                            const uint32_t cb = uint32_t((n0 + t * 8) >> 3);
                            const Philox4 x = philox4x32_10(cb, i, uint32_t(ph_n), uint32_t(ph_n >> 32), k0, k1);
                            // x.x[q] with a run-time q would put x in local memory: select instead.
                            const uint32_t w = q == 0 ? x.x[0] : q == 1 ? x.x[1] : q == 2 ? x.x[2] : x.x[3];
                            if ((w & 0xFFFFu) < p.threshold16) acc_s[mt][t][2 * r] = 0.f;
                            if ((w >> 16) < p.threshold16) acc_s[mt][t][2 * r + 1] = 0.f;
                        }
                    }
            }
        }

        if constexpr (Cfg::kLateSync) next_k();

        // ---- O += P V ----
        const uint32_t sVs = sV_a + slot * Cfg::kVBytes + v_row_off;
#pragma unroll
        for (int ks = 0; ks < kPVSteps; ++ks) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) acc_to_a<kBf16>(a[mt], acc_s[mt][2 * ks], acc_s[mt][2 * ks + 1]);
#pragma unroll
            for (int dp = 0; dp < kOT / 2; ++dp) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, sVs + ks * 16 * LayV::kPitch * 16 + vch.phys(dp) * 16);
                const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma_m16n8k16<kBf16>(acc_o[mt][2 * dp], a[mt], b0);
                    mma_m16n8k16<kBf16>(acc_o[mt][2 * dp + 1], a[mt], b1);
                }
            }
        }
    };

    for (int j = 0; j < ntiles; ++j) {
        const int n0 = nblk(j) * BN;
        bool need_mask = n0 + BN > sk;
        if constexpr (kMasked) {
            if (p.win_right >= 0 && int64_t(n0) + BN - 1 > int64_t(m0) + diag + p.win_right) need_mask = true;
            if (p.win_left >= 0 && int64_t(n0) < int64_t(m0) + BM - 1 + diag - p.win_left) need_mask = true;
        }
        if constexpr (Cfg::kSplitBody) {
            if (need_mask) block(j, std::true_type{});
            else block(j, std::false_type{});
        } else {
            block(j, need_mask);
        }
    }

    // ---- epilogue: deferred 1/l, LSE (natural log), store ----
    float lse[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float l = quad_sum(row_sum[mt][r]);
            const bool any = l > 0.f;
            const float inv = any ? p.rp_keep / l : 0.f;
            lse[mt][r] = any ? row_max[mt][r] * sl2 * kLn2 + __logf(l) : INFINITY;
#pragma unroll
            for (int t = 0; t < kOT; ++t) {
                acc_o[mt][t][2 * r] *= inv;
                acc_o[mt][t][2 * r + 1] *= inv;
            }
        }

    const int rows_valid = sq - m0;
    if (kMasked) coords(opaque(p.sec_pairs), m_block, split, hi, bi);
    if (p.num_splits > 1) {
        // fp32 partials straight from registers: o_accum[split][h][acc_row][D] (DV of its D columns written; the
        // combine reads dv), lse_accum[split][h][acc_row]
        const int64_t acc_row0 = p.cu_seqlens_q ? q_row0 : int64_t(bi) * p.seqlen_q;
        const int64_t base = (int64_t(split) * p.h + hi) * p.acc_rows + acc_row0 + m0;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int row = warp_row0 + mt * 16 + g + 8 * r;
                if (row >= rows_valid) continue;
                float* orow = p.o_accum + (base + row) * D;
#pragma unroll
                for (int t = 0; t < kOT; ++t)
                    *reinterpret_cast<float2*>(orow + t * 8 + 2 * q) = make_float2(acc_o[mt][t][2 * r], acc_o[mt][t][2 * r + 1]);
                if (q == 0) p.lse_accum[base + row] = lse[mt][r] == INFINITY ? -INFINITY : lse[mt][r];
            }
        return;
    }

    if (p.lse && q == 0) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int row = warp_row0 + mt * 16 + g + 8 * r;
                if (row >= rows_valid) continue;
                const int64_t i = int64_t(m0) + row;
                const int64_t idx = p.lse_unpadded ? int64_t(hi) * p.total_q + q_row0 + i
                                                   : (int64_t(bi) * p.h + hi) * p.seqlen_q + i;
                p.lse[idx] = lse[mt][r];
            }
    }

    // O -> 16 bits -> this warp's own rows of sQ (only this warp ever read them) -> coalesced stores.
    __syncwarp();
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int row = warp_row0 + mt * 16 + g + 8 * r;
#pragma unroll
            for (int t = 0; t < kOT; ++t)
                *reinterpret_cast<uint32_t*>(sQ + Lay::byte_offset(row, t * 8 + 2 * q)) =
                    pack2<kBf16>(acc_o[mt][t][2 * r], acc_o[mt][t][2 * r + 1]);
        }
    __syncthreads();
    uint16_t* gO = static_cast<uint16_t*>(p.o) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.o_batch) +
                   (q_row0 + m0) * p.o_row + int64_t(hi) * p.o_head;
    constexpr int kC = DV / 8; // O's chunks per row (staged in Q's layout)
    constexpr int kIters = (BM * kC + Cfg::kThreads - 1) / Cfg::kThreads;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
        const int idx = it * Cfg::kThreads + tid;
        if ((BM * kC) % Cfg::kThreads != 0 && idx >= BM * kC) break;
        const int r = idx / kC, c = idx % kC, col = c * 8;
        if (r >= rows_valid || col >= p.dv) continue;
        const uint4 u = *reinterpret_cast<const uint4*>(sQ + Lay::chunk(r, c) * 16);
        uint16_t* dst = gO + r * p.o_row + col;
        if (p.aligned_o && col + 8 <= p.dv) {
            *reinterpret_cast<uint4*>(dst) = u;
        } else {
            const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
            for (int k = 0; k < 8; ++k)
                if (col + k < p.dv) dst[k] = uint16_t(w[k >> 1] >> (16 * (k & 1)));
        }
    }
}

} // namespace flash::cuda
