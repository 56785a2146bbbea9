// KV-cache decode attention on mma.sync (sm80+), with GQA packing and split-KV.
//
// One CTA = (split, KV head, packed m-block of 16 rows, batch). The query heads that share a KV head are
// packed into the M dimension (packed row pm = r * group + gi, FA3's pack_gqa), so every K/V block is read
// from memory once per KV head, and the 16-row m16n8k16 tile is filled by group x seqlen_q rows. The warps
// of the CTA split each key block (warp w owns keys [16w, 16w + 16) of every block), each keeping its own
// online-softmax state; the warps are merged once at the end through shared memory. K/V blocks stream
// through an S-stage cp.async ring (16-byte copies, zero-filled beyond the valid rows/columns); the row
// addresses are resolved per row, so a paged cache may have any page size >= 1. Q is loaded with plain
// loads, rotated (rotary, fp32 math rounded back to the storage type as the CPU backend does) and kept in
// registers (d <= 128) or in shared memory.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "../fwd_kernel.cuh" // ceil_div, detail::LaneChunks
#include "../primitives/cp_async.cuh"
#include "../primitives/fastmath.cuh"
#include "../primitives/fragment.cuh"
#include "../primitives/griddep.cuh"
#include "../primitives/ldmatrix.cuh"
#include "../primitives/mma.cuh"
#include "../primitives/swizzle.cuh"
#include "kv_params.h"

namespace flash::cuda::kv {

// Per instantiated head dim: warps (each owns 16 keys of a block), stages, Q in registers.
//   d   warps  BN  stages  stage bytes   smem (all <= 99 KB: fits sm86/89/120 too)
//   32    4    64    8        8 KB         64 KB
//   64    4    64    5       16 KB         80 KB
//   96    4    64    3     26.6 KB         80 KB
//  128    4    64    3       32 KB         96 KB
//  192    2    32    3       24 KB      72+6 KB (Q in smem)
//  256    2    32    2       32 KB      64+8 KB (Q in smem)
// plus a ring of page ids (stages x BN x 4 B, <= 768 B) for paged caches.
template <int kD_>
struct KVCfg {
    static constexpr int kD = kD_;
    static constexpr int kWarps = kD_ <= 128 ? 4 : 2;
    static constexpr int kThreads = 32 * kWarps;
    static constexpr int kBN = 16 * kWarps;
    static constexpr int kStages = kD_ <= 32 ? 8 : kD_ <= 64 ? 5 : kD_ <= 192 ? 3 : 2;
    static constexpr bool kQInRegs = kD_ <= 128;
    static constexpr int kChunks = kD_ / 8;
    using Lay = prim::SwizzledRows<kChunks>;
    static constexpr int kTileBytes = Lay::bytes(kBN);
    static constexpr int kStageBytes = 2 * kTileBytes;
    static constexpr int kQBytes = Lay::bytes(16);
    static constexpr int kKVOffset = kQInRegs ? 0 : kQBytes;
    static constexpr int kPageOffset = kKVOffset + kStages * kStageBytes;
    static constexpr int kSmem = kPageOffset + kStages * kBN * 4;
    // End-of-CTA warp merge: O [warps][16][kD + 4] fp32, then max / sum [warps][16].
    static constexpr int kOPitch = kD_ + 4;
    static constexpr int kMergeBytes = kWarps * 16 * kOPitch * 4 + 2 * kWarps * 16 * 4;
    static_assert(kD_ % 16 == 0, "head dim");
    static_assert(kMergeBytes <= kStages * kStageBytes, "merge scratch must fit the K/V ring");
    static_assert(!kQInRegs || kStages >= 3, "Q is staged in the last ring slot before the loop");
    static_assert(kSmem <= 99 * 1024, "must fit every sm80+ GPU");
};

// Rotated element `col` of a row x (storage type) at one position: fp32 math without contraction, as
// cpu/rotary.h computes it, rounded back to the storage type.
template <bool kBf16>
__device__ __forceinline__ uint16_t rotary_elem(const uint16_t* x, int col, const uint16_t* cs, const uint16_t* sn,
                                                int rotary_dim, bool interleaved) {
    using namespace prim;
    const int half = rotary_dim >> 1;
    int j, i0, i1;
    bool first;
    if (interleaved) {
        j = col >> 1;
        i0 = col & ~1;
        i1 = i0 + 1;
        first = (col & 1) == 0;
    } else {
        first = col < half;
        j = first ? col : col - half;
        i0 = j;
        i1 = j + half;
    }
    const float c = to_float<kBf16>(cs[j]), s = to_float<kBf16>(sn[j]);
    const float x0 = to_float<kBf16>(x[i0]), x1 = to_float<kBf16>(x[i1]);
    const float y = first ? __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)) : __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    return from_float<kBf16>(y);
}

// Buffer row offset (elements) of key j (after leftpad) for the K or V tensor of one sequence.
struct KVRowMap {
    const int32_t* bt; // this sequence's block_table row, null = dense
    int32_t page_size, page_shift, leftpad;
    __device__ __forceinline__ int page_index(int t) const { return page_shift >= 0 ? t >> page_shift : t / page_size; }
    __device__ __forceinline__ int page_row(int t) const {
        return page_shift >= 0 ? t & (page_size - 1) : t - (t / page_size) * page_size;
    }
    __device__ __forceinline__ void locate(int j, int64_t batch, int64_t row, int64_t& off) const {
        const int t = leftpad + j;
        if (bt) off = int64_t(bt[page_index(t)]) * batch + int64_t(page_row(t)) * row;
        else off = int64_t(t) * row;
    }
    // Paged: the same with the page id already read (from the kernel's page-id ring).
    __device__ __forceinline__ int64_t at_page(int32_t page, int j, int64_t batch, int64_t row) const {
        return int64_t(page) * batch + int64_t(page_row(leftpad + j)) * row;
    }
};

// One 16-byte chunk: cp.async when allowed (whole chunk valid or wholly invalid), else scalar with zero fill.
__device__ __forceinline__ void copy_chunk(uint32_t s_addr, unsigned char* s_ptr, const uint16_t* g_row,
                                           const uint16_t* g_any, int col, int cols_valid, bool row_valid,
                                           bool aligned) {
    if (aligned && (col + 8 <= cols_valid || col >= cols_valid)) {
        const bool v = row_valid && col < cols_valid;
        prim::cp_async_16(s_addr, v ? g_row + col : g_any, v ? 16u : 0u);
    } else {
        uint16_t e[8];
#pragma unroll
        for (int k = 0; k < 8; ++k) e[k] = (row_valid && col + k < cols_valid) ? g_row[col + k] : uint16_t(0);
        uint4 u;
        u.x = e[0] | (uint32_t(e[1]) << 16);
        u.y = e[2] | (uint32_t(e[3]) << 16);
        u.z = e[4] | (uint32_t(e[5]) << 16);
        u.w = e[6] | (uint32_t(e[7]) << 16);
        *reinterpret_cast<uint4*>(s_ptr) = u;
    }
}

// knew / vnew row r of sequence bi, KV head hki.
__device__ __forceinline__ const uint16_t* knew_row(const KVParams& p, int bi, int r, int hki) {
    return static_cast<const uint16_t*>(p.knew) + int64_t(bi) * p.kn_batch + int64_t(r) * p.kn_row + int64_t(hki) * p.kn_head;
}
__device__ __forceinline__ const uint16_t* vnew_row(const KVParams& p, int bi, int r, int hki) {
    return static_cast<const uint16_t*>(p.vnew) + int64_t(bi) * p.vn_batch + int64_t(r) * p.vn_row + int64_t(hki) * p.vn_head;
}

// Element col of appended K row r (knew) as the cache will hold it: rotated at buffer position pos when
// col < rotary_dim (fp32 math rounded to the storage type), else copied.
template <bool kBf16>
__device__ __forceinline__ uint16_t new_k_elem(const KVParams& p, const uint16_t* krow, int col, int pos) {
    if (col >= p.rotary_dim) return krow[col];
    const int half = p.rotary_dim >> 1;
    const uint16_t* cs = static_cast<const uint16_t*>(p.rot_cos) + int64_t(pos) * half;
    const uint16_t* sn = static_cast<const uint16_t*>(p.rot_sin) + int64_t(pos) * half;
    return rotary_elem<kBf16>(krow, col, cs, sn, p.rotary_dim, p.rot_interleaved != 0);
}

// One 16-byte chunk (columns 8c..8c+7) of an appended key row r of this call into a K/V stage: read from
// knew / vnew (K rotated on the way) instead of the cache, so no kernel has to write the cache first.
// A handful of rows per call: out of line, to keep the cache path of the copy loop small.
template <bool kBf16>
__device__ __noinline__ void load_new_chunk(const KVParams& p, int bi, int hki, int r, int pos, int c, uint32_t aK,
                                            unsigned char* sK, uint32_t aV, unsigned char* sV) {
    const uint16_t* krow = knew_row(p, bi, r, hki);
    const uint16_t* vrow = vnew_row(p, bi, r, hki);
    const int col = c * 8;
    if (col < p.rotary_dim) {
        uint16_t e[8];
#pragma unroll
        for (int k = 0; k < 8; ++k) e[k] = col + k < p.d ? new_k_elem<kBf16>(p, krow, col + k, pos) : uint16_t(0);
        *reinterpret_cast<uint4*>(sK) = make_uint4(e[0] | (uint32_t(e[1]) << 16), e[2] | (uint32_t(e[3]) << 16),
                                                   e[4] | (uint32_t(e[5]) << 16), e[6] | (uint32_t(e[7]) << 16));
    } else {
        copy_chunk(aK, sK, krow, krow, col, p.d, true, p.aligned_kn != 0);
    }
    copy_chunk(aV, sV, vrow, vrow, col, p.dv, true, p.aligned_vn != 0);
}

// Writes the appended rows j in [j_lo, j_hi) (keys after leftpad; knew row r = j - new_lo) of sequence bi, KV
// head hki into the dense or paged cache, K rotated at its buffer position. All threads of the CTA.
template <bool kBf16>
__device__ __noinline__ void append_rows(const KVParams& p, const KVRowMap& map, int bi, int hki, int kv_batch,
                                         int new_lo, int j_lo, int j_hi) {
    const int w = p.d > p.dv ? p.d : p.dv;
    uint16_t* kc = static_cast<uint16_t*>(const_cast<void*>(p.k)) + int64_t(hki) * p.k_head;
    uint16_t* vc = static_cast<uint16_t*>(const_cast<void*>(p.v)) + int64_t(hki) * p.v_head;
    if (!map.bt) {
        kc += int64_t(kv_batch) * p.k_batch;
        vc += int64_t(kv_batch) * p.v_batch;
    }
    const int64_t total = int64_t(j_hi - j_lo) * w;
    for (int64_t idx = threadIdx.x; idx < total; idx += blockDim.x) {
        const int j = j_lo + int(idx / w), c = int(idx % w);
        const int r = j - new_lo, pos = map.leftpad + j;
        int64_t ko, vo;
        map.locate(j, p.k_batch, p.k_row, ko);
        map.locate(j, p.v_batch, p.v_row, vo);
        if (c < p.d) kc[ko + c] = new_k_elem<kBf16>(p, knew_row(p, bi, r, hki), c, pos);
        if (c < p.dv) vc[vo + c] = vnew_row(p, bi, r, hki)[c];
    }
}

template <class Cfg, bool kBf16>
__global__ void __launch_bounds__(Cfg::kThreads, 2) kv_attn_kernel(const __grid_constant__ KVParams p) {
    using namespace prim;
    using Lay = typename Cfg::Lay;
    constexpr int D = Cfg::kD, BN = Cfg::kBN, S = Cfg::kStages, kC = Cfg::kChunks, NT = Cfg::kThreads;
    constexpr int kKSteps = D / 16;
    constexpr int kOT = D / 8;
    constexpr float kLn2 = 0.6931471805599453f;
    constexpr float kLog2e = 1.4426950408889634f;

    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sKV = smem + Cfg::kKVOffset;
    unsigned char* sQ = Cfg::kQInRegs ? sKV + (S - 1) * Cfg::kStageBytes : smem;

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, q4 = lane & 3;

    const int ns = p.num_splits;
    int bx = blockIdx.x;
    const int split = bx % ns;
    bx /= ns;
    const int hki = bx % p.hk;
    const int mb = bx / p.hk;
    const int bi = blockIdx.y;

    // ---- per-sequence geometry (api/seqinfo.h) ----
    const int sq = p.seqused_q ? p.seqused_q[bi] : p.seqlen_q;
    const int leftpad = p.leftpad_k ? p.leftpad_k[bi] : 0;
    const int kv_batch = p.cache_batch_idx ? p.cache_batch_idx[bi] : bi;
    // flash_fwd calls routed here (fwd.cu decode_route: dense) have no cache_seqlens: their keys end at seqused_k,
    // else seqlen_k (api/seqinfo.h; leftpad and seqused_q as for the cache).
    const int cache_len = p.cache_seqlens ? p.cache_seqlens[bi] : p.seqused_k ? p.seqused_k[bi] : p.seqlen_k;
    const int sk = cache_len + p.seqlen_knew - leftpad;
    const int G = p.group;
    const int packed = sq * G;
    const int m0 = mb * 16;
    KVRowMap map;
    map.bt = p.block_table ? p.block_table + int64_t(bi) * p.bt_stride : nullptr;
    map.page_size = p.page_size;
    map.page_shift = p.page_shift;
    map.leftpad = leftpad;
    // Keys from new_lo on are this call's knew/vnew rows. The CTAs of m block 0 write them into the cache,
    // each the rows of its split's share of [0, sk) (shares of the whole sequence, not of the window, so rows
    // no query attends are written too; also for a sequence without query rows). Every CTA reads them from
    // knew/vnew (load_new_chunk), never from the cache: no ordering between the two is needed, and there
    // is no separate append kernel.
    const int new_lo = p.seqlen_knew > 0 ? cache_len - leftpad : INT_MAX;
    auto append = [&]() {
        if (p.seqlen_knew > 0 && mb == 0) {
            const int per_w = ceil_div(ceil_div(sk, BN), ns);
            const int j_lo = max(new_lo, split * per_w * BN), j_hi = min(sk, (split + 1) * per_w * BN);
            if (j_lo < j_hi) append_rows<kBf16>(p, map, bi, hki, kv_batch, new_lo, j_lo, j_hi);
        }
    };
    if (m0 >= packed) { // no query rows here: only the append
        append();
        return;
    }
    const int r_lo = m0 / G, r_hi = (min(m0 + 15, packed - 1)) / G;
    const int64_t diag = int64_t(sk) - sq;

    // ---- key blocks: the CTA rows' visible window, then this split's share of it ----
    int64_t kb = 0, ke = sk;
    if (p.win_right >= 0) ke = min(ke, int64_t(r_hi) + diag + p.win_right + 1);
    if (p.win_left >= 0) kb = max(kb, int64_t(r_lo) + diag - p.win_left);
    int n_first = 0, n_count = 0;
    if (ke > kb) {
        n_first = int(kb / BN);
        n_count = int((ke + BN - 1) / BN) - n_first;
    }
    const int per = ceil_div(n_count, ns);
    const int nb0 = n_first + min(n_count, split * per);
    const int ntiles = n_first + min(n_count, (split + 1) * per) - nb0;

    // ---- K/V addressing ----
    const uint16_t* gK = static_cast<const uint16_t*>(p.k) + int64_t(hki) * p.k_head;
    const uint16_t* gV = static_cast<const uint16_t*>(p.v) + int64_t(hki) * p.v_head;
    if (!map.bt) {
        gK += int64_t(kv_batch) * p.k_batch;
        gV += int64_t(kv_batch) * p.v_batch;
    }
    const bool al_k = p.aligned_k, al_v = p.aligned_v;
    const uint32_t sKV_a = smem_u32addr(sKV);
    // Paged caches: the page id of every row of block i (relative to nb0) is read from the block table two
    // iterations before the block's copies are issued (thread r < BN reads row r) and kept in ring slot i % S,
    // so no block-table read (a dependent global load per row) sits in front of the K/V copies.
    int32_t* sPg = reinterpret_cast<int32_t*>(smem + Cfg::kPageOffset);
    const bool paged = map.bt != nullptr;
    auto page_of = [&](int i) -> int32_t {
        const int j = (nb0 + i) * BN + tid;
        return (i < ntiles && j < sk) ? map.bt[map.page_index(leftpad + j)] : 0;
    };

    // Fast copies for a full block without appended rows, d == dv == D, 16-byte aligned (dense cache, one page
    // holding the whole block, or smaller pages with a page id per row): each thread's chunk column is fixed
    // (NT % kC == 0) and its rows step by NT / kC (a multiple of 8, so the swizzle repeats), so a copy costs an
    // add on each address. The general loop below spends several times the instructions per 16 bytes, and on
    // the H200 those issue slots, not DRAM, were the limit (ncu: 0.48 issued warps per scheduler vs cuDNN's
    // 0.18 at 76% vs 91% of DRAM bandwidth).
#ifdef FLASH_KV_NO_FAST_COPY // A/B builds only (scripts/decode_diag.sh abfast)
    constexpr bool kFastShape = false;
#else
    constexpr bool kFastShape = NT % kC == 0 && (NT / kC) % 8 == 0;
#endif
    const bool fast_ok = kFastShape && al_k && al_v && p.d == D && p.dv == D;
    auto load_kv = [&](int n, int slot) {
        unsigned char* sK = sKV + slot * Cfg::kStageBytes;
        unsigned char* sV = sK + Cfg::kTileBytes;
        const uint32_t aK = sKV_a + slot * Cfg::kStageBytes, aV = aK + Cfg::kTileBytes;
        const int j0 = n * BN;
        if constexpr (kFastShape) {
            if (fast_ok && j0 + BN <= sk && j0 + BN <= new_lo) {
                const int t0 = leftpad + j0;
                int64_t kb, vb;
                bool whole = true;
                if (paged) {
                    const int pr = map.page_row(t0);
                    whole = pr + BN <= map.page_size;
                    const int64_t pg = sPg[slot * BN]; // the page of row 0 (and, when whole, of every row)
                    kb = pg * p.k_batch + int64_t(pr) * p.k_row;
                    vb = pg * p.v_batch + int64_t(pr) * p.v_row;
                } else {
                    kb = int64_t(t0) * p.k_row;
                    vb = int64_t(t0) * p.v_row;
                }
                constexpr int R = NT / kC, kIt = BN / R;
                const int c = tid % kC, r0 = tid / kC;
                if (whole) {
                    const uint16_t* gk = gK + kb + int64_t(r0) * p.k_row + c * 8;
                    const uint16_t* gv = gV + vb + int64_t(r0) * p.v_row + c * 8;
#pragma unroll
                    for (int i = 0; i < kIt; ++i) {
                        const uint32_t off = uint32_t(Lay::chunk(r0 + i * R, c)) * 16u;
                        cp_async_16(aK + off, gk + int64_t(i * R) * p.k_row, 16u);
                        cp_async_16(aV + off, gv + int64_t(i * R) * p.v_row, 16u);
                    }
                } else {
                    // Pages smaller than a block (vLLM's 16): the same, with each row's page id from the ring.
#pragma unroll
                    for (int i = 0; i < kIt; ++i) {
                        const int r = r0 + i * R;
                        const int64_t pg = sPg[slot * BN + r];
                        const int64_t pr = map.page_row(t0 + r);
                        const uint32_t off = uint32_t(Lay::chunk(r, c)) * 16u;
                        cp_async_16(aK + off, gK + pg * p.k_batch + pr * p.k_row + c * 8, 16u);
                        cp_async_16(aV + off, gV + pg * p.v_batch + pr * p.v_row + c * 8, 16u);
                    }
                }
                return;
            }
        }
        constexpr int kTotal = BN * kC;
#pragma unroll 1
        for (int idx = tid; idx < kTotal; idx += NT) {
            const int r = idx / kC, c = idx - (idx / kC) * kC;
            const int j = j0 + r;
            const bool rv = j < sk;
            int64_t ko = 0, vo = 0;
            if (rv) {
                if (paged) {
                    const int32_t pg = sPg[slot * BN + r];
                    ko = map.at_page(pg, j, p.k_batch, p.k_row);
                    vo = map.at_page(pg, j, p.v_batch, p.v_row);
                } else {
                    ko = int64_t(leftpad + j) * p.k_row;
                    vo = int64_t(leftpad + j) * p.v_row;
                }
            }
            const int off = Lay::chunk(r, c) * 16;
            if (j >= new_lo && rv) {
                load_new_chunk<kBf16>(p, bi, hki, j - new_lo, leftpad + j, c, aK + off, sK + off, aV + off, sV + off);
                continue;
            }
            copy_chunk(aK + off, sK + off, gK + ko, gK, c * 8, p.d, rv, al_k);
            copy_chunk(aV + off, sV + off, gV + vo, gV, c * 8, p.dv, rv, al_v);
        }
    };

    // ---- prologue: page ids of blocks 0 .. S-1, then K/V blocks 0 .. S-2 into slots 0 .. S-2 ----
    if (paged) {
        if (tid < BN) {
#pragma unroll
            for (int s = 0; s < S; ++s) sPg[s * BN + tid] = page_of(s);
        }
        __syncthreads();
    }
#pragma unroll
    for (int s = 0; s + 1 < S; ++s) {
        if (s < ntiles) load_kv(nb0 + s, s);
        cp_async_commit();
    }

    append(); // after the prologue's copies are issued, so they are in flight meanwhile

    // ---- Q: packed rows m0 .. m0+15 (rotated), zero beyond d / packed rows. All loads of a thread are
    // issued before any store (unrolled, one 16-byte load per chunk where possible): one memory latency. ----
    {
        constexpr int kQChunks = 16 * kC;
        constexpr int kQIt = (kQChunks + NT - 1) / NT;
        const int half = p.rotary_dim >> 1;
        uint4 qv[kQIt];
#pragma unroll
        for (int it = 0; it < kQIt; ++it) {
            const int idx = it * NT + tid;
            qv[it] = make_uint4(0u, 0u, 0u, 0u);
            if (kQChunks % NT != 0 && idx >= kQChunks) continue;
            const int m = idx / kC, col = (idx % kC) * 8;
            const int pm = m0 + m;
            if (pm >= packed || col >= p.d) continue;
            const int r = pm / G, hi = hki * G + (pm - r * G);
            const uint16_t* qrow = static_cast<const uint16_t*>(p.q) + int64_t(bi) * p.q_batch + int64_t(r) * p.q_row +
                                   int64_t(hi) * p.q_head;
            if (p.aligned_q && col + 8 <= p.d && col >= p.rotary_dim) {
                qv[it] = *reinterpret_cast<const uint4*>(qrow + col);
            } else {
                const int64_t pos = int64_t(cache_len) + (p.rot_per_row ? r : 0);
                const uint16_t* cs = static_cast<const uint16_t*>(p.rot_cos) + pos * half;
                const uint16_t* sn = static_cast<const uint16_t*>(p.rot_sin) + pos * half;
                uint16_t e[8];
#pragma unroll
                for (int k = 0; k < 8; ++k) {
                    const int cc = col + k;
                    e[k] = cc >= p.d ? uint16_t(0)
                         : cc < p.rotary_dim ? rotary_elem<kBf16>(qrow, cc, cs, sn, p.rotary_dim, p.rot_interleaved != 0)
                                             : qrow[cc];
                }
                qv[it] = make_uint4(e[0] | (uint32_t(e[1]) << 16), e[2] | (uint32_t(e[3]) << 16),
                                    e[4] | (uint32_t(e[5]) << 16), e[6] | (uint32_t(e[7]) << 16));
            }
        }
#pragma unroll
        for (int it = 0; it < kQIt; ++it) {
            const int idx = it * NT + tid;
            if (kQChunks % NT != 0 && idx >= kQChunks) continue;
            *reinterpret_cast<uint4*>(sQ + Lay::chunk(idx / kC, idx % kC) * 16) = qv[it];
        }
    }
    __syncthreads();

    // ---- ldmatrix lane addressing ----
    const detail::LaneChunks<Lay> qch(lane >> 4, lane & 7);
    const int q_row_off = (lane & 15) * Lay::kPitch * 16;
    const detail::LaneChunks<Lay> kch((lane >> 3) & 1, lane & 7);
    const int k_row_off = (warp * 16 + (lane & 7) + 8 * (lane >> 4)) * Lay::kPitch * 16;
    const detail::LaneChunks<Lay> vch(lane >> 4, lane & 7);
    const int v_row_off = (warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * Lay::kPitch * 16;
    const uint32_t sQ_a = smem_u32addr(sQ);

    uint32_t q_frag[Cfg::kQInRegs ? kKSteps : 1][4];
    if constexpr (Cfg::kQInRegs) {
#pragma unroll
        for (int ks = 0; ks < kKSteps; ++ks) ldmatrix_x4(q_frag[ks], sQ_a + q_row_off + qch.phys(ks) * 16);
    }

    // ---- per-row constants (this thread's rows g and g + 8 of the tile) ----
    const bool full = p.full != 0;
    const float sl2 = full ? 1.f : p.scale_log2;
    int rrow[2];
    float slope[2] = {0.f, 0.f};
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        const int pm = min(m0 + g + 8 * e, packed - 1);
        rrow[e] = pm / G;
        if (p.alibi) slope[e] = p.alibi[int64_t(bi) * p.alibi_batch_stride + hki * G + (pm - rrow[e] * G)] * kLog2e;
    }
    const bool windowed = p.win_left >= 0 || p.win_right >= 0;

    float acc_o[kOT][4];
#pragma unroll
    for (int t = 0; t < kOT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc_o[t][e] = 0.f;
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};

    for (int jt = 0; jt < ntiles; ++jt) {
        cp_async_wait<S - 2>();
        __syncthreads();
        if (jt + S - 1 < ntiles) load_kv(nb0 + jt + S - 1, (jt + S - 1) % S);
        cp_async_commit();
        const int slot = jt % S;
        // Page ids of block jt + S, read now and stored at the end of this iteration into slot jt % S (whose
        // block was copied S - 1 iterations ago; the barrier at the top of the next iteration publishes them).
        const int32_t pg_next = (paged && tid < BN) ? page_of(jt + S) : 0;
        const int n0 = (nb0 + jt) * BN;

        // ---- S = Q K^T for this warp's 16 keys ----
        float acc_s[2][4];
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc_s[t][e] = 0.f;
        const uint32_t sKs = sKV_a + slot * Cfg::kStageBytes + k_row_off;
#pragma unroll
        for (int ks = 0; ks < kKSteps; ++ks) {
            uint32_t a[4];
            if constexpr (Cfg::kQInRegs) {
#pragma unroll
                for (int e = 0; e < 4; ++e) a[e] = q_frag[ks][e];
            } else {
                ldmatrix_x4(a, sQ_a + q_row_off + qch.phys(ks) * 16);
            }
            uint32_t b[4];
            ldmatrix_x4(b, sKs + kch.phys(ks) * 16);
            const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            mma_m16n8k16<kBf16>(acc_s[0], a, b0);
            mma_m16n8k16<kBf16>(acc_s[1], a, b1);
        }

        // ---- scores: softcap / ALiBi, mask ----
        const int c0 = n0 + warp * 16 + 2 * q4;
        if (full) {
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    float x = acc_s[t][e];
                    x = p.softcap_log2 > 0.f ? p.softcap_log2 * tanhf(x * p.scale_over_softcap) : x * p.scale_log2;
                    const int c = c0 + t * 8 + (e & 1);
                    x -= slope[e >> 1] * fabsf(float(int64_t(rrow[e >> 1]) + diag - c));
                    acc_s[t][e] = x;
                }
        }
        bool need_mask = n0 + BN > sk;
        if (windowed) {
            if (p.win_right >= 0 && int64_t(n0) + BN - 1 > int64_t(r_lo) + diag + p.win_right) need_mask = true;
            if (p.win_left >= 0 && int64_t(n0) < int64_t(r_hi) + diag - p.win_left) need_mask = true;
        }
        if (need_mask) {
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int c = c0 + t * 8 + (e & 1);
                    const int64_t a = int64_t(rrow[e >> 1]) + diag;
                    bool vis = c < sk;
                    if (p.win_left >= 0 && c < a - p.win_left) vis = false;
                    if (p.win_right >= 0 && c > a + p.win_right) vis = false;
                    if (!vis) acc_s[t][e] = -INFINITY;
                }
        }

        // ---- online softmax (per warp) ----
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = fmaxf(row_max[r], fmaxf(fmaxf(acc_s[0][2 * r], acc_s[0][2 * r + 1]),
                                               fmaxf(acc_s[1][2 * r], acc_s[1][2 * r + 1])));
            mx = quad_max(mx);
            const float ms = (mx == -INFINITY ? 0.f : mx) * sl2;
            const float alpha = exp2_approx(row_max[r] * sl2 - ms);
            row_max[r] = mx;
            row_sum[r] *= alpha;
#pragma unroll
            for (int t = 0; t < kOT; ++t) {
                acc_o[t][2 * r] *= alpha;
                acc_o[t][2 * r + 1] *= alpha;
            }
            float sum = 0.f;
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
                for (int e = 2 * r; e < 2 * r + 2; ++e) {
                    const float pe = exp2_approx(fmaf(acc_s[t][e], sl2, -ms));
                    acc_s[t][e] = pe;
                    sum += pe;
                }
            row_sum[r] += sum;
        }

        // ---- O += P V (one k16 step: this warp's 16 keys) ----
        uint32_t a[4];
        acc_to_a<kBf16>(a, acc_s[0], acc_s[1]);
        const uint32_t sVs = sKV_a + slot * Cfg::kStageBytes + Cfg::kTileBytes + v_row_off;
#pragma unroll
        for (int dp = 0; dp < kOT / 2; ++dp) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, sVs + vch.phys(dp) * 16);
            const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            mma_m16n8k16<kBf16>(acc_o[2 * dp], a, b0);
            mma_m16n8k16<kBf16>(acc_o[2 * dp + 1], a, b1);
        }
        if (paged && tid < BN) sPg[slot * BN + tid] = pg_next;
    }

    // ---- merge the warps: O [warp][row][col], max (log2 units) / sum [warp][row] ----
    // Let the split combine (a programmatic dependent launch) get scheduled; it waits for this grid's
    // completion before reading anything.
    if (ns > 1) griddep_launch_dependents();
    cp_async_wait<0>();
    __syncthreads();
    float* sO = reinterpret_cast<float*>(sKV);
    float* sM = sO + Cfg::kWarps * 16 * Cfg::kOPitch;
    float* sL = sM + Cfg::kWarps * 16;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = g + 8 * r;
        float* orow = sO + (warp * 16 + row) * Cfg::kOPitch + 2 * q4;
#pragma unroll
        for (int t = 0; t < kOT; ++t)
            *reinterpret_cast<float2*>(orow + t * 8) = make_float2(acc_o[t][2 * r], acc_o[t][2 * r + 1]);
        const float l = quad_sum(row_sum[r]);
        if (q4 == 0) {
            sM[warp * 16 + row] = row_max[r] == -INFINITY ? -INFINITY : row_max[r] * sl2;
            sL[warp * 16 + row] = l;
        }
    }
    __syncthreads();

    const bool split_out = ns > 1;
    for (int idx = tid; idx < 16 * (D / 4); idx += NT) {
        const int m = idx / (D / 4), c = (idx - m * (D / 4)) * 4;
        const int pm = m0 + m;
        if (pm >= packed) continue;
        if (!split_out && c >= p.dv) continue;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < Cfg::kWarps; ++w) M = fmaxf(M, sM[w * 16 + m]);
        float L = 0.f;
        float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
        if (M != -INFINITY) {
#pragma unroll
            for (int w = 0; w < Cfg::kWarps; ++w) {
                const float sc = exp2_approx(sM[w * 16 + m] - M);
                L += sc * sL[w * 16 + m];
                const float4 o = *reinterpret_cast<const float4*>(sO + (w * 16 + m) * Cfg::kOPitch + c);
                acc.x += sc * o.x;
                acc.y += sc * o.y;
                acc.z += sc * o.z;
                acc.w += sc * o.w;
            }
        }
        const bool any = L > 0.f;
        const float inv = any ? 1.f / L : 0.f;
        acc.x *= inv;
        acc.y *= inv;
        acc.z *= inv;
        acc.w *= inv;
        const float lse = any ? M * kLn2 + __logf(L) : INFINITY;
        const int r = pm / G, hi = hki * G + (pm - r * G);
        if (split_out) {
            const int64_t arow = (int64_t(split) * p.h + hi) * p.acc_rows + int64_t(bi) * p.seqlen_q + r;
            *reinterpret_cast<float4*>(p.o_accum + arow * p.acc_d + c) = acc;
            if (c == 0) p.lse_accum[arow] = any ? lse : -INFINITY;
        } else {
            uint16_t* dst = static_cast<uint16_t*>(p.o) + int64_t(bi) * p.o_batch + int64_t(r) * p.o_row +
                            int64_t(hi) * p.o_head + c;
            const uint16_t e0 = from_float<kBf16>(acc.x), e1 = from_float<kBf16>(acc.y), e2 = from_float<kBf16>(acc.z),
                           e3 = from_float<kBf16>(acc.w);
            if (p.aligned_o && c + 4 <= p.dv) {
                *reinterpret_cast<uint2*>(dst) = make_uint2(e0 | (uint32_t(e1) << 16), e2 | (uint32_t(e3) << 16));
            } else {
                const uint16_t es[4] = {e0, e1, e2, e3};
#pragma unroll
                for (int k = 0; k < 4; ++k)
                    if (c + k < p.dv) dst[k] = es[k];
            }
            if (c == 0 && p.lse) p.lse[(int64_t(bi) * p.h + hi) * p.seqlen_q + r] = lse;
        }
    }
}

} // namespace flash::cuda::kv
