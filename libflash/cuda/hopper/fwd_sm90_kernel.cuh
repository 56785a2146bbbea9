// FlashAttention forward for Hopper (sm_90a): TMA loads, wgmma, warp specialization.
//
// A CTA of 128 * (consumers + 1) threads works through query tiles of 64 * consumers rows of one (head,
// batch) each -- persistently, one CTA per SM striding over the tiles, or one tile per CTA (config):
// - warpgroup 0 is the producer: after dropping to a few registers (setmaxnreg), one thread loads each
//   tile's Q (once the consumers have released the previous one) and streams K and V tiles through a `stages`-deep ring with TMA; each slot has a "full" mbarrier
//   (completed by the copy's transaction bytes) and an "empty" one (completed when every consumer thread has
//   released the slot), separately for K and V so that S = Q K^T starts before V has landed.
// - warpgroups 1.. are consumers, 64 query rows each, with the registers the producer gave up: S = Q K^T by
//   wgmma with both operands in shared memory (K-major, 128-byte swizzle, the layout TMA writes), online
//   softmax in fp32 with exp2 and the scale folded into one FFMA, P converted in registers to the A operand
//   of O += P V (wgmma RS form, V read MN-major), deferred 1/l, natural-log LSE. The row max used for the
//   exponentials is raised only when a block's max exceeds it by more than 8 (log2 units; probabilities then
//   stay <= 256), so most blocks skip the O rescale (FA4's lazy rescale; exact: l and O share the stale max).
//   kSpec (config): after a tile's first block the row max is not computed at all -- the block's exponentials are
//   taken against the running max and kept unless their sums show it moved (then S is recomputed; softmax_spec).
// - kOverlap (config): the P V of key block j-1 stays on the tensor cores while the softmax of block j runs
//   (FA3's intra-warpgroup overlap); the O rescale for block j runs in the next iteration, between the issue
//   of S = Q K^T (block j+1) and the P V of block j, in the shadow of the QK^T GEMM.
// - kPingpong (config): the two consumer warpgroups take turns issuing their GEMMs (named barriers), so the
//   softmax of one runs while the tensor cores work for the other. kStagger (config): consumer 0 holds the turn
//   through a tile's first softmax, so it runs alone rather than beside consumer 1's (which then trails by it).
// Key blocks are visited from the last to the first, so the blocks that need a mask (sequence end, causal
// diagonal) come first; blocks wholly outside the window are skipped. The last, partial key block is loaded
// with its box ending at the sequence's last key (origin sk - block_n, TMA zero-fills negative rows), so a
// box never reads past the sequence: varlen K needs no total length on the host, and the extra leading keys
// are masked as belonging to the next block.
//
// GQA packing (kPack, its own instantiation; chosen on the host): a tile's rows are (query row, query head) pairs of one
// K/V head's group, packed row pm = row * group + head in group (Q's tensor map has the head as the box's second
// dimension, so one TMA box lands in that order), and every K/V block loaded serves the group's heads at once.
// Only the row -> (query row, head) map changes: the masks take the query row, the epilogue both.
//
// Features on this path: fp16/bf16, causal/local windows, softcap (kSoftcap), GQA/MQA (packed or not), varlen,
// seqused, leftpad, LSE, split-KV (kSplit: on the packed kernel, fp32 partials for fwd_combine.cu). Dropout and
// ALiBi stay on the sm80 kernel (hopper/fwd_sm90.cu routes them).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "../fwd_params.h"
#include "../primitives/fastmath.cuh"
#include "../primitives/fragment.cuh"
#include "../primitives/griddep.cuh"
#include "../primitives/ldmatrix.cuh"
#include "../primitives/mbarrier.cuh"
#include "../primitives/smem_io.cuh"
#include "../primitives/stmatrix.cuh"
#include "../primitives/tma.cuh"
#include "../primitives/warpgroup.cuh"
#include "../primitives/wgmma.cuh"
#include "fwd_sm90.h"
#include "fwd_sm90_config.h"

namespace flash::cuda::sm90 {

// Diagnostic builds only (-DFLASH_SM90_TRACE): one thread per warpgroup records clock64() at fixed points of
// its first 32 tiles into P.trace[((cta * 3 + role) * 32 + tile) * 16 + event] (role 0 producer, 1.. consumers).
#ifdef FLASH_SM90_TRACE
#define FLASH_TRACE(ev, role, t)                                                                          \
    do {                                                                                                  \
        if ((tid & 127) == 0 && (t) < 32 && (role) < 3)                                                   \
            P.trace[((int64_t(blockIdx.x) * 3 + (role)) * 32 + (t)) * 16 + (ev)] = clock64();             \
    } while (0)
#else
#define FLASH_TRACE(ev, role, t) \
    do {                         \
    } while (0)
#endif

template <int kD_, int kDV_, bool kMasked_, int kAlt_ = 0>
struct Sm90Cfg {
    static constexpr Sm90Tile kTile = sm90_tile(kD_, kDV_, kMasked_, kAlt_);
    static constexpr int kD = kD_;
    static constexpr int kDV = kDV_; // V / O columns: kD, or fewer (the narrow-V instantiation, sm90_dim_v)
    static constexpr int kCons = kTile.consumers;
    static constexpr int kBM = 64 * kCons;
    static constexpr int kBN = kTile.block_n;
    static constexpr int kStages = kTile.stages;
    static constexpr bool kOverlap = kTile.overlap;
    static constexpr bool kPingpong = kTile.pingpong;
    static constexpr bool kDynamic = kTile.persistent && kTile.dynamic; // tiles claimed from an atomic counter
    static constexpr int kRegP = kTile.reg_producer, kRegC = kTile.reg_consumer;
    static constexpr int kThreads = 128 * (kCons + 1);
    static constexpr int kCB = sm90_dpad(kD) / 64;    // 64-element (128-byte) column blocks of a row
    static constexpr int kQBytes = kBM * kCB * 128;   // Q tile: kCB blocks of [kBM rows][128 B]
    static constexpr int kCBV = sm90_dpad(kDV) / 64;  // column blocks of a V row
    static constexpr int kKVBytes = kBN * kCB * 128;  // one K slot: kCB blocks of [kBN rows][128 B]
    static constexpr int kVBytes = kBN * kCBV * 128;  // one V slot: kCBV blocks of [kBN rows][128 B]
    static constexpr int kBarBytes = kSm90BarBytes;   // mbarriers + the tile ring (fwd_sm90_config.h)
    static constexpr bool kDescBase = kTile.desc_base;
    static constexpr bool kUniform = kTile.uniform;
    static constexpr int kQSlots = kTile.q_slots;
    static constexpr bool kTmaO = kTile.tma_o != 0; // O staged in shared memory, TMA stores
    static constexpr bool kOBuf = kTile.tma_o == 2;  // ... in a buffer of its own, not the Q slot
    static constexpr bool kQSlotO = kTmaO && !kOBuf; // ... in the Q slot: released after the O copy has read it
#ifndef FLASH_SM90_EPI_PAIR
#define FLASH_SM90_EPI_PAIR -1 // A/B builds only: 0 / 1 override every row's pair_o
#endif
    static constexpr bool kPairO = FLASH_SM90_EPI_PAIR < 0 ? kTile.pair_o : FLASH_SM90_EPI_PAIR != 0;
#ifndef FLASH_SM90_STAGGER
#define FLASH_SM90_STAGGER -1 // A/B builds only: 0 / 1 override every ping-pong row's stagger
#endif
    static constexpr bool kStagger = kPingpong && (FLASH_SM90_STAGGER < 0 ? kTile.stagger : FLASH_SM90_STAGGER != 0);
#ifndef FLASH_SM90_SPEC
#define FLASH_SM90_SPEC -1 // A/B builds only: 0 / 1 / 2 override every row's spec
#endif
    static constexpr int kSpec = FLASH_SM90_SPEC < 0 ? kTile.spec : FLASH_SM90_SPEC;
#ifndef FLASH_SM90_CLAIM_LATE
#define FLASH_SM90_CLAIM_LATE 0 // A/B builds only: 1 = the next tile claimed once this one's loads are issued
#endif
    static constexpr bool kClaimLate = kDynamic && FLASH_SM90_CLAIM_LATE != 0;
    static_assert(kSpec >= 0 && kSpec <= 2, "FLASH_SM90_SPEC takes 0, 1 or 2");
    static constexpr int kSmem = sm90_smem_bytes(kTile); // 1 KB slack + kBarBytes + kQSlots Q tiles + the K/V ring
    static_assert(kTile.d == kD_ && kTile.dv == kDV_, "(d, dv) missing from kSm90Tiles");
    static_assert(8 * (10 + 4 * kStages) <= 512, "the mbarriers overlap the tile ring at +512");
    static_assert(sm90_tile_error(kTile) == nullptr, "this tile row breaks a rule of sm90_tile_error");
};

// One work tile's geometry (api/seqinfo.h, as in fwd_kernel.cuh). Unmasked and split tiles are numbered m
// block fastest (the CTAs working at one time share a head's K/V in L2), then split (kSplit), then head, then
// batch. Masked tiles run in L2 sections of (batch, head) pairs (Sm90Params::div_sec): m block slowest, causal
// ones heaviest first, so the last tiles of the grid are the light ones.
struct TileGeom {
    int m0, hi, bi, hki, sq, sk, n_begin, n_end, ntiles; // m0: first query row; hi: first query head (packed: of
                                                         // the group); [n_begin, n_end): this split's key blocks
    int split;
    int64_t q_row0, k_row0, diag;
    bool skip; // the m block starts past this sequence's query rows
};

// Masked plain tiles aligned to the sequence's end (tile_geom): rows above the sequence then exist (m0 < 0).
template <int BM, int BN, bool kMasked, bool kPack, bool kSplit>
inline constexpr bool kEndAligned = kMasked && !kPack && !kSplit && BM % BN != 0;

template <int BM, int BN, bool kMasked, bool kPack, bool kSplit, bool kDense>
__device__ __forceinline__ TileGeom tile_geom(const Sm90Params& P, int tile) { // tile: copied, rewritten for tail pieces
    const FwdParams& p = P.f;
    const int m_blocks = P.m_blocks;
    TileGeom t;
    // Host-prepared dividers: this decode sits at the start of every tile, before its first load is issued.
    int hs, mb_raw; // head slot (a query head, or packed a K/V head); m block in visiting order
    int pb = 0, pe = 0; // tail split: this piece's key blocks inside its tile
    if constexpr (kMasked && !kSplit) {
        const uint32_t sec = P.div_sec_tiles.div(uint32_t(tile));
        const uint32_t within = uint32_t(tile) - sec * P.div_sec_tiles.d;
        const bool last = int(sec) == P.n_sec - 1;
        FastDiv dn; // the section's pair count (fields picked one by one: no copy of a parameter struct)
        dn.d = last ? P.div_sec_last.d : P.div_sec.d;
        dn.mul = last ? P.div_sec_last.mul : P.div_sec.mul;
        dn.shift = last ? P.div_sec_last.shift : P.div_sec.shift;
        mb_raw = int(dn.div(within));
        const int pair = int(sec * P.div_sec.d + within - uint32_t(mb_raw) * dn.d);
        t.bi = int(P.div_heads.div(uint32_t(pair)));
        hs = pair - t.bi * int(P.div_heads.d);
        t.split = 0;
    } else {
        if constexpr (kSplit && !kMasked) { // the host plans tail splits for unmasked problems only (choose_tail)
            if (P.tail_ctas > 0) {
                const int c = tile < P.tail_ctas ? tile : tile - P.tail_ctas;
                const int64_t lo = int64_t(c) * P.tail_blocks / P.tail_ctas;
                const int64_t hi = int64_t(c + 1) * P.tail_blocks / P.tail_ctas;
                int lt = int(lo / P.tail_nblk); // the tile this CTA's range starts in
                int64_t a = lo, b = min(hi, int64_t(lt + 1) * P.tail_nblk);
                if (tile >= P.tail_ctas) { // the range's piece in the next tile, if it reaches it
                    ++lt;
                    a = int64_t(lt) * P.tail_nblk;
                    b = hi;
                }
                pb = int(a - int64_t(lt) * P.tail_nblk);
                pe = int(b - int64_t(lt) * P.tail_nblk);
                if (lt >= P.tail_tiles) pe = pb; // only an empty range reaches past the last tile
                tile = P.tail_base + (pe > pb ? lt : 0);
            }
        }
        t.bi = int(P.div_head_mblocks.div(uint32_t(tile)));
        const int rem = tile - t.bi * int(P.div_head_mblocks.d);
        const int hsp = int(P.div_mblocks.div(uint32_t(rem))); // head slot x splits
        mb_raw = rem - hsp * m_blocks;
        hs = kSplit ? int(P.div_splits.div(uint32_t(hsp))) : hsp;
        t.split = kSplit ? hsp - hs * int(P.div_splits.d) : 0;
    }
    const int m_block = kMasked ? m_blocks - 1 - mb_raw : mb_raw;
    t.hki = kPack ? hs : int(P.div_group.div(uint32_t(hs)));
    t.hi = kPack ? hs * p.group : hs;
    t.q_row0 = 0;
    t.sq = p.seqlen_q;
    t.k_row0 = 0;
    t.sk = p.seqlen_k;
    if constexpr (!kDense) { // kDense: no cu_seqlens, seqused or leftpad (the host's promise): none of their loads
        if (p.cu_seqlens_q) {
            t.q_row0 = p.cu_seqlens_q[t.bi];
            t.sq = p.cu_seqlens_q[t.bi + 1] - p.cu_seqlens_q[t.bi];
        }
        if (p.seqused_q) t.sq = p.seqused_q[t.bi];
        const int leftpad = p.leftpad_k ? p.leftpad_k[t.bi] : 0;
        int kend = p.seqlen_k;
        if (p.cu_seqlens_k) {
            t.k_row0 = p.cu_seqlens_k[t.bi];
            kend = p.cu_seqlens_k[t.bi + 1] - p.cu_seqlens_k[t.bi];
        }
        if (p.seqused_k) kend = p.seqused_k[t.bi];
        t.k_row0 += leftpad;
        t.sk = kend - leftpad;
    }
    const int rows = kPack ? P.q_rows : BM;
    t.m0 = m_block * rows;
    if constexpr (kEndAligned<BM, BN, kMasked, kPack, kSplit>) {
        // Causal / local tiles end at the sequence's last row, so a partial tile is the first (lightest) one, not
        // the last, whose keys run to the diagonal. That saves key blocks only where block_m is not a multiple of
        // block_n (d64's 192 x 128 row: 5% of the blocks at 2k causal); at 128 x 128 the block count stays and
        // the diagonal then crosses two key blocks per tile (-4..-5% at 1000 keys on an H200, bench/NOTES.md).
        // Rows above the sequence (m0 < 0) hold no query: TMA fills their Q with zeros (dense) or a neighbour's
        // rows (varlen); like the empty rows below a sequence's end before, they are computed (all keys masked
        // unless sk > sq) and never stored.
        t.m0 -= (BM - t.sq % BM) % BM;
    }
    t.skip = t.m0 >= t.sq;
    t.diag = int64_t(t.sk) - t.sq;
    t.n_end = (t.sk + BN - 1) / BN;
    t.n_begin = 0;
    if constexpr (kMasked) {
        if (p.win_right >= 0) {
            // The sums need 64 bits; the divisions by BN (not a power of two at d192 / d256) only 32, once the key
            // counts are clamped to n_end blocks: 64-bit ones held registers the producer's 24 do not have.
            const int64_t lim = int64_t(t.m0) + rows - 1 + t.diag + p.win_right + 1; // one past the last visible key
            if (lim < int64_t(t.n_end) * BN) t.n_end = lim <= 0 ? 0 : (int(lim) - 1) / BN + 1; // no overflow near 2^31
        }
        if (p.win_left >= 0) {
            const int64_t lo = int64_t(t.m0) + t.diag - p.win_left; // first visible key of the first row
            if (lo > 0) t.n_begin = lo < int64_t(t.n_end) * BN ? int(lo) / BN : t.n_end;
        }
    }
    t.ntiles = t.n_end > t.n_begin ? t.n_end - t.n_begin : 0;
    if constexpr (kSplit) {
        if (!kMasked && P.tail_ctas > 0) { // a tail piece (dense, unmasked: the tile's key blocks are 0 .. tail_nblk - 1)
            t.n_begin = pb;
            t.n_end = pe;
            t.ntiles = pe - pb;
            t.skip = t.skip || pe <= pb; // no piece: nothing to write, the combine does not read its rows
        } else { // split s takes the s-th of num_splits equal runs of the tile's key blocks
            const int per = int(P.div_splits.div(uint32_t(t.ntiles) + P.div_splits.d - 1u));
            const int lo = t.n_begin + t.split * per, hi = min(t.n_end, lo + per);
            t.n_begin = lo;
            t.n_end = hi;
            t.ntiles = hi > lo ? hi - lo : 0;
        }
    }
    return t;
}

template <class Cfg, bool kBf16, bool kMasked, bool kSoftcap, bool kPack, bool kSplit, bool kDense>
__global__ void __launch_bounds__(Cfg::kThreads, 1) fwd_sm90_kernel(const __grid_constant__ Sm90Params P) {
    static_assert(!kSplit || kPack, "split tiles use the packed row map");
#if FLASH_SM90A
    using namespace prim;
    constexpr int D = Cfg::kD, DV = Cfg::kDV, BM = Cfg::kBM, BN = Cfg::kBN, S = Cfg::kStages, CB = Cfg::kCB;
    constexpr int CBV = Cfg::kCBV;
    constexpr int kNT = BN / 8; // n8 column tiles of S
    constexpr float kLn2 = 0.6931471805599453f;
    const FwdParams& p = P.f;
    const int total_tiles = P.n_tiles;

    extern __shared__ unsigned char smem_raw[];
    const uint32_t raw = smem_u32addr(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    constexpr int QS = Cfg::kQSlots;
    auto q_full = [&](int i) { return i == 0 ? base : base + 8u * (6 + 4 * S); };
    auto q_empty = [&](int i) { return i == 0 ? base + 8u : base + 8u * (7 + 4 * S); };
    auto tile_full = [&](int i) { return base + 8u * (2 + i); };   // the tile ring: 2 slots
    auto tile_empty = [&](int i) { return base + 8u * (4 + i); };
    auto k_full = [&](int s) { return base + 8u * (6 + s); };
    auto k_empty = [&](int s) { return base + 8u * (6 + S + s); };
    auto v_full = [&](int s) { return base + 8u * (6 + 2 * S + s); };
    auto v_empty = [&](int s) { return base + 8u * (6 + 3 * S + s); };
    const uint32_t s_tile = base + 512u; // the tile ring's two tile indices
    const uint32_t sQ = base + Cfg::kBarBytes;
    const uint32_t sK = sQ + QS * Cfg::kQBytes;
    const uint32_t sV = sK + S * Cfg::kKVBytes;
    const uint32_t sO = sV + S * Cfg::kVBytes; // kOBuf: 64 rows x DV, taken by the consumer warpgroups in turn
    const uint32_t o_free = base + 8u * (8 + 4 * S); // kOBuf: one phase per use of sO, completed once TMA has read it
    const uint32_t claim_go = base + 8u * (9 + 4 * S); // kDynamic: one phase per tile the load thread has taken

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    // Row origin of block n's box inside the sequence: n * BN, or sk - BN for the partial last block.
    auto origin = [](int n, int sk) { return n * BN + BN > sk ? sk - BN : n * BN; };

    if (tid == 0) {
        for (int i = 0; i < QS; ++i) {
            mbar_init(q_full(i), 1);
            mbar_init(q_empty(i), Cfg::kQSlotO ? Cfg::kCons : 128 * Cfg::kCons); // kQSlotO: one thread per warpgroup
        }
        if (Cfg::kOBuf) mbar_init(o_free, 1);
        if (Cfg::kDynamic) mbar_init(claim_go, 1);
        for (int i = 0; i < 2; ++i) {
            mbar_init(tile_full(i), 1);
            mbar_init(tile_empty(i), 128 * Cfg::kCons + 1); // the consumers and the load thread read each slot
        }
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
    // A tail split's pieces (and after them its combine) are launched as programmatic dependents: they may take
    // each SM as soon as this grid's CTA there exits. Neither reads what this grid writes.
    griddep_launch_dependents();

    // Work tiles: blockIdx.x first, then blockIdx.x + gridDim.x, ... (static), or (kDynamic) the next one
    // claimed from the atomic counter by the scheduler thread (lane 0 of the producer's warp 1), which publishes it
    // through a two-slot ring in shared memory (full/empty mbarriers), ending with the sentinel total_tiles. The
    // load thread reads the ring like the consumers: claiming in the load thread kept one more value live across its
    // loop, and at 24 registers (setmaxnreg) that one was spilled to local memory (bench/NOTES.md step 49).
    // Producer and consumers walk the same tiles and skip the same ones, so the K/V ring position `it` (key blocks
    // so far) and the Q use count `u` (tiles with keys so far) agree without further communication.
    if (wg == 0) {
        // ================= producer =================
        setmaxnreg_dec<Cfg::kRegP>();
        if constexpr (Cfg::kDynamic) {
            if (warp == 1 && lane == 0) {
                // Tile i (i > 0) is claimed once the load thread has taken tile i - 1 (one arrival on claim_go per
                // tile it reads; kClaimLate: once it has issued that tile's last load), so the atomic's latency hides
                // under that tile's loads. Not earlier: a claim as soon as ring slot i frees (tile i - 2 read by all)
                // commits a CTA to its tiles about a tile sooner, and the counter's balance of long and short causal
                // tiles suffered (d256 causal 512-2k -5..-8%; bench/NOTES.md step 49).
                for (int i = 0;; ++i) {
                    const int slot = i & 1;
                    mbar_wait(tile_empty(slot), ((i >> 1) & 1) ^ 1);
                    if (i > 0) mbar_wait(claim_go, (i - 1) & 1);
                    const int tile = i == 0 ? int(blockIdx.x) : int(gridDim.x) + atomicAdd(P.tile_counter, 1);
                    st_shared_b32(s_tile + 4u * slot, uint32_t(tile < total_tiles ? tile : total_tiles));
                    mbar_arrive(tile_full(slot));
                    if (tile >= total_tiles) break;
                }
            }
        }
        if (warp == 0 && lane == 0) {
            tma_prefetch_map(&P.tm_q);
            tma_prefetch_map(&P.tm_k);
            tma_prefetch_map(&P.tm_v);
            int it = 0, u = 0, next = blockIdx.x;
            for (int i = 0;; ++i) {
                int cur = next; // static schedule
                if constexpr (Cfg::kDynamic) {
                    const int slot = i & 1;
                    // kClaimLate: the claim of tile i waits for tile i - 1's last load (here: skipped tiles too;
                    // at the end of the loop the arrival's address held a register the split kernels lacked). With
                    // the K/V ring full the next load waits for the consumers anyway, which should hide the atomic;
                    // a CTA then commits to a tile about S key blocks later (bench/NOTES.md step 50).
                    if (Cfg::kClaimLate && i > 0) mbar_arrive(claim_go);
                    mbar_wait(tile_full(slot), (i >> 1) & 1);
                    cur = int(ld_shared_b32(s_tile + 4u * slot));
                    mbar_arrive(tile_empty(slot));
                    if (!Cfg::kClaimLate) mbar_arrive(claim_go); // the scheduler may claim the next tile now
                } else {
                    next += int(gridDim.x);
                }
                if (cur >= total_tiles) break;
                const TileGeom t = tile_geom<BM, BN, kMasked, kPack, kSplit, kDense>(P, cur);
                if (t.skip || t.ntiles == 0) continue;
                const int qb = !kDense && p.cu_seqlens_q ? 0 : t.bi, kb = !kDense && p.cu_seqlens_k ? 0 : t.bi;
                const int qs = u % QS;
                FLASH_TRACE(8, 0, u);
                mbar_wait(q_empty(qs), ((u / QS) & 1) ^ 1);
                FLASH_TRACE(9, 0, u);
                // Packed: q_rows x group rows (group 6: 126 of 128) arrive.
                mbar_arrive_expect_tx(q_full(qs), kPack ? uint32_t(CB * 128 * P.q_rows * p.group) : uint32_t(Cfg::kQBytes));
                const int qrow = int(t.q_row0) + t.m0; // packed: the map's dimensions are (d, head, row, batch)
#pragma unroll
                for (int c = 0; c < CB; ++c)
                    tma_load_4d(sQ + qs * Cfg::kQBytes + c * BM * 128, &P.tm_q, q_full(qs), c * 64,
                                kPack ? t.hi : qrow, kPack ? qrow : t.hi, qb);
                // Blocks n_end - 1 down to n_begin; only the first can be partial (its box then ends at sk). The rows
                // are stepped rather than derived from (k_row0, sk, n_end), which would stay live at 24 registers.
                int row = int(t.k_row0) + origin(t.n_end - 1, t.sk);
                int row_next = int(t.k_row0) + (t.n_end - 2) * BN;
                for (int j = 0; j < t.ntiles; ++j, ++it, row = row_next, row_next -= BN) {
                    const int s = it % S;
                    const uint32_t ph = (it / S) & 1;
                    mbar_wait(k_empty(s), ph ^ 1);
                    mbar_arrive_expect_tx(k_full(s), Cfg::kKVBytes);
#pragma unroll
                    for (int c = 0; c < CB; ++c)
                        tma_load_4d(sK + s * Cfg::kKVBytes + c * BN * 128, &P.tm_k, k_full(s), c * 64, row, t.hki, kb);
                    mbar_wait(v_empty(s), ph ^ 1);
                    mbar_arrive_expect_tx(v_full(s), Cfg::kVBytes);
#pragma unroll
                    for (int c = 0; c < CBV; ++c)
                        tma_load_4d(sV + s * Cfg::kVBytes + c * BN * 128, &P.tm_v, v_full(s), c * 64, row, t.hki, kb);
                }
                ++u;
                FLASH_TRACE(10, 0, u - 1);
            }
        }
        return;
    }

    // ================= consumers =================
    setmaxnreg_inc<Cfg::kRegC>();
    const int cw = wg - 1, wl = warp & 3, g = lane >> 2, q = lane & 3;
    const int row_l = 64 * cw + 16 * wl + g; // this thread's first row in the CTA tile; the second is +8
    // The query row (inside the tile's m0..) of tile row pm: pm itself, or pm / group when GQA-packed.
    auto qrow_of = [&](int pm) { return kPack ? int(P.div_group.div(uint32_t(pm))) : pm; };

    const float sl2 = kSoftcap ? 1.f : p.scale_log2; // stored score -> log2 units
    float o[DV / 2];
    float s[BN / 2];
    uint32_t pf[BN / 16][4];
    float row_max[2], row_sum[2];

    // Descriptors. desc_base (config): one base per operand, built once from a warp-uniform consumer index (the
    // shuffle tells the compiler so: the bases live in uniform registers), then per wgmma a constant offset in
    // 16-byte units (the address field is bits 0-13; no carry: shared addresses stay below 256 KB). Otherwise
    // each descriptor is built from its address (fewer live registers, more integer work per GEMM).
    const int cwu = Cfg::kDescBase ? __shfl_sync(0xffffffffu, cw, 0) : cw;
    const uint64_t dq0 = desc_kmajor_sw128(sQ + uint32_t(cwu) * 64u * 128u);
    const uint64_t dk0 = desc_kmajor_sw128(sK), dv0 = desc_mnmajor_sw128(sV, BN * 128);
    auto issue_s = [&](int st, int qs) {
        if constexpr (Cfg::kDescBase) {
            const uint64_t dk = dk0 + uint64_t(uint32_t(st) * uint32_t(Cfg::kKVBytes >> 4));
            const uint64_t dq = QS == 1 ? dq0 : dq0 + uint64_t(uint32_t(qs) * uint32_t(Cfg::kQBytes >> 4));
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks) {
                const uint32_t cb = (ks / 4), off = (ks % 4) * 32;
                wgmma_ss<BN, kBf16, 0>(s, dq + ((cb * BM * 128 + off) >> 4), dk + ((cb * BN * 128 + off) >> 4),
                                       ks > 0 ? 1u : 0u);
            }
        } else {
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks) {
                const uint32_t cb = (ks / 4), off = (ks % 4) * 32;
                const uint64_t da =
                    desc_kmajor_sw128(sQ + (QS == 1 ? 0 : qs * Cfg::kQBytes) + cb * BM * 128 + cw * 64 * 128 + off);
                const uint64_t db = desc_kmajor_sw128(sK + st * Cfg::kKVBytes + cb * BN * 128 + off);
                wgmma_ss<BN, kBf16, 0>(s, da, db, ks > 0 ? 1u : 0u);
            }
        }
        wgmma_commit();
    };
    auto issue_pv = [&](int st) {
        if constexpr (Cfg::kDescBase) {
            const uint64_t dv = dv0 + uint64_t(uint32_t(st) * uint32_t(Cfg::kVBytes >> 4));
            wgmma_fence();
            // DV = 96: one N = 96 instruction reads V's first column block and half of the second (the descriptor's
            // leading offset steps between blocks every 64 columns of n); N = 64 + 32 as two was 0-3% slower.
#pragma unroll
            for (int ks = 0; ks < BN / 16; ++ks) wgmma_rs<DV, kBf16, 1>(o, pf[ks], dv + uint64_t(ks * 128), 1u);
        } else {
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < BN / 16; ++ks) {
                const uint64_t db = desc_mnmajor_sw128(sV + st * Cfg::kVBytes + ks * 16 * 128, BN * 128);
                wgmma_rs<DV, kBf16, 1>(o, pf[ks], db, 1u);
            }
        }
        wgmma_commit();
    };
    // Ping-pong: consumer c issues its GEMMs only after the other one has issued its own (named barrier
    // kSched + c, 256 threads: this warpgroup's 128 syncing + the other's 128 arriving). Consumer 1 hands
    // the first turn to consumer 0; consumer 0 takes one extra turn at the very end, so every arrive is
    // consumed. Both walk the same key blocks, so the turns stay paired across tiles.
    constexpr int kSched = 1;     // named barriers kSched, kSched + 1
    constexpr int kEpi = 3;       // kEpi + consumer: one per consumer warpgroup (kTmaO epilogue)
    auto sched_wait = [&]() {
        if constexpr (Cfg::kPingpong) named_barrier_sync(kSched + cw, 256);
    };
    auto sched_pass = [&]() {
        if constexpr (Cfg::kPingpong) named_barrier_arrive(kSched + (1 - cw), 256);
    };
    auto fence_p = [&]() {
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) fence_operand(pf[kk]);
    };
    // Waits for every GEMM of this warpgroup (the last one being a P V on slot st) and releases that V slot.
    auto retire_pv = [&](int st) {
        wgmma_wait<0>();
        fence_operand(o);
        fence_p();
        mbar_arrive(v_empty(st));
    };

    // Softcap and the mask of key block n applied to its scores in s.
    auto mask_scores = [&](const TileGeom& t, int n) {
        const int e0 = origin(n, t.sk);
        if constexpr (kSoftcap) {
#pragma unroll
            for (int i = 0; i < BN / 2; ++i) s[i] = p.softcap_log2 * tanhf(s[i] * p.scale_over_softcap);
        }
        bool need_mask = n * BN + BN > t.sk;
        if constexpr (kMasked) {
            if (p.win_right >= 0 && int64_t(n) * BN + BN - 1 > int64_t(t.m0) + t.diag + p.win_right) need_mask = true;
            if (p.win_left >= 0 && int64_t(n) * BN < int64_t(t.m0) + (kPack ? P.q_rows : BM) - 1 + t.diag - p.win_left)
                need_mask = true;
        }
        if (need_mask) {
            // Column c of the box is key e0 + c. Visible: c in [lo, hi) and, per row, within the window.
            // Limits are clamped to [-1, BN + 1] so the per-element tests stay in 32 bits. This thread's columns
            // are 8 tt + e + 2q: the limits move by -2q once per row so each test compares a constant (one
            // ISETP + FSEL per score); only the partial last block and left windows have a lower limit.
            auto clampi = [](int64_t x) { return int(x < -1 ? -1 : x > BN + 1 ? BN + 1 : x); };
            const int lo = n * BN - e0, hi_end = clampi(int64_t(t.sk) - e0);
            const bool lower = kSoftcap || lo > 0 || (kMasked && p.win_left >= 0); // softcap: one loop (registers)
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int64_t a = int64_t(t.m0) + qrow_of(row_l + 8 * r) + t.diag - e0; // the diagonal's key, box-relative
                int lo_r = lo, hi_r = hi_end;                                 // visible iff lo_r <= c < hi_r
                if constexpr (kMasked) {
                    if (p.win_right >= 0) hi_r = min(hi_r, clampi(a + p.win_right + 1));
                    if (p.win_left >= 0) lo_r = max(lo_r, clampi(a - p.win_left));
                }
                const int lq = lo_r - 2 * q, hq = hi_r - 2 * q;
                if (lower) {
#pragma unroll
                    for (int tt = 0; tt < kNT; ++tt)
#pragma unroll
                        for (int e = 0; e < 2; ++e)
                            if (8 * tt + e < lq || 8 * tt + e >= hq) s[4 * tt + 2 * r + e] = -INFINITY;
                } else {
#pragma unroll
                    for (int tt = 0; tt < kNT; ++tt)
#pragma unroll
                        for (int e = 0; e < 2; ++e)
                            if (8 * tt + e >= hq) s[4 * tt + 2 * r + e] = -INFINITY;
                }
            }
        }
    };
    // Row r's scores -> 2^(score * sl2 - ms) in place; returns their sum (two chains).
    auto exp_row = [&](int r, float ms) {
        float sum2[2] = {0.f, 0.f};
#pragma unroll
        for (int tt = 0; tt < kNT; ++tt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const float pe = exp2_approx(fmaf(s[4 * tt + 2 * r + e], sl2, -ms));
                s[4 * tt + 2 * r + e] = pe;
                sum2[e] += pe;
            }
        return sum2[0] + sum2[1];
    };
    // Row r's max over this thread's values in s: four independent chains (the softmax warp mostly issues alone on
    // its scheduler, so the latency of one 2 * kNT deep chain would be on the critical path).
    auto thread_row_max = [&](int r, float init) {
        float m4[4] = {s[2 * r], s[2 * r + 1], s[4 + 2 * r], s[4 + 2 * r + 1]};
#pragma unroll
        for (int tt = 2; tt < kNT; ++tt)
#pragma unroll
            for (int e = 0; e < 2; ++e) m4[2 * (tt & 1) + e] = fmaxf(m4[2 * (tt & 1) + e], s[4 * tt + 2 * r + e]);
        return fmaxf(fmaxf(fmaxf(m4[0], m4[1]), fmaxf(m4[2], m4[3])), init);
    };
    // Masked scores (in s) -> probabilities in place, with each row's new max in nm, O rescale factor in alpha and
    // block sum in bs; committed (row_sum = row_sum * alpha + bs, row_max = nm) row by row when `now`, else by the
    // caller (commit). Row by row keeps the kSpec 0 / 1 kernels' instruction order as it was before kSpec 2.
    auto rows_full = [&](float (&nm)[2], float (&alpha)[2], float (&bs)[2], bool now) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float old = row_max[r];
            const float mx = quad_max(thread_row_max(r, old));
            // Lazy rescale: keep the old max (alpha = 1, no O rescale) unless the new one exceeds it by more than
            // 8 in log2 units. The first block (old = -inf) always takes the new max; a row that is still fully
            // masked (mx = -inf: the difference is NaN) keeps -inf and uses 0, so its exponentials are exactly 0.
            float ms;
            if (mx * sl2 - old * sl2 > 8.f) {
                ms = mx * sl2;
                alpha[r] = exp2_approx(old * sl2 - ms);
                nm[r] = mx;
            } else {
                ms = old == -INFINITY ? 0.f : old * sl2;
                alpha[r] = 1.f;
                nm[r] = old;
            }
            bs[r] = exp_row(r, ms);
            if (now) {
                row_max[r] = nm[r];
                row_sum[r] = row_sum[r] * alpha[r] + bs[r];
            }
        }
    };
    auto commit = [&](const float (&nm)[2], const float (&alpha)[2], const float (&bs)[2]) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            row_max[r] = nm[r];
            row_sum[r] = row_sum[r] * alpha[r] + bs[r];
        }
    };
    // Scores of key block n (in s) -> probabilities in place; returns the O rescale factors in alpha.
    auto softmax = [&](const TileGeom& t, int n, float (&alpha)[2]) {
        mask_scores(t, n);
        float nm[2], bs[2];
        rows_full(nm, alpha, bs, true);
    };
    // kSpec: the same without the row max. The exponentials are taken against the running max as it stands; a row
    // whose partial sums all stay under 256 * BN / 4 keeps them (then no probability passes it, and fp16 holds
    // them): exact in the same sense as the lazy rescale, l and O sharing the stale max with alpha = 1. Otherwise
    // (a row whose max moved up so far that a partial sum passes the bound -- then by more than 8 in log2 units --,
    // a row's first visible keys, inf, NaN):
    // - kSpec 1: the warpgroup votes, the caller recomputes S by wgmma and takes softmax(), which raises that row's
    //   max (so the fallback cannot repeat on it). A max that moved by 8-13 units may be kept stale: p <= 8192.
    // - kSpec 2 (rescue): a row past the bound takes its new max from the exponentials themselves,
    //   m' = m + log2(max p) / sl2, and scales them by alpha = 2^(m - m') -- no second pass over the scores. Only a
    //   row whose exponentials overflowed (a max that moved by 128 or more, +inf scores) loses its scores and goes
    //   to the recompute. A warp with a row that has no max yet (no visible key so far) runs the full softmax on
    //   its intact scores. Worth it where recomputes are routine: causal tiles whose rows and key blocks do not line
    //   up, so the top rows of a tile see their first key in its second block (bench/NOTES.md step 44); elsewhere
    //   the larger branch cost 1-3% (ibid., session 28).
    // Returns whether the block was kept.
    constexpr float kSpecMax = 256.f * float(BN / 4);
    constexpr int kSpecBar = 6; // kSpecBar + consumer: one named barrier per consumer warpgroup
    static_assert(kSpecBar >= kEpi + Cfg::kCons && kSpecBar + Cfg::kCons <= 16,
                  "the speculative softmax's vote barriers overlap the epilogue's or pass the 16 hardware barriers");
    // Row r's exponentials against its running max. A row with no max yet (no visible key so far): against -FLT_MAX
    // a visible score's exponential is inf, so the block falls back, and a masked one's is 0, so a row still fully
    // masked keeps the block.
    auto exp_stale = [&](int r) { return exp_row(r, row_max[r] == -INFINITY ? -FLT_MAX : row_max[r] * sl2); };
    auto softmax_spec_recompute = [&](const TileGeom& t, int n, float (&alpha)[2]) -> bool {
        mask_scores(t, n);
        float bs[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) bs[r] = exp_stale(r);
        const bool bad = !(bs[0] <= kSpecMax && bs[1] <= kSpecMax); // NaN fails too
        if (named_barrier_or(kSpecBar + cw, 128, bad)) return false;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            row_sum[r] += bs[r];
            alpha[r] = 1.f;
        }
        return true;
    };
    auto softmax_spec_rescue = [&](const TileGeom& t, int n, float (&alpha)[2]) -> bool {
        mask_scores(t, n);
        float nm[2], bs[2];
        bool bad = false;
        // Only a window leaves rows without a max after the first block. Elsewhere (a first block whose scores were
        // all -inf or NaN, from inf inputs) the exponentials against -FLT_MAX are inf for a finite score, and the
        // block is recomputed; a masked score's is 0.
        const bool fresh = kMasked && __any_sync(0xffffffffu, row_max[0] == -INFINITY || row_max[1] == -INFINITY);
        if (fresh) {
            rows_full(nm, alpha, bs, false);
        } else {
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                nm[r] = row_max[r];
                alpha[r] = 1.f;
                bs[r] = exp_stale(r);
            }
            bad = !(bs[0] <= kSpecMax && bs[1] <= kSpecMax); // NaN fails too
        }
        // The common case costs one vote; the rescue a second one, for the recompute.
        if (named_barrier_or(kSpecBar + cw, 128, bad)) {
            bool lost = false;
            if (!fresh) {
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const float mp = quad_max(thread_row_max(r, 0.f));
                    if (mp > 256.f) { // as the lazy rescale: the max moved by more than 8 (NaN scores: mp stays)
                        if (mp <= FLT_MAX && row_max[r] != -INFINITY) {
                            const float ms = row_max[r] * sl2;
                            nm[r] = __fdividef(ms + log2_approx(mp), sl2);
                            alpha[r] = exp2_approx(ms - nm[r] * sl2); // ~1 / mp, against m' as later blocks read it
                            // The sum again from the scaled values: the unscaled ones may sum past FLT_MAX.
                            bs[r] = 0.f;
#pragma unroll
                            for (int tt = 0; tt < kNT; ++tt)
#pragma unroll
                                for (int e = 0; e < 2; ++e) bs[r] += s[4 * tt + 2 * r + e] *= alpha[r];
                        } else {
                            lost = true;
                        }
                    }
                }
            }
            if (named_barrier_or(kSpecBar + cw, 128, lost)) return false;
        }
        commit(nm, alpha, bs);
        return true;
    };
    auto softmax_spec = [&](const TileGeom& t, int n, float (&alpha)[2]) -> bool {
        if constexpr (Cfg::kSpec == 2) return softmax_spec_rescue(t, n, alpha);
        else return softmax_spec_recompute(t, n, alpha);
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
        if (!__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) return; // lazy rescale: mostly skipped
#pragma unroll
        for (int tt = 0; tt < DV / 8; ++tt) {
            o[4 * tt + 0] *= alpha[0];
            o[4 * tt + 1] *= alpha[0];
            o[4 * tt + 2] *= alpha[1];
            o[4 * tt + 3] *= alpha[1];
        }
    };

    if (cw == 1) sched_pass();
    int it = 0, u = 0, tcount = 0;
    // kTmaO: the Q slot (kQSlotO) or the O buffer (kOBuf: 0) whose O this warpgroup's TMA store may still be
    // reading (-1: none). Thread 0 waits for the read and releases it under the next tile's first S GEMM: waiting
    // in the epilogue held its warp, and through the warpgroup's next wgmma the other three, at every tile
    // boundary (+1-2% at 512-1k, up to +6% at 4k; bench/NOTES.md "Hopper forward", step 17).
    int q_pend = -1;
    auto release_pending = [&]() {
        if constexpr (Cfg::kTmaO) {
            if (q_pend >= 0 && (tid & 127) == 0) {
                bulk_wait_read<0>();
                mbar_arrive(Cfg::kOBuf ? o_free : q_empty(q_pend));
            }
            q_pend = -1;
        }
    };
    // kOBuf: uses of the O buffer so far, by all consumer warpgroups. They take it in turn (consumer 0, 1, .., 0, ..):
    // every full tile goes through it, for all or none, so use kCons * e + cw waits for the release of the use before.
    int o_uses = 0;
    for (int i = 0, next = int(blockIdx.x);; ++i, next += int(gridDim.x)) {
        int tile = next; // static schedule (i is then dead code)
        if constexpr (Cfg::kDynamic) {
            const int slot = i & 1;
            mbar_wait(tile_full(slot), (i >> 1) & 1);
            tile = int(ld_shared_b32(s_tile + 4u * slot));
            mbar_arrive(tile_empty(slot));
        }
        if (tile >= total_tiles) break;
        const TileGeom t = tile_geom<BM, BN, kMasked, kPack, kSplit, kDense>(P, tile);
        // A tile without an S GEMM (skipped, or no visible key) releases what the last TMA store holds at once, not
        // under a later GEMM: kOBuf's other warpgroup waits for that release in its epilogue, and this one would
        // next wait for the tile ring, whose slot that warpgroup has not read yet (a cycle: a hang wherever a CTA
        // gets a stored tile, then two such tiles; bench/NOTES.md step 51).
        if (t.skip) {
            release_pending();
            continue;
        }
        FLASH_TRACE(0, 1 + cw, tcount);
#pragma unroll
        for (int i = 0; i < DV / 2; ++i) o[i] = 0.f;
        row_max[0] = row_max[1] = -INFINITY;
        row_sum[0] = row_sum[1] = 0.f;
        // Cfg::kUniform: re-read from lane 0. ptxas cannot prove a value loaded from shared or global memory
        // warp-uniform; after the shuffle the ring positions (it + j) % S derived from it are, and so is every wgmma
        // descriptor built from them (uniform registers, no vector adds and R2UR before each HGMMA).
        const int nt = Cfg::kUniform ? __shfl_sync(0xffffffffu, t.ntiles, 0) : t.ntiles;
        if (nt == 0) release_pending();
        auto nblk = [&](int j) { return t.n_end - 1 - j; };
        // Block j's softmax, its scores in s and its K in slot st; releases that K slot, and Q after the tile's last S
        // GEMM. kSpec: speculative from the second block on, releasing K and Q only once the block is kept (when the
        // speculative softmax lost the scores, S is recomputed from them). The last block too: the full softmax there
        // cost more than the later releases (bench/NOTES.md step 43, call 3).
        auto softmax_block = [&](int j, int st, int qs, float (&alpha)[2]) {
            auto release = [&]() {
                mbar_arrive(k_empty(st));
                if (!Cfg::kQSlotO && j == nt - 1) mbar_arrive(q_empty(qs));
            };
            if (Cfg::kSpec && j > 0) {
                if (!softmax_spec(t, nblk(j), alpha)) {
                    issue_s(st, qs);
                    wgmma_wait<0>();
                    fence_operand(s);
                    softmax(t, nblk(j), alpha);
                }
                release();
            } else {
                release();
                softmax(t, nblk(j), alpha);
            }
        };
        if (nt > 0) {
            const int qs = u % QS;
            mbar_wait(q_full(qs), (u / QS) & 1);
            FLASH_TRACE(1, 1 + cw, tcount);
            if constexpr (Cfg::kOverlap) {
                float alpha[2];
                {
                    const int st = it % S;
                    mbar_wait(k_full(st), (it / S) & 1);
                    FLASH_TRACE(2, 1 + cw, tcount);
                    sched_wait();
                    issue_s(st, qs);
                    if (!(Cfg::kStagger && cw == 0)) sched_pass();
                    release_pending();
                    wgmma_wait<0>();
                    fence_operand(s);
                    FLASH_TRACE(3, 1 + cw, tcount);
                    softmax_block(0, st, qs, alpha);
                    FLASH_TRACE(4, 1 + cw, tcount);
                    to_p();
                    if (Cfg::kStagger && cw == 0) sched_pass(); // consumer 1's first S GEMM waited for this
                }
                for (int j = 1; j < nt; ++j) {
                    const int st = (it + j) % S, pst = (it + j - 1) % S;
                    mbar_wait(k_full(st), ((it + j) / S) & 1);
                    sched_wait();
                    issue_s(st, qs);
                    if (j > 1) rescale(alpha); // block j-1's factors (O is zero before the first P V)
                    mbar_wait(v_full(pst), ((it + j - 1) / S) & 1);
                    issue_pv(pst);
                    sched_pass();
                    wgmma_wait<1>();
                    fence_operand(s);
                    softmax_block(j, st, qs, alpha);
                    retire_pv(pst);
                    to_p();
                }
                if (nt > 1) rescale(alpha);
                FLASH_TRACE(5, 1 + cw, tcount);
                const int lst = (it + nt - 1) % S;
                mbar_wait(v_full(lst), ((it + nt - 1) / S) & 1);
                issue_pv(lst);
                retire_pv(lst);
                FLASH_TRACE(6, 1 + cw, tcount);
            } else {
                for (int j = 0; j < nt; ++j) {
                    const int st = (it + j) % S;
                    const uint32_t ph = ((it + j) / S) & 1;
                    float alpha[2];
                    mbar_wait(k_full(st), ph);
                    sched_wait();
                    issue_s(st, qs);
                    sched_pass();
                    if (j == 0) release_pending();
                    wgmma_wait<0>();
                    fence_operand(s);
                    softmax_block(j, st, qs, alpha);
                    rescale(alpha);
                    to_p();
                    mbar_wait(v_full(st), ph);
                    issue_pv(st);
                    retire_pv(st);
                }
            }
            it += nt;
            ++u;
        }

        // ---- epilogue: deferred 1/l, LSE (natural log), O ----
        // kTmaO: O through this tile's Q slot (the warpgroup's own 64 rows of it, in the swizzled layout TMA
        // reads) and TMA stores issued by one thread, which releases the slot once they have read it (q_pend); rows past
        // the sequence's end (a partial tile, varlen neighbours) go the other way: 32-bit stores straight from
        // registers, each quad writing 16 contiguous bytes per row and column tile.
        // This thread's two rows: query row qi[r] of head qh[r], stored only if it exists (a GQA-packed tile may
        // end in rows beyond q_rows * group that hold no query).
        float inv[2];
        int qi[2], qh[2];
        int64_t arow[2]; // split: the partial's row in o_accum / lse_accum
        bool rv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int pm = row_l + 8 * r, qr = qrow_of(pm);
            qi[r] = t.m0 + qr;
            qh[r] = t.hi + (kPack ? pm - qr * p.group : 0);
            rv[r] = qi[r] < t.sq && (!kEndAligned<BM, BN, kMasked, kPack, kSplit> || qi[r] >= 0) &&
                    (!kPack || qr < P.q_rows);
            if constexpr (kSplit) {
                const int64_t acc_row0 = p.cu_seqlens_q ? t.q_row0 : int64_t(t.bi) * p.seqlen_q;
                arow[r] = !kMasked && P.tail_ctas > 0 ? int64_t(tile) * BM + pm
                                          : (int64_t(t.split) * p.h + qh[r]) * p.acc_rows + acc_row0 + qi[r];
            }
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float l = quad_sum(row_sum[r]);
            const bool any = l > 0.f;
            inv[r] = any ? 1.f / l : 0.f;
            const int i = qi[r];
            if constexpr (kSplit) { // this split's partial: natural-log LSE, -inf when it saw no key of the row
                if (q == 0 && rv[r]) p.lse_accum[arow[r]] = any ? row_max[r] * sl2 * kLn2 + __logf(l) : -INFINITY;
            } else if (p.lse && q == 0 && rv[r]) {
                const int64_t idx = p.lse_unpadded ? int64_t(qh[r]) * p.total_q + t.q_row0 + i
                                                   : (int64_t(t.bi) * p.h + qh[r]) * p.seqlen_q + i;
                p.lse[idx] = any ? row_max[r] * sl2 * kLn2 + __logf(l) : INFINITY;
            }
        }
        const int qs_e = (u + QS - 1) % QS; // this tile's Q slot (u counts it already when nt > 0)
        bool via_tma = false;
        if constexpr (Cfg::kOBuf && !kSplit) // the whole tile's rows, so both warpgroups or neither
            via_tma = nt > 0 && P.tma_o != 0 && t.m0 + BM <= t.sq &&
                      (!kEndAligned<BM, BN, kMasked, kPack, kSplit> || t.m0 >= 0);
        else if constexpr (Cfg::kTmaO && !kSplit)
            via_tma = nt > 0 && P.tma_o != 0 && t.m0 + 64 * (cw + 1) <= t.sq &&
                      (!kEndAligned<BM, BN, kMasked, kPack, kSplit> || t.m0 + 64 * cw >= 0);
        if (via_tma) {
            // Column block c of these 64 rows at ob + c * kOStride: the Q slot's layout, or the O buffer's own.
            constexpr uint32_t kOStride = Cfg::kOBuf ? 64u * 128u : uint32_t(BM * 128);
            const uint32_t ob = Cfg::kOBuf ? sO : sQ + uint32_t(qs_e) * Cfg::kQBytes + uint32_t(cw) * 64u * 128u;
            if constexpr (Cfg::kOBuf) {
                mbar_wait(o_free, uint32_t(((o_uses + cw) & 1) ^ 1));
                o_uses += Cfg::kCons;
            }
            const int mi = lane >> 3, rr = lane & 7;
            const int srow = 16 * wl + rr + 8 * (mi & 1); // the row this lane addresses, inside the 64
#pragma unroll
            for (int kk = 0; kk < DV / 16; ++kk) {
                const int t0 = 2 * kk, t1 = 2 * kk + 1;
                const uint32_t v[4] = {pack2<kBf16>(o[4 * t0 + 0] * inv[0], o[4 * t0 + 1] * inv[0]),
                                       pack2<kBf16>(o[4 * t0 + 2] * inv[1], o[4 * t0 + 3] * inv[1]),
                                       pack2<kBf16>(o[4 * t1 + 0] * inv[0], o[4 * t1 + 1] * inv[0]),
                                       pack2<kBf16>(o[4 * t1 + 2] * inv[1], o[4 * t1 + 3] * inv[1])};
                const int col = 16 * kk + 8 * (mi >> 1);
                const uint32_t addr = ob + uint32_t(col >> 6) * kOStride + uint32_t(srow) * 128u +
                                      (uint32_t(((col & 63) >> 3) ^ (srow & 7)) << 4);
                stmatrix_x4(addr, v);
            }
            fence_proxy_async_smem();
            named_barrier_sync(kEpi + cw, 128);
            if ((tid & 127) == 0) {
#pragma unroll
                for (int c = 0; c < CBV; ++c)
                    tma_store_4d(&P.tm_o, ob + uint32_t(c) * kOStride, c * 64, int(t.q_row0) + t.m0 + 64 * cw,
                                 t.hi, !kDense && p.cu_seqlens_q ? 0 : t.bi);
                bulk_commit();
            }
            q_pend = Cfg::kOBuf ? 0 : qs_e; // released under the next tile's first S GEMM
        } else {
            if constexpr (kSplit) { // fp32 partial O: each quad writes 32 contiguous bytes per row and column tile
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    if (!rv[r]) continue;
                    float* orow = p.o_accum + arow[r] * P.acc_d;
#pragma unroll
                    for (int tt = 0; tt < DV / 8; ++tt) {
                        const int col = 8 * tt + 2 * q;
                        const float2 v = make_float2(o[4 * tt + 2 * r] * inv[r], o[4 * tt + 2 * r + 1] * inv[r]);
                        if (col + 2 <= p.dv) *reinterpret_cast<float2*>(orow + col) = v;
                        else if (col < p.dv) orow[col] = v.x;
                    }
                }
            } else {
                uint16_t* gO = static_cast<uint16_t*>(p.o) + (!kDense && p.cu_seqlens_q ? 0 : int64_t(t.bi) * p.o_batch) +
                               t.q_row0 * p.o_row;
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    if constexpr (Cfg::kPairO) {
                        // Lanes q and q ^ 1 trade one value per pair of column tiles, so each holds 4 adjacent
                        // columns: even lanes of tile tt, odd lanes of tt + 1. Every lane takes part in the
                        // shuffle, its row stored or not.
                        const bool odd = (q & 1) != 0;
                        uint16_t* orow = rv[r] ? gO + int64_t(qi[r]) * p.o_row + int64_t(qh[r]) * p.o_head : gO;
                        const bool a8 = (reinterpret_cast<uintptr_t>(orow) & 7u) == 0;
#pragma unroll
                        for (int tt = 0; tt < DV / 8; tt += 2) {
                            const uint32_t a = pack2<kBf16>(o[4 * tt + 2 * r] * inv[r], o[4 * tt + 2 * r + 1] * inv[r]);
                            const uint32_t b =
                                pack2<kBf16>(o[4 * tt + 4 + 2 * r] * inv[r], o[4 * tt + 4 + 2 * r + 1] * inv[r]);
                            const uint32_t got = __shfl_xor_sync(0xffffffffu, odd ? a : b, 1);
                            const uint32_t lo = odd ? got : a, hi = odd ? b : got;
                            const int col = odd ? 8 * tt + 8 + 2 * q - 2 : 8 * tt + 2 * q;
                            if (!rv[r]) continue;
                            if (a8 && col + 4 <= p.dv) {
                                *reinterpret_cast<uint2*>(orow + col) = make_uint2(lo, hi);
                            } else { // a row not 8-byte aligned, or the last columns of a dv not a multiple of 4
                                if (col + 2 <= p.dv) *reinterpret_cast<uint32_t*>(orow + col) = lo;
                                else if (col < p.dv) orow[col] = uint16_t(lo);
                                if (col + 4 <= p.dv) *reinterpret_cast<uint32_t*>(orow + col + 2) = hi;
                                else if (col + 2 < p.dv) orow[col + 2] = uint16_t(hi);
                            }
                        }
                        continue;
                    }
                    if (!rv[r]) continue;
                    uint16_t* orow = gO + int64_t(qi[r]) * p.o_row + int64_t(qh[r]) * p.o_head;
#pragma unroll
                    for (int tt = 0; tt < DV / 8; ++tt) {
                        const int col = 8 * tt + 2 * q;
                        const uint32_t v = pack2<kBf16>(o[4 * tt + 2 * r] * inv[r], o[4 * tt + 2 * r + 1] * inv[r]);
                        if (col + 2 <= p.dv) *reinterpret_cast<uint32_t*>(orow + col) = v;
                        else if (col < p.dv) orow[col] = uint16_t(v);
                    }
                }
            }
            if constexpr (Cfg::kQSlotO) {
                if (nt > 0) { // every thread of the warpgroup is past its last read of the Q slot
                    named_barrier_sync(kEpi + cw, 128);
                    if ((tid & 127) == 0) mbar_arrive(q_empty(qs_e));
                }
            }
        }
        FLASH_TRACE(7, 1 + cw, tcount);
        ++tcount;
    }
    release_pending(); // kOBuf: the other warpgroup may still wait for this one's last use of the O buffer
    if constexpr (Cfg::kTmaO) {
        // Shared memory must outlive the copies' reads of it; their global writes complete with the grid (no wait for
        // them here: a CTA per tile would hold its SM through their latency before the next one could start).
        if ((tid & 127) == 0) bulk_wait_read<0>();
    }
    if (cw == 0) sched_wait(); // consume consumer 1's last hand-over (no barrier left half-arrived at exit)
    // A tail split's pieces start while the main grid still runs; this CTA ends only once that grid has
    // completed, so the combine after it (and whatever the stream runs next) sees the whole O written.
    if constexpr (kSplit) {
        if (tid == 128) {
            griddep_wait();
        }
    }
#else
    FLASH_ARCH_TRAP();
#endif
}

} // namespace flash::cuda::sm90
