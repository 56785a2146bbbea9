// FlashAttention backward for Hopper (sm_90a): TMA loads, wgmma, warp specialization (issue 6).
//
// One CTA = 128 keys (block_n) of one (KV head, batch); it walks every query head of the KV head's group and
// every query block of block_m rows that sees one of its keys (causal / local: only those), like the sm80
// kernel (bwd/bwd_kernel.cuh), whose workspace contract it keeps: D = rowsum(dO * O) from the dispatcher's
// preprocessing kernel, dQ added in fp32 into dq_accum [h][acc_rows][d] and converted by the dispatcher.
// 384 threads:
// - warpgroup 0 is the producer (few registers, setmaxnreg): one thread loads K and V once and then Q and dO
//   of each step into a `stages`-deep ring with TMA; warp 1 writes the step's LSE (log2 units, +inf past the
//   sequence) and D into the ring slot. Each slot has a "full" mbarrier (lane 0 of warp 0 with the copies'
//   transaction bytes + the 32 lanes of warp 1) and an "empty" one (the 256 consumer threads release it).
//   Persistent: CTAs stride over the work tiles; a tile's K / V load waits on a "kv empty" barrier (the
//   consumers' last GEMMs of the previous tile), after its first Q / dO step is already in flight.
// - warpgroups 1 and 2 are consumers, 64 keys each (cw = 0, 1), computing transposed scores so that P^T and
//   dS^T land in registers as wgmma A operands:
//     S^T  = K Q^T, dP^T = V dO^T             wgmma SS, both K-major (64 keys x block_m queries)
//     P^T  = exp2(S^T * scale*log2e - LSE2[query]),  dS^T = P^T * (dP^T - D[query])   (masked as the sm80 kernel)
//     dS^T -> shared (16 bit, [keys][queries] with 128-byte swizzle: the MN-major A layout of dQ's GEMM)
//     dV  += P^T dO, dK += dS^T Q             wgmma RS, B = dO / Q read MN-major (the forward's V)
//     dQ   = dS K                             wgmma SS, A = dS^T read transposed, B = K read MN-major; each
//                                             warpgroup computes one 64 x 64 quarter/half of dQ (block_m 128:
//                                             query rows 64 cw.., d64; block_m 64: columns 64 cw.., d128), after
//                                             a named barrier that makes both halves of dS^T visible; added
//                                             into dq_accum by float2 atomics from registers (default), or
//                                             (kBulkDq) by the copy engine: each warp stages its 16 rows in
//                                             shared memory, cp.reduce.async.bulk .add.f32 per row.
//   dK is scaled by the softmax scale at the end; dK / dV leave from registers (quads write 16 bytes).
// dS^T is double-buffered, so one named barrier per step orders its reuse (a warpgroup writes buffer b again
// two steps later, after the other has passed the next step's barrier, i.e. after its dQ GEMM on b retired).
//
// Features on this path: fp16/bf16, causal / local windows, GQA/MQA, dense (b, s) layouts and varlen by
// cu_seqlens_q / cu_seqlens_k (tile_of below). The dispatcher (hopper/bwd_sm90.cu) routes dropout, ALiBi,
// softcap, seqused, leftpad and deterministic to sm80.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../primitives/fastmath.cuh"
#include "../primitives/fragment.cuh"
#include "../primitives/ldmatrix.cuh"
#include "../primitives/mbarrier.cuh"
#include "../primitives/smem_io.cuh"
#include "../primitives/tma.cuh"
#include "../primitives/warpgroup.cuh"
#include "../primitives/wgmma.cuh"
#include "bwd_sm90.h"
#include "bwd_sm90_config.h"

namespace flash::cuda::sm90 {

template <int kD_>
struct Bwd90Cfg {
    static constexpr Bwd90Tile kTile = bwd90_tile(kD_);
    static constexpr int kD = kD_;
    static constexpr int kBM = kTile.block_m;
    static constexpr int kBN = kTile.block_n;
    static constexpr int kStages = kTile.stages;
    static constexpr int kRegP = kTile.reg_producer, kRegC = kTile.reg_consumer;
    static constexpr int kThreads = 384;
    static constexpr int kCB = kD / 64;            // 64-element (128-byte) column blocks of a row
    static constexpr int kKBytes = kBN * kD * 2;   // K or V: kCB blocks of [kBN rows][128 B]
    static constexpr int kQBytes = kBM * kD * 2;   // one Q or dO slot: kCB blocks of [kBM rows][128 B]
    static constexpr int kSBytes = kBN * kBM * 2;  // one dS^T buffer: kBM / 64 blocks of [kBN keys][128 B]
    static constexpr int kStatOff = 256;           // LSE / D ring: stages x (kBM + kBM) floats
    static constexpr int kBarBytes = ((kStatOff + kStages * kBM * 8) + 1023) / 1024 * 1024;
    static constexpr int kOffK = kBarBytes;
    static constexpr int kOffV = kOffK + kKBytes;
    static constexpr int kOffQ = kOffV + kKBytes;
    static constexpr int kOffDO = kOffQ + kStages * kQBytes;
    static constexpr int kOffS = kOffDO + kStages * kQBytes;
    static constexpr int kDqPitch = 288;           // dQ staging rows: 64 floats + 32 B (conflict-free v2 stores)
    static constexpr int kOffDq = kOffS + 2 * kSBytes; // 2 warpgroups x 64 rows x kDqPitch
    static constexpr int kSmem = 1024 /* alignment slack */ + kOffDq + 2 * 64 * kDqPitch;
    // dQ split: each consumer warpgroup owns a 64 x 64 piece: (query block, column block) = (cw, 0) or (0, cw)
    static constexpr bool kSplitRows = kBM == 128;
    static_assert(kTile.d == kD_, "head dim missing from kBwd90Tiles");
    static_assert(kBN == 128, "two consumer warpgroups of 64 keys");
    static_assert((kBM == 128 && kD == 64) || (kBM == 64 && kD == 128), "dQ split covers 64x128 or 128x64");
    static_assert(kSmem <= 227 * 1024 && kSmem == bwd90_smem_bytes(kTile), "shared memory");
    static constexpr int kLaunchRegs = (65536 / kThreads) / 8 * 8;
    static_assert(kRegP + 2 * kRegC <= 3 * kLaunchRegs, "setmaxnreg budget exceeds the launch allocation");
};

// One sequence's lengths and first rows (api/seqinfo.h; varlen: cu_seqlens_q / cu_seqlens_k).
struct Seq90 {
    int sq, sk;
    int q_row0, k_row0, acc_row0; // first rows: Q / dO, K / V / dK / dV, dsum / dq_accum
};

// One work tile's geometry (bwd_sm90_kernel's tile_of).
struct Tile90Geom {
    int n0;       // first key of the block (sequence-relative)
    int e0;       // first key of its K / V box: n0, or sk - BN for the partial last block
    int hki, bi;  // KV head, batch / sequence
    int m_begin;  // first query block that sees a key of the block
    int nm;       // query blocks that do (0: nothing to do)
    int sq, sk;   // the sequence's lengths
    int q_row0, k_row0, acc_row0; // its first rows: Q / dO, K / V / dK / dV, dsum / dq_accum
};

template <class Cfg, bool kBf16, bool kMasked, bool kBulkDq>
__global__ void __launch_bounds__(Cfg::kThreads, 1) bwd_sm90_kernel(const __grid_constant__ Bwd90Params P) {
#if FLASH_SM90A
    using namespace prim;
    constexpr int D = Cfg::kD, BM = Cfg::kBM, BN = Cfg::kBN, S = Cfg::kStages, CB = Cfg::kCB;
    constexpr float kLog2e = 1.4426950408889634f;
    const BwdParams& p = P.b;

    extern __shared__ unsigned char smem_raw[];
    const uint32_t raw = smem_u32addr(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char* const gbase = smem_raw + (base - raw); // the same bytes through a generic pointer
    const uint32_t kv_full = base, kv_empty = base + 8u;
    auto q_full = [&](int s) { return base + 16u + 8u * s; };
    auto q_empty = [&](int s) { return base + 16u + 8u * (S + s); };
    float* const sStat = reinterpret_cast<float*>(gbase + Cfg::kStatOff); // [S][LSE BM | D BM]
    const uint32_t sK = base + Cfg::kOffK, sV = base + Cfg::kOffV, sQ = base + Cfg::kOffQ,
                   sdO = base + Cfg::kOffDO, sdS = base + Cfg::kOffS;

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;

    // Work tile t -> (key block, KV head, batch) and its query steps. Tiles come in groups of group_heads
    // (KV head, batch) pairs, key block slowest inside a group: group_heads = 1 is head-major (a head's key
    // blocks side by side, sharing its Q / dO in L2); causal takes larger groups so that the heaviest key
    // blocks (the first ones) start first (bwd_sm90.cu).
    // Per sequence (varlen: cu_seqlens_q / cu_seqlens_k, api/seqinfo.h): tg.sq / tg.sk its lengths, tg.q_row0 /
    // tg.k_row0 its first rows in the collapsed (total rows) tensors, tg.acc_row0 its first workspace row. Key
    // blocks come from n_blocks = ceil(max_seqlen_k / BN); a block past the sequence (n0 >= sk) has no steps.
    // The K / V box of the last, partial key block ends at the sequence's last key (tg.e0 = sk - BN, negative
    // rows zero-filled by TMA): a box never reads past the sequence (varlen K has no host-known total length),
    // and its leading keys below n0 (the previous block's) are masked. Query blocks past sq read the next
    // sequence's rows (or TMA's zeros): LSE = +inf there, so P = dS = 0 and no dQ row is written.
    auto seq_of = [&](int bi) {
        Seq90 sg;
        sg.sq = p.seqlen_q;
        sg.sk = p.seqlen_k;
        sg.q_row0 = 0;
        sg.k_row0 = 0;
        sg.acc_row0 = bi * p.seqlen_q;
        if (vq) {
            sg.q_row0 = p.cu_seqlens_q[bi];
            sg.sq = p.cu_seqlens_q[bi + 1] - sg.q_row0;
            sg.acc_row0 = sg.q_row0;
        }
        if (vk) {
            sg.k_row0 = p.cu_seqlens_k[bi];
            sg.sk = p.cu_seqlens_k[bi + 1] - sg.k_row0;
        }
        return sg;
    };
    auto tile_of = [&](int t, Tile90Geom& tg) {
        int& n0 = tg.n0;
        int& bi = tg.bi;
        const int hb = p.hk * p.b, G = P.group_heads;
        const int gsz = G * P.n_blocks;
        const int grp = t / gsz, within = t - grp * gsz;
        const int gh = min(G, hb - grp * G);
        const int nb = within / gh;
        const int head = grp * G + (within - nb * gh);
        bi = head / p.hk;
        tg.hki = head - bi * p.hk;
        n0 = nb * BN;
        const Seq90 sg = seq_of(bi);
        const int sq = sg.sq, sk = sg.sk;
        tg.q_row0 = sg.q_row0;
        tg.k_row0 = sg.k_row0;
        tg.acc_row0 = sg.acc_row0;
        tg.sq = sq;
        tg.sk = sk;
        tg.e0 = n0 + BN > sk ? sk - BN : n0;
        // Query rows that see at least one key of [n0, n0 + BN): the visible range is monotone in the row.
        // 32-bit: sequence lengths < 2^28 (bwd_sm90.cu), windows clamped to 2^29 (beyond any distance).
        int r_lo = 0, r_hi = sq - 1;
        if constexpr (kMasked) {
            const int dg = sk - sq;
            if (p.win_right >= 0) r_lo = max(r_lo, n0 - min(p.win_right, 1 << 29) - dg);
            if (p.win_left >= 0) r_hi = min(r_hi, min(n0 + BN, sk) - 1 + min(p.win_left, 1 << 29) - dg);
        }
        if (n0 >= sk) r_hi = -1; // no key of this sequence in the block (sk == 0 included)
        tg.m_begin = r_lo <= r_hi ? r_lo / BM : 0;
        tg.nm = r_lo <= r_hi ? r_hi / BM + 1 - tg.m_begin : 0;
    };

    if (tid == 0) {
        mbar_init(kv_full, 1);
        mbar_init(kv_empty, 256);
#pragma unroll
        for (int s = 0; s < S; ++s) {
            mbar_init(q_full(s), 33);
            mbar_init(q_empty(s), 256);
        }
        mbar_fence_init();
    }
    __syncthreads();

    // Producer and consumers walk the same tiles (blockIdx.x, + gridDim.x, ...: persistent CTAs, or one tile
    // each) and skip the same empty ones, so the ring position `it` (steps so far) and the K/V use count `kvu`
    // agree without further communication.
    if (wg == 0) {
        // ================= producer =================
        setmaxnreg_dec<Cfg::kRegP>();
        // Warp 0, lane 0: the TMA copies; warp 1: the step's LSE / D rows (two small code paths, so the producer
        // fits kRegP registers). A slot's "full" barrier takes 33 arrivals (lane 0's with the bytes + warp 1's).
        if (warp == 0 && lane == 0) {
            tma_prefetch_map(&P.tm_q);
            tma_prefetch_map(&P.tm_k);
            tma_prefetch_map(&P.tm_v);
            tma_prefetch_map(&P.tm_do);
            // Few live values (this thread runs under kRegP registers): per tile the first Q row, the K row and
            // the batch coordinate; per step the head offset hh and the query block mb.
            int it = 0, kvu = 0;
            for (int t = blockIdx.x; t < P.num_tiles; t += gridDim.x) {
                int qr0, kr, hki, bc, nm;
                {
                    Tile90Geom tg;
                    tile_of(t, tg);
                    nm = tg.nm;
                    qr0 = tg.q_row0 + tg.m_begin * BM;
                    kr = tg.k_row0 + tg.e0;
                    hki = tg.hki;
                    bc = tg.bi; // the batch coordinate: 0 where the batch dimension collapsed (varlen)
                }
                if (nm == 0) continue;
                for (int hh = 0; hh < p.group; ++hh)
                    for (int mb = 0; mb < nm; ++mb, ++it) {
                        const int s = it % S;
                        const int hi = hki * p.group + hh;
                        const int qr = qr0 + mb * BM, qb = vq ? 0 : bc;
                        mbar_wait(q_empty(s), ((it / S) & 1) ^ 1);
                        mbar_arrive_expect_tx(q_full(s), 2 * Cfg::kQBytes);
#pragma unroll
                        for (int c = 0; c < CB; ++c) {
                            tma_load_4d(sQ + s * Cfg::kQBytes + c * BM * 128, &P.tm_q, q_full(s), c * 64, qr, hi, qb);
                            tma_load_4d(sdO + s * Cfg::kQBytes + c * BM * 128, &P.tm_do, q_full(s), c * 64, qr, hi, qb);
                        }
                        if (hh == 0 && mb == 0) {
                            // This tile's K / V once the previous tile's last GEMMs have retired (its first step's
                            // Q / dO is already on the way: that ring slot was free earlier).
                            const int kb = vk ? 0 : bc;
                            mbar_wait(kv_empty, (kvu & 1) ^ 1);
                            mbar_arrive_expect_tx(kv_full, 2 * Cfg::kKBytes);
#pragma unroll
                            for (int c = 0; c < CB; ++c) {
                                tma_load_4d(sK + c * BN * 128, &P.tm_k, kv_full, c * 64, kr, hki, kb);
                                tma_load_4d(sV + c * BN * 128, &P.tm_v, kv_full, c * 64, kr, hki, kb);
                            }
                        }
                    }
                ++kvu;
            }
        } else if (warp == 1) {
            int it = 0;
            for (int t = blockIdx.x; t < P.num_tiles; t += gridDim.x) {
                // Per tile: rows left in the sequence from the first query block (rem), the LSE / dsum offsets of
                // that block's first row for head hki * group (lb, db) and their per-head strides.
                int nm, rem, lb, db;
                {
                    Tile90Geom tg;
                    tile_of(t, tg);
                    nm = tg.nm;
                    const int m00 = tg.m_begin * BM, hi0 = tg.hki * p.group;
                    rem = tg.sq - m00;
                    // 32-bit offsets: h * acc_rows < 2^31 (bwd.cu checks), b * h * seqlen_q too (bwd_sm90.cu)
                    lb = (p.lse_unpadded ? hi0 * p.total_q + tg.q_row0 : (tg.bi * p.h + hi0) * p.seqlen_q) + m00;
                    db = hi0 * p.acc_rows + tg.acc_row0 + m00;
                }
                for (int hh = 0; hh < p.group; ++hh, lb += p.lse_unpadded ? p.total_q : p.seqlen_q, db += p.acc_rows)
                    for (int mb = 0; mb < nm; ++mb, ++it) {
                        const int s = it % S;
                        mbar_wait(q_empty(s), ((it / S) & 1) ^ 1);
                        const int o = mb * BM;
#pragma unroll 1
                        for (int i = lane; i < BM; i += 32) {
                            const bool in = o + i < rem;
                            const uint32_t a = base + uint32_t(Cfg::kStatOff + (s * 2 * BM + i) * 4);
                            st_shared_b32(a, __float_as_uint(in ? p.lse[lb + o + i] * kLog2e : INFINITY));
                            st_shared_b32(a + BM * 4, __float_as_uint(in ? p.dsum[db + o + i] : 0.f));
                        }
                        mbar_arrive(q_full(s));
                    }
            }
        }
        return;
    }

    // ================= consumers =================
    setmaxnreg_inc<Cfg::kRegC>();
    const int cw = wg - 1, wl = warp & 3, g = lane >> 2, q = lane & 3;
    const int key_l = 64 * cw + 16 * wl + g; // this thread's first key row in the CTA tile; the second is +8
    const int mq = Cfg::kSplitRows ? cw : 0, nq = Cfg::kSplitRows ? 0 : cw; // this warpgroup's dQ piece

    float dk[D / 2], dv[D / 2];
    int it = 0, kvu = 0;
    for (int t = blockIdx.x; t < P.num_tiles; t += gridDim.x) {
        // Held across the steps: the block, heads and query range; the sequence's lengths and first rows are
        // read again where needed (seq_of: cached loads) instead of living in registers through the GEMMs.
        int n_it;
        {
        int n0, hki, bi, m_begin, nm;
        {
            Tile90Geom tg;
            tile_of(t, tg);
            n0 = tg.n0, hki = tg.hki, bi = tg.bi, m_begin = tg.m_begin, nm = tg.nm;
        }
        n_it = nm * p.group;
#pragma unroll
        for (int i = 0; i < D / 2; ++i) dk[i] = dv[i] = 0.f;

        if (n_it > 0) mbar_wait(kv_full, kvu & 1);
        for (int j = 0; j < n_it; ++j, ++it) {
            const int s = it % S;
            const uint32_t ph = (it / S) & 1;
            const int hi = hki * p.group + j / nm;
            const int m0 = (m_begin + j % nm) * BM;
            const uint32_t sQs = sQ + s * Cfg::kQBytes, sdOs = sdO + s * Cfg::kQBytes;
            const uint32_t sdSb = sdS + (it & 1) * Cfg::kSBytes;
            mbar_wait(q_full(s), ph);

            uint32_t pf[BM / 16][4], dsf[BM / 16][4];
            {
                float st[BM / 2], dpt[BM / 2];
                wgmma_fence();
#pragma unroll
                for (int ks = 0; ks < D / 16; ++ks) {
                    const uint32_t cb = ks / 4, off = (ks % 4) * 32;
                    wgmma_ss<BM, kBf16, 0>(st, desc_kmajor_sw128(sK + cb * BN * 128 + cw * 64 * 128 + off),
                                           desc_kmajor_sw128(sQs + cb * BM * 128 + off), ks > 0 ? 1u : 0u);
                }
#pragma unroll
                for (int ks = 0; ks < D / 16; ++ks) {
                    const uint32_t cb = ks / 4, off = (ks % 4) * 32;
                    wgmma_ss<BM, kBf16, 0>(dpt, desc_kmajor_sw128(sV + cb * BN * 128 + cw * 64 * 128 + off),
                                           desc_kmajor_sw128(sdOs + cb * BM * 128 + off), ks > 0 ? 1u : 0u);
                }
                wgmma_commit();
                wgmma_wait<0>();
                fence_operand(st);
                fence_operand(dpt);

                const Seq90 sg = seq_of(bi);
                const int sk = sg.sk;
                const int e0 = n0 + BN > sk ? sk - BN : n0;
                const int64_t diag = int64_t(sk - sg.sq); // lengths < 2^28
                bool need_mask = n0 + BN > sk;
                if constexpr (kMasked) {
                    if (p.win_right >= 0 && int64_t(n0) + BN - 1 > int64_t(m0) + diag + p.win_right) need_mask = true;
                    if (p.win_left >= 0 && int64_t(n0) < int64_t(m0) + BM - 1 + diag - p.win_left) need_mask = true;
                }
                const float* lse2 = sStat + s * 2 * BM;
                const float* dsum = lse2 + BM;
                // Mask as column limits per key row: query column c (row m0 + c) sees key `key` iff c_lo <= c <= c_hi
                // (key < sk, and the window: key <= i + diag + right, key >= i + diag - left), clamped to [-1, BM].
                int c_lo[2] = {0, 0}, c_hi[2] = {BM, BM};
                if (need_mask) {
                    auto clampi = [](int64_t x) { return int(x < -1 ? -1 : x > BM ? BM : x); };
#pragma unroll
                    for (int r = 0; r < 2; ++r) {
                        const int64_t key = e0 + key_l + 8 * r; // the box starts at e0 <= n0
                        if (key < n0 || key >= sk) {
                            c_lo[r] = BM;
                            c_hi[r] = -1;
                            continue;
                        }
                        if constexpr (kMasked) {
                            const int64_t rel = key - diag - m0; // the column whose diagonal key is `key`
                            if (p.win_right >= 0) c_lo[r] = clampi(rel - p.win_right);
                            if (p.win_left >= 0) c_hi[r] = clampi(rel + p.win_left);
                        }
                    }
                }
#pragma unroll
                for (int j = 0; j < BM / 8; ++j) {
                    const float2 l2 = *reinterpret_cast<const float2*>(lse2 + 8 * j + 2 * q);
                    const float2 d2 = *reinterpret_cast<const float2*>(dsum + 8 * j + 2 * q);
#pragma unroll
                    for (int r = 0; r < 2; ++r)
#pragma unroll
                        for (int e = 0; e < 2; ++e) {
                            const int x = 4 * j + 2 * r + e;
                            float pe = exp2_approx(fmaf(st[x], p.scale_log2, -(e ? l2.y : l2.x)));
                            if (need_mask) {
                                const int c = 8 * j + 2 * q + e;
                                if (c < c_lo[r] || c > c_hi[r]) pe = 0.f;
                            }
                            st[x] = pe;
                            dpt[x] = pe * (dpt[x] - (e ? d2.y : d2.x));
                        }
                }
#pragma unroll
                for (int kk = 0; kk < BM / 16; ++kk) {
#pragma unroll
                    for (int u = 0; u < 4; ++u) {
                        pf[kk][u] = pack2<kBf16>(st[8 * kk + 2 * u], st[8 * kk + 2 * u + 1]);
                        dsf[kk][u] = pack2<kBf16>(dpt[8 * kk + 2 * u], dpt[8 * kk + 2 * u + 1]);
                    }
                }
            }
            // dS^T -> shared: element (key k, query c) at column block c / 64, byte k * 128 + ((c % 64 / 8) ^ (k % 8)) * 16
            // + (c % 8) * 2. dsf[kk][u] holds keys key_l + 8 (u & 1), queries 16 kk + 8 (u >> 1) + 2q .. +1.
#pragma unroll
            for (int kk = 0; kk < BM / 16; ++kk)
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const int j = 2 * kk + (u >> 1); // n8 column tile: queries 8j ..
                    const int krow = key_l + 8 * (u & 1);
                    const uint32_t addr = sdSb + uint32_t((j / 8) * BN * 128 + krow * 128 + (((j % 8) ^ g) << 4) + 4 * q);
                    st_shared_b32(addr, dsf[kk][u]);
                }
            fence_proxy_async_smem();
            named_barrier_sync(1, 256);

            // dQ first (its own commit group), then dV / dK: the dQ atomics run while dV / dK are on the tensor cores.
            float dq[32];
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < BN / 16; ++ks)
                wgmma_ss<64, kBf16, 1, 1>(dq, desc_mnmajor_sw128(sdSb + mq * BN * 128 + ks * 2048, BN * 128),
                                          desc_mnmajor_sw128(sK + nq * BN * 128 + ks * 2048, BN * 128), ks > 0 ? 1u : 0u);
            wgmma_commit();
#pragma unroll
            for (int ks = 0; ks < BM / 16; ++ks)
                wgmma_rs<D, kBf16, 1>(dv, pf[ks], desc_mnmajor_sw128(sdOs + ks * 2048, BM * 128), 1u);
#pragma unroll
            for (int ks = 0; ks < BM / 16; ++ks)
                wgmma_rs<D, kBf16, 1>(dk, dsf[ks], desc_mnmajor_sw128(sQs + ks * 2048, BM * 128), 1u);
            wgmma_commit();
            wgmma_wait<1>();
            fence_operand(dq);

            // dQ piece (rows m0 + 64 mq + 16 wl + g (+8), columns 64 nq + 8 j + 2q) -> dq_accum
            // (the sequence's rows read after the staging stores in the bulk path: fewer registers held there)
            auto dq_rows = [&](int& sq) {
                const Seq90 sg = seq_of(bi);
                sq = sg.sq;
                return p.dq_accum + (int64_t(hi) * p.acc_rows + sg.acc_row0 + m0 + 64 * mq) * D + 64 * nq;
            };
            if constexpr (kBulkDq) {
                // Each warp stages its 16 rows in shared memory and 16 lanes add one 256-byte row each with the
                // copy engine (cp.reduce.async.bulk): no cross-warp barrier, the staging rows are the warp's own.
                const uint32_t sdq = base + Cfg::kOffDq + uint32_t(cw * 64 * Cfg::kDqPitch);
                if (lane < 16) bulk_wait_read<0>(); // the previous step's copies have read this warp's rows
                __syncwarp();
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const uint32_t rowa = sdq + uint32_t((16 * wl + g + 8 * r) * Cfg::kDqPitch + 8 * q);
#pragma unroll
                    for (int j = 0; j < 8; ++j) st_shared_v2_f32(rowa + 32 * j, dq[4 * j + 2 * r], dq[4 * j + 2 * r + 1]);
                }
                fence_proxy_async_smem();
                __syncwarp();
                if (lane < 16) {
                    const int row = 16 * wl + lane;
                    int sq;
                    float* dqa = dq_rows(sq);
                    if (m0 + 64 * mq + row < sq)
                        bulk_reduce_add_f32(dqa + int64_t(row) * D, sdq + uint32_t(row * Cfg::kDqPitch), 256);
                    bulk_commit();
                }
            } else {
                int sq;
                float* dqa = dq_rows(sq);
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const int row = 16 * wl + g + 8 * r;
                    if (m0 + 64 * mq + row >= sq) continue;
                    float* rp = dqa + int64_t(row) * D + 2 * q;
#pragma unroll
                    for (int j = 0; j < 8; ++j)
                        atomicAdd(reinterpret_cast<float2*>(rp + 8 * j),
                                  make_float2(dq[4 * j + 2 * r], dq[4 * j + 2 * r + 1]));
                }
            }

            wgmma_wait<0>();
            fence_operand(dv);
            fence_operand(dk);
#pragma unroll
            for (int kk = 0; kk < BM / 16; ++kk) {
                fence_operand(pf[kk]);
                fence_operand(dsf[kk]);
            }
            mbar_arrive(q_empty(s));
        }
        } // the step loop's geometry
        if (n_it > 0) {
            mbar_arrive(kv_empty); // every GEMM reading this tile's K / V has retired (wgmma_wait<0> above)
            ++kvu;
        }

        // ---- epilogue: dK * scale, dV straight from registers (each quad writes 16 contiguous bytes) ----
        Tile90Geom tg; // again (a few cached loads), rather than registers held across the steps
        tile_of(t, tg);
        const int n0 = tg.n0, e0 = tg.e0, hki = tg.hki, bi = tg.bi, sk = tg.sk;
        uint16_t* gdK = static_cast<uint16_t*>(p.dk_ptr) + (vk ? 0 : int64_t(bi) * p.dk_batch) +
                        int64_t(tg.k_row0) * p.dk_row + int64_t(hki) * p.dk_head;
        uint16_t* gdV = static_cast<uint16_t*>(p.dv_ptr) + (vk ? 0 : int64_t(bi) * p.dv_batch) +
                        int64_t(tg.k_row0) * p.dv_row + int64_t(hki) * p.dv_head;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int key = e0 + key_l + 8 * r;
            if (key < n0 || key >= sk) continue; // the previous block's keys (partial last box) or past the sequence
            uint16_t* krow = gdK + int64_t(key) * p.dk_row;
            uint16_t* vrow = gdV + int64_t(key) * p.dv_row;
#pragma unroll
            for (int j = 0; j < D / 8; ++j) {
                const int col = 8 * j + 2 * q;
                const uint32_t kv = pack2<kBf16>(dk[4 * j + 2 * r] * p.scale, dk[4 * j + 2 * r + 1] * p.scale);
                const uint32_t vv = pack2<kBf16>(dv[4 * j + 2 * r], dv[4 * j + 2 * r + 1]);
                if (col + 2 <= p.d) *reinterpret_cast<uint32_t*>(krow + col) = kv;
                else if (col < p.d) krow[col] = uint16_t(kv);
                if (col + 2 <= p.dv) *reinterpret_cast<uint32_t*>(vrow + col) = vv;
                else if (col < p.dv) vrow[col] = uint16_t(vv);
            }
        }
    } // tiles
    if constexpr (kBulkDq) {
        if (lane < 16) bulk_wait<0>(); // the dQ copies are done before the CTA's shared memory goes away
    }
#else
    FLASH_ARCH_TRAP();
#endif
}

} // namespace flash::cuda::sm90
