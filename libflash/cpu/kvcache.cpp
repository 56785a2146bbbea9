// flash_fwd_kvcache on the CPU: append knew/vnew (k rotated) into the dense or paged cache, then attend with
// the forward tile loop, optionally split over the keys (flash-decoding) and combined with the LSE rule.
#include <algorithm>
#include <cmath>

#include "../api/error.h"
#include "attn_core.h"
#include "cpu_backend.h"
#include "fwd_io.h"
#include "thread_pool.h"

namespace flash::cpu {
namespace {

int q_blocks(const FwdProblem& p) { return int((p.seqlen_q + kBlockM - 1) / kBlockM); }

// Splits depend on the shapes only (never on the thread count), so a result never depends on the machine's
// core count either: aim for ~64 tasks, each split keeping at least 4 key tiles.
int num_splits(const FwdProblem& p) {
    if (p.num_splits > 0) return p.num_splits;
    const int64_t tasks = int64_t(p.b) * p.h * q_blocks(p);
    if (tasks == 0 || tasks >= 64) return 1; // tasks == 0: nothing to attend (b or seqlen_q is 0)
    int32_t max_sk = 0;
    for (int i = 0; i < p.b; ++i) max_sk = std::max(max_sk, seq_info(p, i).sk);
    const int64_t tiles = (int64_t(max_sk) + kBlockN - 1) / kBlockN;
    const int64_t want = std::min<int64_t>((64 + tasks - 1) / tasks, tiles / 4);
    return int(std::clamp<int64_t>(want, 1, 256));
}

uint64_t partial_floats(const FwdProblem& p, int ns) {
    if (ns <= 1) return 0;
    return uint64_t(p.b) * p.h * p.seqlen_q * ns * uint64_t(p.dv + 1);
}

template <class D>
void append_kv(const FwdProblem& p, int bi, int hk) {
    using T = typename D::T;
    const SeqInfo s = seq_info(p, bi);
    const auto kr = kv_rows<T>(p, p.k, p.sk_, s, bi, hk);
    const auto vr = kv_rows<T>(p, p.v, p.sv_, s, bi, hk);
    const int64_t pos0 = p.cache_seqlens[bi];
    for (int r = 0; r < p.seqlen_knew; ++r) {
        const int64_t j = pos0 + r - s.leftpad; // key index of buffer position pos0 + r
        const T* kn = static_cast<const T*>(p.knew) + int64_t(bi) * p.sknew_.batch + r * p.sknew_.row +
                      int64_t(hk) * p.sknew_.head;
        const T* vn = static_cast<const T*>(p.vnew) + int64_t(bi) * p.svnew_.batch + r * p.svnew_.row +
                      int64_t(hk) * p.svnew_.head;
        T* kd = kr.mut_row(j);
        if (p.rotary_dim > 0) {
            float x[256];
            for (int c = 0; c < p.d; ++c) x[c] = D::load(kn[c]);
            apply_rotary<D>(p, x, pos0 + r);
            for (int c = 0; c < p.d; ++c) kd[c] = D::store(x[c]);
        } else {
            std::copy(kn, kn + p.d, kd);
        }
        std::copy(vn, vn + p.dv, vr.mut_row(j));
    }
}

template <class D>
struct KVRun {
    const FwdProblem& p;
    void* ws;
    int64_t per_thread;
    int nqb, ns;
    float* part; // [b, h, seqlen_q, ns, dv] partial outputs, then [b, h, seqlen_q, ns] LSEs

    int64_t part_row(int bi, int hi, int64_t r) const { return (int64_t(bi) * p.h + hi) * p.seqlen_q + r; }
    float* part_o(int bi, int hi, int64_t r, int sp) const { return part + (part_row(bi, hi, r) * ns + sp) * p.dv; }
    float* part_lse(int bi, int hi, int64_t r) const {
        return part + int64_t(p.b) * p.h * p.seqlen_q * ns * p.dv + part_row(bi, hi, r) * ns;
    }

    void attend(int64_t t, int thread) const {
        const int sp = int(t % ns);
        const int64_t rest = t / ns;
        const int qb = int(rest % nqb), hi = int(rest / nqb % p.h), bi = int(rest / nqb / p.h);
        const SeqInfo s = seq_info(p, bi);
        const int64_t r0 = int64_t(qb) * kBlockM;
        if (r0 >= s.sq) return;
        const int dvp = int(round_up(p.dv, kPad));
        auto [tile, w] = fwd_begin<D>(p, s, bi, hi, r0, thread_slice(ws, per_thread, thread));
        // Split sp covers whole key tiles, so every split sees the same tile boundaries as an unsplit run.
        const int64_t tiles = (int64_t(std::max(s.sk, 0)) + kBlockN - 1) / kBlockN;
        const int64_t per = (tiles + ns - 1) / ns;
        const int64_t c0 = std::min<int64_t>(sp * per * kBlockN, s.sk);
        const int64_t c1 = std::min<int64_t>((sp + 1) * per * kBlockN, s.sk);
        if (c1 > c0) {
            const int hk = hi / p.group;
            const auto kr = kv_rows<typename D::T>(p, p.k, p.sk_, s, bi, hk);
            const auto vr = kv_rows<typename D::T>(p, p.v, p.sv_, s, bi, hk);
            fwd_attend<D>(p, kernels(), fwd_head(p, s, bi, hi), tile, w, kr, vr, c0, c1);
        }
        if (ns == 1) {
            store_o<D>(p, s, bi, hi, tile, 1.f);
            return;
        }
        for (int i = 0; i < tile.m; ++i) {
            const float lse = tile_lse(tile, i);
            const float inv = lse == kInf ? 0.f : 1.f / tile.l[i];
            float* dst = part_o(bi, hi, r0 + i, sp);
            const float* src = tile.o + int64_t(i) * dvp;
            for (int x = 0; x < p.dv; ++x) dst[x] = src[x] * inv;
            part_lse(bi, hi, r0 + i)[sp] = lse == kInf ? -kInf : lse;
        }
    }

    // L = log Σ exp(lse_s − m) + m, O = Σ exp(lse_s − L)·O_s, summed in split order.
    void combine(int64_t t) const {
        const int qb = int(t % nqb), hi = int(t / nqb % p.h), bi = int(t / nqb / p.h);
        const SeqInfo s = seq_info(p, bi);
        const int64_t r0 = int64_t(qb) * kBlockM, r1 = std::min<int64_t>(r0 + kBlockM, s.sq);
        using T = typename D::T;
        float acc[256];
        for (int64_t r = r0; r < r1; ++r) {
            const float* ls = part_lse(bi, hi, r);
            float m = -kInf;
            for (int sp = 0; sp < ns; ++sp) m = std::max(m, ls[sp]);
            float lse = kInf;
            std::fill(acc, acc + p.dv, 0.f);
            if (m != -kInf) {
                float sum = 0.f;
                for (int sp = 0; sp < ns; ++sp) sum += std::exp(ls[sp] - m);
                lse = std::log(sum) + m;
                for (int sp = 0; sp < ns; ++sp) {
                    if (ls[sp] == -kInf) continue;
                    const float wgt = std::exp(ls[sp] - lse);
                    const float* o = part_o(bi, hi, r, sp);
                    for (int x = 0; x < p.dv; ++x) acc[x] += wgt * o[x];
                }
            }
            if (p.lse) p.lse[lse_index(p, s, bi, hi, r)] = lse;
            T* dst = qrow<T>(p, p.o, p.so_, s, bi, hi, r);
            for (int x = 0; x < p.dv; ++x) dst[x] = D::store(acc[x]);
        }
    }
};

} // namespace

uint64_t fwd_kvcache_workspace_size(const FwdProblem& p) {
    return 128 + uint64_t(fwd_thread_bytes(p)) * num_threads() + 4 * partial_floats(p, num_splits(p));
}

int32_t fwd_kvcache(const FwdProblem& p, void* workspace, uint64_t workspace_bytes) {
    if (p.b == 0) return FLASH_OK;
    if (workspace_bytes < fwd_kvcache_workspace_size(p) || !workspace)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "workspace_bytes=%llu is below the %llu bytes needed",
                         (unsigned long long)workspace_bytes, (unsigned long long)fwd_kvcache_workspace_size(p));
    dispatch_dtype(p.dtype, [&](auto tag) {
        using D = decltype(tag);
        if (p.knew && p.seqlen_knew > 0)
            parallel_for(int64_t(p.b) * p.hk, [&](int64_t t, int) { append_kv<D>(p, int(t / p.hk), int(t % p.hk)); });
        if (p.seqlen_q == 0) return 0;
        const int ns = num_splits(p);
        const int64_t per_thread = fwd_thread_bytes(p);
        float* part = reinterpret_cast<float*>(thread_slice(workspace, per_thread, num_threads()));
        const KVRun<D> run{p, workspace, per_thread, q_blocks(p), ns, part};
        const int64_t rows = int64_t(p.b) * p.h * run.nqb;
        parallel_for(rows * ns, [&](int64_t t, int th) { run.attend(t, th); });
        if (ns > 1) parallel_for(rows, [&](int64_t t, int) { run.combine(t); });
        return 0;
    });
    return FLASH_OK;
}

} // namespace flash::cpu
