// The forward inner loop shared by flash_fwd and flash_fwd_kvcache: one block of query rows of one head
// against a range of keys, with a tiled online softmax in base 2 (FA2's scale_log2 trick). The caller
// loads the (scaled) queries and finalizes the accumulators, so splits and rotary stay outside.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "../api/seqinfo.h"
#include "convert.h"
#include "philox.h"
#include "simd.h"

namespace flash::cpu {

constexpr int kBlockM = 64; // query rows per task
constexpr int kBlockN = 64; // keys per tile; a multiple of 8 so dropout groups never straddle tiles
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kInf = std::numeric_limits<float>::infinity();

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Carves 64-byte aligned float arrays out of a workspace slice.
struct Carve {
    char* p;
    float* take(int64_t n) {
        float* r = reinterpret_cast<float*>(p);
        p += round_up(n * 4, 64);
        return r;
    }
    static int64_t bytes(int64_t n) { return round_up(n * 4, 64); }
};

// The workspace of the whole call: per-thread slices of `per_thread` bytes after a 64-byte alignment pad.
inline char* thread_slice(void* ws, int64_t per_thread, int thread) {
    const uintptr_t base = (reinterpret_cast<uintptr_t>(ws) + 63) & ~uintptr_t(63);
    return reinterpret_cast<char*>(base) + per_thread * thread;
}

// Key (or value) rows of one sequence and one KV head: dense, varlen or paged.
template <class T>
struct KVRows {
    const T* base = nullptr;      // includes the head offset (and the batch offset when dense)
    int64_t row_stride = 0;
    int64_t row0 = 0;             // dense/varlen: first row of key 0 (leftpad included)
    const int32_t* pages = nullptr; // paged: this sequence's block_table row
    int64_t page_stride = 0;
    int32_t page_size = 1;
    int32_t leftpad = 0;

    const T* row(int64_t j) const {
        if (!pages) return base + (row0 + j) * row_stride;
        const int64_t t = leftpad + j;
        return base + int64_t(pages[t / page_size]) * page_stride + (t % page_size) * row_stride;
    }
    T* mut_row(int64_t j) const { return const_cast<T*>(row(j)); }
};

// K or V rows of sequence `bi`, KV head `hk` in the layout the problem describes.
template <class T>
KVRows<T> kv_rows(const FwdProblem& p, const void* data, const Strides& st, const SeqInfo& s, int bi, int hk) {
    KVRows<T> r;
    r.base = static_cast<const T*>(data) + int64_t(hk) * st.head;
    r.row_stride = st.row;
    r.leftpad = s.leftpad;
    if (p.block_table) {
        r.pages = p.block_table + int64_t(bi) * p.block_table_batch_stride;
        r.page_stride = st.batch;
        r.page_size = p.page_block_size;
    } else {
        if (!(p.cu_seqlens_k && !p.kvcache)) r.base += int64_t(s.kv_batch) * st.batch;
        r.row0 = s.k_row0;
    }
    return r;
}

// Visible key columns [lo, hi] of query row r (the mask rule of problem.h / mask_visible, solved for j).
struct ColRange {
    int64_t lo, hi;
};
inline ColRange visible_cols(const Mask& m, int64_t r, int32_t sq, int32_t sk) {
    const int64_t a = r + sk - sq;
    ColRange c{0, int64_t(sk) - 1};
    if (m.left >= 0) c.lo = std::max<int64_t>(c.lo, a - m.left);
    if (m.right >= 0) c.hi = std::min<int64_t>(c.hi, a + m.right);
    return c;
}

// One query-row block's forward state, all fp32: Q (pre-scaled), the running max (base-2 units), the running
// sum and the unnormalized output (dvp = dv rounded up to kPad).
struct FwdTile {
    int m = 0;      // rows
    int64_t r0 = 0; // first row inside the sequence
    float* q = nullptr;  // [m, d]
    float* o = nullptr;  // [m, dvp]
    float* mx = nullptr; // [m]
    float* l = nullptr;  // [m]
};

// Scratch for one thread's key tiles.
struct FwdScratch {
    float* kt = nullptr; // [d, kBlockN], K transposed
    float* v = nullptr;  // [kBlockN, dvp]
    float* s = nullptr;  // [kBlockM, kBlockN]
    static int64_t bytes(int d, int dvp) {
        return Carve::bytes(int64_t(d) * kBlockN) + Carve::bytes(int64_t(kBlockN) * dvp) +
               Carve::bytes(int64_t(kBlockM) * kBlockN);
    }
    void carve(Carve& c, int d, int dvp) {
        kt = c.take(int64_t(d) * kBlockN);
        v = c.take(int64_t(kBlockN) * dvp);
        s = c.take(int64_t(kBlockM) * kBlockN);
    }
};

// Everything about the (sequence, head) the tile belongs to.
struct FwdHead {
    int bi = 0, hi = 0;
    int32_t sq = 0, sk = 0;
    float slope_log2 = 0.f; // ALiBi slope in base-2 units, 0 = none
};

// kt[x * kBlockN + jj] = K[j0 + jj][x] for jj < kc, zero for the rest of the tile.
template <class D>
void pack_kt(const KVRows<typename D::T>& kr, int64_t j0, int kc, int d, float* kt) {
    for (int jj = 0; jj < kc; ++jj) {
        const auto* kp = kr.row(j0 + jj);
        for (int x = 0; x < d; ++x) kt[x * kBlockN + jj] = D::load(kp[x]);
    }
    if (kc < kBlockN)
        for (int x = 0; x < d; ++x) std::fill(kt + x * kBlockN + kc, kt + (x + 1) * kBlockN, 0.f);
}

// dst[jj * np + x] = R[j0 + jj][x] for jj < kc, x < n; zero padding up to np. Rows are always repacked:
// reading them in place would walk rows h*d floats apart, which for the usual power-of-two strides puts
// every row in the same L1 set.
template <class D>
void pack_rows(const KVRows<typename D::T>& rr, int64_t j0, int kc, int n, int np, float* dst) {
    for (int jj = 0; jj < kc; ++jj) {
        const auto* src = rr.row(j0 + jj);
        float* out = dst + int64_t(jj) * np;
        for (int x = 0; x < n; ++x) out[x] = D::load(src[x]);
        std::fill(out + n, out + np, 0.f);
    }
}

// s = Q·Kᵀ of rows [r0, r0+m) and the key tile [j0, j0+kBlockN) becomes base-2 logits: softcap, then ALiBi,
// then the mask (-inf outside the row's visible columns and outside [jb, je)). full = no column is masked.
// th (optional, [m, kBlockN]) receives tanh of the capped scores for the backward's chain rule.
inline void score_tile(const FwdProblem& p, const FwdHead& hd, float* s, int m, int64_t r0, int64_t j0, int64_t jb,
                       int64_t je, bool full, float* th) {
    const float cap = p.softcap > 0.f ? p.softcap * kLog2e : 0.f;
    for (int i = 0; i < m; ++i) {
        float* srow = s + int64_t(i) * kBlockN;
        const int64_t r = r0 + i;
        if (cap != 0.f) {
            for (int jj = 0; jj < kBlockN; ++jj) {
                const float t = std::tanh(srow[jj]);
                if (th) th[int64_t(i) * kBlockN + jj] = t;
                srow[jj] = cap * t;
            }
        }
        if (hd.slope_log2 != 0.f) {
            const int64_t a = r + hd.sk - hd.sq;
            for (int jj = 0; jj < kBlockN; ++jj) srow[jj] -= hd.slope_log2 * float(std::llabs(a - (j0 + jj)));
        }
        if (!full) {
            const ColRange c = visible_cols(p.mask, r, hd.sq, hd.sk);
            const int64_t a0 = std::max(c.lo, jb) - j0, a1 = std::min(c.hi + 1, je) - j0;
            if (a1 <= a0) {
                std::fill(srow, srow + kBlockN, -kInf);
            } else {
                std::fill(srow, srow + a0, -kInf);
                std::fill(srow + a1, srow + kBlockN, -kInf);
            }
        }
    }
}

// How the Q loader must scale so that q·k lands in the units fwd_attend expects.
inline float q_prescale(const FwdProblem& p) { return p.softcap > 0.f ? p.scale / p.softcap : p.scale_log2; }

// Runs the tile against keys [c_begin, c_end) ∩ the tile's visible columns, updating t.o / t.mx / t.l.
template <class D>
void fwd_attend(const FwdProblem& p, const Kernels& K, const FwdHead& hd, FwdTile& t, const FwdScratch& w,
                const KVRows<typename D::T>& kr, const KVRows<typename D::T>& vr, int64_t c_begin, int64_t c_end) {
    const int d = p.d, dv = p.dv, dvp = int(round_up(dv, kPad));
    const ColRange first = visible_cols(p.mask, t.r0, hd.sq, hd.sk);
    const ColRange last = visible_cols(p.mask, t.r0 + t.m - 1, hd.sq, hd.sk);
    const int64_t lo = std::max<int64_t>(c_begin, first.lo), hi = std::min<int64_t>(c_end - 1, last.hi);
    if (hi < lo) return;
    const bool dropout = p.dropout.p > 0.f;

    for (int64_t j0 = lo / kBlockN * kBlockN; j0 <= hi; j0 += kBlockN) {
        const int64_t jb = std::max(j0, c_begin), je = std::min(j0 + kBlockN, c_end);
        const int kc = int(je - j0); // the tile holds columns [j0, je); those below jb are masked
        pack_kt<D>(kr, j0, kc, d, w.kt);
        pack_rows<D>(vr, j0, kc, dv, dvp, w.v);

        K.gemm(t.m, kBlockN, d, t.q, d, 1, w.kt, kBlockN, w.s, kBlockN, 0);

        // Whole tile visible to every row: no per-row masking needed.
        const bool full = jb == j0 && je == j0 + kBlockN && j0 >= last.lo && j0 + kBlockN - 1 <= first.hi;
        score_tile(p, hd, w.s, t.m, t.r0, j0, jb, je, full, nullptr);
        for (int i = 0; i < t.m; ++i) {
            float* srow = w.s + int64_t(i) * kBlockN;
            const int64_t r = t.r0 + i;
            const float mnew = std::max(t.mx[i], K.row_max(srow, kBlockN));
            if (mnew == -kInf) { // nothing visible yet in this row
                std::fill(srow, srow + kBlockN, 0.f);
                continue;
            }
            const float alpha = std::exp2(t.mx[i] - mnew);
            const float rs = K.exp2_sum(srow, kBlockN, mnew);
            t.l[i] = t.l[i] * alpha + rs;
            if (alpha != 1.f) K.scale(t.o + int64_t(i) * dvp, dvp, alpha);
            t.mx[i] = mnew;
            if (dropout) {
                for (int g = 0; g < kc; g += 8) {
                    const uint32_t keep = dropout_keep8(p.dropout.seed, p.dropout.offset, uint32_t(hd.bi),
                                                        uint32_t(p.h), uint32_t(hd.hi), uint32_t(r),
                                                        uint32_t((j0 + g) >> 3), p.dropout.threshold16);
                    for (int u = 0; u < 8; ++u)
                        if (!(keep >> u & 1u)) srow[g + u] = 0.f;
                }
            }
        }
        K.gemm(t.m, dvp, kc, w.s, kBlockN, 1, w.v, dvp, t.o, dvp, 1);
    }
}

// Resets a tile's accumulators before the first fwd_attend.
inline void fwd_tile_reset(FwdTile& t, int dvp) {
    std::fill(t.o, t.o + int64_t(t.m) * dvp, 0.f);
    std::fill(t.mx, t.mx + t.m, -kInf);
    std::fill(t.l, t.l + t.m, 0.f);
}

// Natural-log LSE of a finished row (+inf when nothing was visible).
inline float tile_lse(const FwdTile& t, int i) {
    if (t.l[i] == 0.f || t.mx[i] == -kInf) return kInf;
    return (t.mx[i] + std::log2(t.l[i])) * kLn2;
}

} // namespace flash::cpu
