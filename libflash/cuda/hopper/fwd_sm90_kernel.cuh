// FlashAttention forward for Hopper (sm_90a): TMA loads, wgmma, warp specialization.
//
// One CTA = one (query block of 64 * consumers rows, head, batch), 128 * (consumers + 1) threads:
// - warpgroup 0 is the producer: after dropping to a few registers (setmaxnreg), one thread loads the Q tile
//   once and streams K and V tiles through a `stages`-deep ring with TMA; each slot has a "full" mbarrier
//   (completed by the copy's transaction bytes) and an "empty" one (completed when every consumer thread has
//   released the slot), separately for K and V so that S = Q K^T starts before V has landed.
// - warpgroups 1.. are consumers, 64 query rows each, with the registers the producer gave up: S = Q K^T by
//   wgmma with both operands in shared memory (K-major, 128-byte swizzle, the layout TMA writes), online
//   softmax in fp32 with exp2 and the scale folded into one FFMA, P converted in registers to the A operand
//   of O += P V (wgmma RS form, V read MN-major), deferred 1/l, natural-log LSE.
// - kOverlap (config): the P V of key block j-1 stays on the tensor cores while the softmax of block j runs
//   (FA3's intra-warpgroup overlap); the O rescale waits until that P V has retired.
// - kPingpong (config): the two consumer warpgroups take turns issuing their GEMMs (named barriers), so the
//   softmax of one runs while the tensor cores work for the other.
// Key blocks are visited from the last to the first, so the blocks that need a mask (sequence end, causal
// diagonal) come first; blocks wholly outside the window are skipped. The last, partial key block is loaded
// with its box ending at the sequence's last key (origin sk - block_n, TMA zero-fills negative rows), so a
// box never reads past the sequence: varlen K needs no total length on the host, and the extra leading keys
// are masked as belonging to the next block.
//
// Features on this path: fp16/bf16, causal/local windows, softcap (kSoftcap), GQA/MQA, varlen, seqused,
// leftpad, LSE. Dropout, ALiBi and split-KV stay on the sm80 kernel (hopper/fwd_sm90.cu routes them).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../fwd_params.h"
#include "../primitives/fastmath.cuh"
#include "../primitives/fragment.cuh"
#include "../primitives/ldmatrix.cuh"
#include "../primitives/mbarrier.cuh"
#include "../primitives/smem_io.cuh"
#include "../primitives/tma.cuh"
#include "../primitives/warpgroup.cuh"
#include "../primitives/wgmma.cuh"
#include "fwd_sm90.h"
#include "fwd_sm90_config.h"

namespace flash::cuda::sm90 {

template <int kD_, bool kMasked_>
struct Sm90Cfg {
    static constexpr Sm90Tile kTile = sm90_tile(kD_, kMasked_);
    static constexpr int kD = kD_;
    static constexpr int kCons = kTile.consumers;
    static constexpr int kBM = 64 * kCons;
    static constexpr int kBN = kTile.block_n;
    static constexpr int kStages = kTile.stages;
    static constexpr bool kOverlap = kTile.overlap;
    static constexpr bool kPingpong = kTile.pingpong;
    static constexpr int kRegP = kTile.reg_producer, kRegC = kTile.reg_consumer;
    static constexpr int kThreads = 128 * (kCons + 1);
    static constexpr int kCB = kD / 64;               // 64-element (128-byte) column blocks of a row
    static constexpr int kQBytes = kBM * kD * 2;      // Q tile: kCB blocks of [kBM rows][128 B]
    static constexpr int kKVBytes = kBN * kD * 2;     // one K or V slot: kCB blocks of [kBN rows][128 B]
    static constexpr int kBarBytes = 1024;            // mbarriers, padded so the tiles stay 1024-aligned
    static constexpr int kSmem = 1024 /* alignment slack */ + kBarBytes + kQBytes + 2 * kStages * kKVBytes;
    static_assert(kTile.d == kD_, "head dim missing from kSm90Tiles");
    static_assert(kD % 64 == 0 && kBN % 16 == 0 && kBN <= 256 && kBM <= 256, "tile shape");
    static_assert(kSmem <= 227 * 1024, "shared memory");
    static_assert(128 * (kRegP + kCons * kRegC) <= 65536, "register budget");
    static_assert((kBN * 128) % 1024 == 0, "block_n must keep column blocks 1024-byte aligned");
    static_assert(!kPingpong || kCons == 2, "ping-pong needs two consumer warpgroups");
};

template <class Cfg, bool kBf16, bool kMasked, bool kSoftcap>
__global__ void __launch_bounds__(Cfg::kThreads, 1) fwd_sm90_kernel(const __grid_constant__ Sm90Params P) {
#if FLASH_SM90A
    using namespace prim;
    constexpr int D = Cfg::kD, BM = Cfg::kBM, BN = Cfg::kBN, S = Cfg::kStages, CB = Cfg::kCB;
    constexpr int kNT = BN / 8; // n8 column tiles of S
    constexpr float kLn2 = 0.6931471805599453f;
    const FwdParams& p = P.f;

    extern __shared__ unsigned char smem_raw[];
    const uint32_t raw = smem_u32addr(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    const uint32_t bar_q = base;
    auto k_full = [&](int s) { return base + 8u * (1 + s); };
    auto k_empty = [&](int s) { return base + 8u * (1 + S + s); };
    auto v_full = [&](int s) { return base + 8u * (1 + 2 * S + s); };
    auto v_empty = [&](int s) { return base + 8u * (1 + 3 * S + s); };
    const uint32_t sQ = base + Cfg::kBarBytes;
    const uint32_t sK = sQ + Cfg::kQBytes;
    const uint32_t sV = sK + S * Cfg::kKVBytes;

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;

    // ---- per-sequence geometry: api/seqinfo.h, as in fwd_kernel.cuh ----
    const int num_m_blocks = gridDim.x;
    const int m_block = kMasked ? (num_m_blocks - 1 - int(blockIdx.x)) : int(blockIdx.x); // heavy causal blocks first
    const int hi = blockIdx.y, bi = blockIdx.z;
    const int hki = hi / p.group;
    int64_t q_row0 = 0;
    int sq = p.seqlen_q;
    if (p.cu_seqlens_q) {
        q_row0 = p.cu_seqlens_q[bi];
        sq = p.cu_seqlens_q[bi + 1] - p.cu_seqlens_q[bi];
    }
    if (p.seqused_q) sq = p.seqused_q[bi];
    const int leftpad = p.leftpad_k ? p.leftpad_k[bi] : 0;
    int64_t k_row0 = 0;
    int kend = p.seqlen_k;
    if (p.cu_seqlens_k) {
        k_row0 = p.cu_seqlens_k[bi];
        kend = p.cu_seqlens_k[bi + 1] - p.cu_seqlens_k[bi];
    }
    if (p.seqused_k) kend = p.seqused_k[bi];
    k_row0 += leftpad;
    const int sk = kend - leftpad;
    const int m0 = m_block * BM;
    if (m0 >= sq) return;
    const int64_t diag = int64_t(sk) - sq;

    int n_end = (sk + BN - 1) / BN, n_begin = 0;
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
    const int ntiles = n_end > n_begin ? n_end - n_begin : 0;
    auto nblk = [&](int j) { return n_end - 1 - j; };
    // Row origin of block n's box inside the sequence: n * BN, or sk - BN for the partial last block.
    auto origin = [&](int n) { return n * BN + BN > sk ? sk - BN : n * BN; };

    if (tid == 0) {
        mbar_init(bar_q, 1);
#pragma unroll
        for (int s = 0; s < S; ++s) {
            mbar_init(k_full(s), 1);
            mbar_init(v_full(s), 1);
            mbar_init(k_empty(s), 128 * Cfg::kCons);
            mbar_init(v_empty(s), 128 * Cfg::kCons);
        }
        mbar_fence_init();
    }
    __syncthreads();

    if (wg == 0) {
        // ================= producer =================
        setmaxnreg_dec<Cfg::kRegP>();
        if (warp == 0 && lane == 0 && ntiles > 0) {
            tma_prefetch_map(&P.tm_q);
            tma_prefetch_map(&P.tm_k);
            tma_prefetch_map(&P.tm_v);
            const int qb = p.cu_seqlens_q ? 0 : bi, kb = p.cu_seqlens_k ? 0 : bi;
            const int q_row = int(q_row0) + m0;
            mbar_arrive_expect_tx(bar_q, Cfg::kQBytes);
#pragma unroll
            for (int c = 0; c < CB; ++c) tma_load_4d(sQ + c * BM * 128, &P.tm_q, bar_q, c * 64, q_row, hi, qb);
            for (int j = 0; j < ntiles; ++j) {
                const int s = j % S;
                const uint32_t ph = (j / S) & 1;
                const int row = int(k_row0) + origin(nblk(j));
                mbar_wait(k_empty(s), ph ^ 1);
                mbar_arrive_expect_tx(k_full(s), Cfg::kKVBytes);
#pragma unroll
                for (int c = 0; c < CB; ++c)
                    tma_load_4d(sK + s * Cfg::kKVBytes + c * BN * 128, &P.tm_k, k_full(s), c * 64, row, hki, kb);
                mbar_wait(v_empty(s), ph ^ 1);
                mbar_arrive_expect_tx(v_full(s), Cfg::kKVBytes);
#pragma unroll
                for (int c = 0; c < CB; ++c)
                    tma_load_4d(sV + s * Cfg::kKVBytes + c * BN * 128, &P.tm_v, v_full(s), c * 64, row, hki, kb);
            }
        }
        return;
    }

    // ================= consumers =================
    setmaxnreg_inc<Cfg::kRegC>();
    const int cw = wg - 1, wl = warp & 3, g = lane >> 2, q = lane & 3;
    const int row_l = 64 * cw + 16 * wl + g; // this thread's first row in the CTA tile; the second is +8

    const float sl2 = kSoftcap ? 1.f : p.scale_log2; // stored score -> log2 units
    float o[D / 2];
    float s[BN / 2];
    uint32_t pf[BN / 16][4];
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o[i] = 0.f;

    auto issue_s = [&](int st) {
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
            const uint32_t cb = (ks / 4), off = (ks % 4) * 32;
            const uint64_t da = desc_kmajor_sw128(sQ + cb * BM * 128 + cw * 64 * 128 + off);
            const uint64_t db = desc_kmajor_sw128(sK + st * Cfg::kKVBytes + cb * BN * 128 + off);
            wgmma_ss<BN, kBf16, 0>(s, da, db, ks > 0 ? 1u : 0u);
        }
        wgmma_commit();
    };
    auto issue_pv = [&](int st) {
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) {
            const uint64_t db = desc_mnmajor_sw128(sV + st * Cfg::kKVBytes + ks * 16 * 128, BN * 128);
            wgmma_rs<D, kBf16, 1>(o, pf[ks], db, 1u);
        }
        wgmma_commit();
    };
    // Ping-pong: consumer c issues its GEMMs only after the other one has issued its own (named barrier
    // kSched + c, 256 threads: this warpgroup's 128 syncing + the other's 128 arriving). Consumer 1 hands
    // the first turn to consumer 0; consumer 0 takes one extra turn at the end, so every arrive is consumed.
    constexpr int kSched = 1 + Cfg::kCons; // ids 1 .. kCons are the epilogue barriers
    auto sched_wait = [&]() {
        if constexpr (Cfg::kPingpong) named_barrier_sync(kSched + cw, 256);
    };
    auto sched_pass = [&]() {
        if constexpr (Cfg::kPingpong) named_barrier_arrive(kSched + (1 - cw), 256);
    };
    if (cw == 1) sched_pass();

    auto fence_p = [&]() {
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) fence_operand(pf[kk]);
    };

    // Scores of block j (in s) -> probabilities in place; returns the O rescale factors in alpha.
    auto softmax = [&](int j, float (&alpha)[2]) {
        const int n = nblk(j);
        const int e0 = origin(n);
        if constexpr (kSoftcap) {
#pragma unroll
            for (int i = 0; i < BN / 2; ++i) s[i] = p.softcap_log2 * tanhf(s[i] * p.scale_over_softcap);
        }
        bool need_mask = n * BN + BN > sk;
        if constexpr (kMasked) {
            if (p.win_right >= 0 && int64_t(n) * BN + BN - 1 > int64_t(m0) + diag + p.win_right) need_mask = true;
            if (p.win_left >= 0 && int64_t(n) * BN < int64_t(m0) + BM - 1 + diag - p.win_left) need_mask = true;
        }
        if (need_mask) {
            // Column c of the box is key e0 + c. Visible: c in [lo, hi) and, per row, within the window.
            // Limits are clamped to [-1, BN + 1] so the per-element tests stay in 32 bits.
            auto clampi = [](int64_t x) { return int(x < -1 ? -1 : x > BN + 1 ? BN + 1 : x); };
            const int lo = n * BN - e0, hi_end = clampi(int64_t(sk) - e0);
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int64_t a = int64_t(m0) + row_l + 8 * r + diag - e0; // key of the diagonal, box-relative
                int lo_r = lo, hi_r = hi_end;                             // visible iff lo_r <= c < hi_r
                if constexpr (kMasked) {
                    if (p.win_right >= 0) hi_r = min(hi_r, clampi(a + p.win_right + 1));
                    if (p.win_left >= 0) lo_r = max(lo_r, clampi(a - p.win_left));
                }
#pragma unroll
                for (int t = 0; t < kNT; ++t)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const int c = 8 * t + 2 * q + e;
                        if (c < lo_r || c >= hi_r) s[4 * t + 2 * r + e] = -INFINITY;
                    }
            }
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float old = row_max[r];
            float mx = old;
#pragma unroll
            for (int t = 0; t < kNT; ++t) mx = fmaxf(mx, fmaxf(s[4 * t + 2 * r], s[4 * t + 2 * r + 1]));
            mx = quad_max(mx);
            const float m_use = mx == -INFINITY ? 0.f : mx;
            const float ms = m_use * sl2;
            alpha[r] = exp2_approx(old * sl2 - ms);
            row_max[r] = mx;
            float sum = 0.f;
#pragma unroll
            for (int t = 0; t < kNT; ++t)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float pe = exp2_approx(fmaf(s[4 * t + 2 * r + e], sl2, -ms));
                    s[4 * t + 2 * r + e] = pe;
                    sum += pe;
                }
            row_sum[r] = row_sum[r] * alpha[r] + sum;
        }
    };
    auto to_p = [&]() {
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
            pf[kk][0] = pack2<kBf16>(s[8 * kk + 0], s[8 * kk + 1]);
            pf[kk][1] = pack2<kBf16>(s[8 * kk + 2], s[8 * kk + 3]);
            pf[kk][2] = pack2<kBf16>(s[8 * kk + 4], s[8 * kk + 5]);
            pf[kk][3] = pack2<kBf16>(s[8 * kk + 6], s[8 * kk + 7]);
        }
    };
    auto rescale = [&](const float (&alpha)[2]) {
#pragma unroll
        for (int t = 0; t < D / 8; ++t) {
            o[4 * t + 0] *= alpha[0];
            o[4 * t + 1] *= alpha[0];
            o[4 * t + 2] *= alpha[1];
            o[4 * t + 3] *= alpha[1];
        }
    };

    if (ntiles > 0) {
        mbar_wait(bar_q, 0);
        if constexpr (Cfg::kOverlap) {
            float alpha[2];
            mbar_wait(k_full(0), 0);
            sched_wait();
            issue_s(0);
            sched_pass();
            wgmma_wait<0>();
            fence_operand(s);
            mbar_arrive(k_empty(0));
            softmax(0, alpha);
            to_p();
            for (int j = 1; j < ntiles; ++j) {
                const int st = j % S, pst = (j - 1) % S;
                const uint32_t ph = (j / S) & 1, pph = ((j - 1) / S) & 1;
                mbar_wait(k_full(st), ph);
                mbar_wait(v_full(pst), pph);
                sched_wait();
                issue_s(st);
                issue_pv(pst);
                sched_pass();
                wgmma_wait<1>();
                fence_operand(s);
                mbar_arrive(k_empty(st));
                softmax(j, alpha);
                wgmma_wait<0>();
                fence_operand(o);
                fence_p();
                mbar_arrive(v_empty(pst));
                rescale(alpha);
                to_p();
            }
            const int lst = (ntiles - 1) % S;
            mbar_wait(v_full(lst), ((ntiles - 1) / S) & 1);
            issue_pv(lst);
            wgmma_wait<0>();
            fence_operand(o);
            fence_p();
            mbar_arrive(v_empty(lst));
        } else {
            for (int j = 0; j < ntiles; ++j) {
                const int st = j % S;
                const uint32_t ph = (j / S) & 1;
                float alpha[2];
                mbar_wait(k_full(st), ph);
                sched_wait();
                issue_s(st);
                sched_pass();
                wgmma_wait<0>();
                fence_operand(s);
                mbar_arrive(k_empty(st));
                softmax(j, alpha);
                rescale(alpha);
                to_p();
                mbar_wait(v_full(st), ph);
                issue_pv(st);
                wgmma_wait<0>();
                fence_operand(o);
                fence_p();
                mbar_arrive(v_empty(st));
            }
        }
    }

    if (cw == 0) sched_wait(); // consume consumer 1's last hand-over (a barrier left half-arrived at exit)

    // ---- epilogue: deferred 1/l, LSE (natural log), O through this warpgroup's own rows of sQ ----
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const float l = quad_sum(row_sum[r]);
        const bool any = l > 0.f;
        const float inv = any ? 1.f / l : 0.f;
        const float lse = any ? row_max[r] * sl2 * kLn2 + __logf(l) : INFINITY;
#pragma unroll
        for (int t = 0; t < D / 8; ++t) {
            o[4 * t + 2 * r] *= inv;
            o[4 * t + 2 * r + 1] *= inv;
        }
        const int i = m0 + row_l + 8 * r;
        if (p.lse && q == 0 && i < sq) {
            const int64_t idx = p.lse_unpadded ? int64_t(hi) * p.total_q + q_row0 + i
                                               : (int64_t(bi) * p.h + hi) * p.seqlen_q + i;
            p.lse[idx] = lse;
        }
    }
    // Every wgmma of this warpgroup has retired (wait<0> above), so its rows of sQ are free to reuse.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = row_l + 8 * r;
#pragma unroll
        for (int t = 0; t < D / 8; ++t) {
            const uint32_t addr = sQ + (t / 8) * BM * 128 + row * 128 + (((t % 8) ^ (row & 7)) * 16) + 4 * q;
            const uint32_t v = pack2<kBf16>(o[4 * t + 2 * r], o[4 * t + 2 * r + 1]);
            st_shared_b32(addr, v);
        }
    }
    named_barrier_sync(1 + cw, 128);
    uint16_t* gO = static_cast<uint16_t*>(p.o) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.o_batch) +
                   (q_row0 + m0) * p.o_row + int64_t(hi) * p.o_head;
    constexpr int kRowChunks = D / 8;
    const int tw = tid - 128 * wg;
#pragma unroll
    for (int it = 0; it < 64 * kRowChunks / 128; ++it) {
        const int idx = it * 128 + tw;
        const int rl = idx / kRowChunks, ch = idx % kRowChunks;
        const int row = 64 * cw + rl, col = ch * 8;
        if (m0 + row >= sq || col >= p.dv) continue;
        const uint32_t addr = sQ + (ch / 8) * BM * 128 + row * 128 + (((ch % 8) ^ (row & 7)) * 16);
        const uint4 u = ld_shared_v4(addr);
        uint16_t* dst = gO + int64_t(row) * p.o_row + col;
        if (col + 8 <= p.dv) {
            *reinterpret_cast<uint4*>(dst) = u;
        } else {
            const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
            for (int k = 0; k < 8; ++k)
                if (col + k < p.dv) dst[k] = uint16_t(w[k >> 1] >> (16 * (k & 1)));
        }
    }
#else
    FLASH_ARCH_TRAP();
#endif
}

} // namespace flash::cuda::sm90
