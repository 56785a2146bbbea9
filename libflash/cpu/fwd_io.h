// Loading query tiles (with rotary for the KV cache) and storing finished output rows and LSE.
#pragma once

#include <algorithm>

#include "attn_core.h"
#include "rotary.h"

namespace flash::cpu {

struct FwdTileMem {
    static int64_t bytes(int d, int dvp) {
        return Carve::bytes(int64_t(kBlockM) * d) + Carve::bytes(int64_t(kBlockM) * dvp) +
               2 * Carve::bytes(kBlockM);
    }
    static void carve(Carve& c, FwdTile& t, int d, int dvp) {
        t.q = c.take(int64_t(kBlockM) * d);
        t.o = c.take(int64_t(kBlockM) * dvp);
        t.mx = c.take(kBlockM);
        t.l = c.take(kBlockM);
    }
};

inline FwdHead fwd_head(const FwdProblem& p, const SeqInfo& s, int bi, int hi) {
    FwdHead hd;
    hd.bi = bi;
    hd.hi = hi;
    hd.sq = s.sq;
    hd.sk = s.sk;
    if (p.alibi) hd.slope_log2 = p.alibi[int64_t(bi) * p.alibi_batch_stride + hi] * kLog2e;
    return hd;
}

// Row r of sequence bi, head hi of a q-like tensor (q, o, dq, do): varlen ignores the batch stride.
template <class T>
inline T* qrow(const FwdProblem& p, const void* base, const Strides& st, const SeqInfo& s, int bi, int hi,
               int64_t r) {
    const int64_t b_off = p.cu_seqlens_q ? 0 : int64_t(bi) * st.batch;
    return const_cast<T*>(static_cast<const T*>(base)) + b_off + (s.q_row0 + r) * st.row + int64_t(hi) * st.head;
}

// Index of (sequence bi, head hi, row r) in the LSE-shaped arrays ([b, h, sq] or [h, total_q]).
inline int64_t lse_index(const FwdProblem& p, const SeqInfo& s, int bi, int hi, int64_t r) {
    if (p.lse_unpadded) return int64_t(hi) * p.total_q + s.q_row0 + r;
    return (int64_t(bi) * p.h + hi) * p.seqlen_q + r;
}

// t.q = scale * q (rotated first, and rounded back to the storage type as the GPU kernels do, for the
// KV cache with rotary_dim > 0).
template <class D>
void load_q(const FwdProblem& p, const SeqInfo& s, int bi, int hi, FwdTile& t, float scale) {
    const bool rot = p.kvcache && p.rotary_dim > 0;
    const bool per_row = p.mask.causal || p.mask.local;
    for (int i = 0; i < t.m; ++i) {
        const auto* src = qrow<const typename D::T>(p, p.q, p.sq_, s, bi, hi, t.r0 + i);
        float* dst = t.q + int64_t(i) * p.d;
        for (int x = 0; x < p.d; ++x) dst[x] = D::load(src[x]);
        if (rot) {
            const int64_t pos = int64_t(p.cache_seqlens[bi]) + (per_row ? t.r0 + i : 0);
            apply_rotary<D>(p, dst, pos);
        }
        for (int x = 0; x < p.d; ++x) dst[x] *= scale;
    }
}

// One thread's working set for a tile: FwdTileMem + FwdScratch, carved from its fwd_thread_bytes slice.
struct FwdWork {
    FwdTile tile;
    FwdScratch w;
};

inline int64_t fwd_thread_bytes(const FwdProblem& p) {
    const int dvp = int(round_up(p.dv, kPad));
    return FwdTileMem::bytes(p.d, dvp) + FwdScratch::bytes(p.d, dvp);
}

// Carves the working set from `slice`, loads the scaled query rows [r0, min(r0 + kBlockM, s.sq)) and resets the
// accumulators: the start of every forward tile (flash_fwd and the KV cache alike).
template <class D>
FwdWork fwd_begin(const FwdProblem& p, const SeqInfo& s, int bi, int hi, int64_t r0, char* slice) {
    const int dvp = int(round_up(p.dv, kPad));
    Carve c{slice};
    FwdWork k;
    FwdTileMem::carve(c, k.tile, p.d, dvp);
    k.w.carve(c, p.d, dvp);
    k.tile.r0 = r0;
    k.tile.m = int(std::min<int64_t>(kBlockM, s.sq - r0));
    load_q<D>(p, s, bi, hi, k.tile, q_prescale(p));
    fwd_tile_reset(k.tile, dvp);
    return k;
}

// Writes O = acc * (rp_keep / l) and the LSE of every row of the tile; rows with nothing visible get 0 / +inf.
template <class D>
void store_o(const FwdProblem& p, const SeqInfo& s, int bi, int hi, const FwdTile& t, float rp_keep) {
    const int dvp = int(round_up(p.dv, kPad));
    for (int i = 0; i < t.m; ++i) {
        const float lse = tile_lse(t, i);
        if (p.lse) p.lse[lse_index(p, s, bi, hi, t.r0 + i)] = lse;
        auto* dst = qrow<typename D::T>(p, p.o, p.so_, s, bi, hi, t.r0 + i);
        const float* src = t.o + int64_t(i) * dvp;
        const float inv = lse == kInf ? 0.f : rp_keep / t.l[i];
        for (int x = 0; x < p.dv; ++x) dst[x] = D::store(src[x] * inv);
    }
}

} // namespace flash::cpu
