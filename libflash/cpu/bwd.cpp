// flash_bwd on the CPU, deterministic by construction: three passes with one owner per output element.
//   pass 0: D = rowsum(dO∘O) per (sequence, head, row block)           -> workspace (and dsoftmax_sum)
//   pass 1: dK, dV per (sequence, KV head, key tile), looping over the group's query heads and row blocks
//   pass 2: dQ per (sequence, head, row block), looping over key tiles
// P is recomputed from the LSE in both passes (no sq x sk storage); every sum has a fixed order.
#include <algorithm>
#include <cmath>

#include "../api/error.h"
#include "attn_core.h"
#include "cpu_backend.h"
#include "fwd_io.h"
#include "thread_pool.h"

namespace flash::cpu {
namespace {

// One thread's tiles: key side [kBlockN, ...], query side [kBlockM, ...]; d and dv padded to kPad.
struct BwdScratch {
    float *kt, *vt, *kr, *q, *dout, *p, *dp, *th, *dk, *dv, *dq, *dsum, *lse2;

    template <class F>
    static void layout(int d, int dv, F&& take) {
        const int64_t dp = round_up(d, kPad), dvp = round_up(dv, kPad);
        take(&BwdScratch::kt, int64_t(d) * kBlockN);
        take(&BwdScratch::vt, int64_t(dv) * kBlockN);
        take(&BwdScratch::kr, int64_t(kBlockN) * dp);
        take(&BwdScratch::q, int64_t(kBlockM) * dp);
        take(&BwdScratch::dout, int64_t(kBlockM) * dvp);
        take(&BwdScratch::p, int64_t(kBlockM) * kBlockN);
        take(&BwdScratch::dp, int64_t(kBlockM) * kBlockN);
        take(&BwdScratch::th, int64_t(kBlockM) * kBlockN);
        take(&BwdScratch::dk, int64_t(kBlockN) * dp);
        take(&BwdScratch::dv, int64_t(kBlockN) * dvp);
        take(&BwdScratch::dq, int64_t(kBlockM) * dp);
        take(&BwdScratch::dsum, kBlockM);
        take(&BwdScratch::lse2, kBlockM);
    }
    static int64_t bytes(int d, int dv) {
        int64_t n = 0;
        layout(d, dv, [&](float* BwdScratch::*, int64_t f) { n += Carve::bytes(f); });
        return n;
    }
    void carve(Carve& c, int d, int dv) {
        layout(d, dv, [&](float* BwdScratch::*m, int64_t f) { this->*m = c.take(f); });
    }
};

template <class D>
struct BwdRun {
    using T = typename D::T;
    const BwdProblem& bp;
    const FwdProblem& p;
    void* ws;
    int64_t per_thread;
    float* dbuf; // D in the LSE layout
    int dp, dvp;

    BwdScratch scratch(int thread) const {
        Carve c{thread_slice(ws, per_thread, thread)};
        BwdScratch w;
        w.carve(c, p.d, p.dv);
        return w;
    }

    // Pass 0.
    void rowsum(int bi, int hi, int64_t r0, int m, const SeqInfo& s) const {
        for (int i = 0; i < m; ++i) {
            const T* o = qrow<const T>(p, p.o, p.so_, s, bi, hi, r0 + i);
            const T* g = qrow<const T>(p, bp.dout, bp.sdo_, s, bi, hi, r0 + i);
            float acc = 0.f;
            for (int x = 0; x < p.dv; ++x) acc += D::load(o[x]) * D::load(g[x]);
            const int64_t li = lse_index(p, s, bi, hi, r0 + i);
            dbuf[li] = acc;
            if (bp.dsoftmax_sum) bp.dsoftmax_sum[li] = acc;
        }
    }

    // Loads the query-side operands of rows [r0, r0+m) of head hi: scaled Q, dO, D and the base-2 LSE.
    void load_rows(const BwdScratch& w, const SeqInfo& s, int bi, int hi, int64_t r0, int m) const {
        const float qs = q_prescale(p);
        for (int i = 0; i < m; ++i) {
            const T* q = qrow<const T>(p, p.q, p.sq_, s, bi, hi, r0 + i);
            const T* g = qrow<const T>(p, bp.dout, bp.sdo_, s, bi, hi, r0 + i);
            float* qd = w.q + int64_t(i) * dp;
            float* gd = w.dout + int64_t(i) * dvp;
            for (int x = 0; x < p.d; ++x) qd[x] = D::load(q[x]) * qs;
            std::fill(qd + p.d, qd + dp, 0.f);
            for (int x = 0; x < p.dv; ++x) gd[x] = D::load(g[x]);
            std::fill(gd + p.dv, gd + dvp, 0.f);
            const int64_t li = lse_index(p, s, bi, hi, r0 + i);
            w.dsum[i] = dbuf[li];
            w.lse2[i] = p.lse[li] * kLog2e;
        }
    }

    // With w.kt / w.vt holding key tile [j0, j0+kc) and w.q / w.dout rows [r0, r0+m): w.p = P (dropout applied,
    // rescaled), w.dp = dS with respect to the raw score scale·q·k (the chain rule through softcap included).
    void tile_grads(const Kernels& K, const BwdScratch& w, const FwdHead& hd, int64_t r0, int m, int64_t j0,
                    int kc) const {
        K.gemm(m, kBlockN, p.d, w.q, dp, 1, w.kt, kBlockN, w.p, kBlockN, 0);
        score_tile(p, hd, w.p, m, r0, j0, j0, j0 + kc, false, p.softcap > 0.f ? w.th : nullptr);
        K.gemm(m, kBlockN, p.dv, w.dout, dvp, 1, w.vt, kBlockN, w.dp, kBlockN, 0);
        const bool dropout = p.dropout.p > 0.f;
        const float rp = p.dropout.rp_keep;
        for (int i = 0; i < m; ++i) {
            float* pr = w.p + int64_t(i) * kBlockN;
            float* dpr = w.dp + int64_t(i) * kBlockN;
            if (w.lse2[i] == kInf) { // the row saw nothing in the forward
                std::fill(pr, pr + kBlockN, 0.f);
                std::fill(dpr, dpr + kBlockN, 0.f);
                continue;
            }
            K.exp2_sum(pr, kBlockN, w.lse2[i]);
            if (dropout) {
                const int64_t r = r0 + i;
                for (int g = 0; g < kc; g += 8) {
                    const uint32_t keep = dropout_keep8(p.dropout.seed, p.dropout.offset, uint32_t(hd.bi),
                                                        uint32_t(p.h), uint32_t(hd.hi), uint32_t(r),
                                                        uint32_t((j0 + g) >> 3), p.dropout.threshold16);
                    for (int u = 0; u < 8; ++u) {
                        if (keep >> u & 1u) {
                            dpr[g + u] *= rp;
                        } else {
                            dpr[g + u] = 0.f;
                        }
                    }
                }
            }
            // dS = P ∘ (dP − D) uses the undropped P; dV needs the dropped, rescaled one, built after.
            K.dsoftmax(dpr, pr, dpr, kBlockN, w.dsum[i]);
            if (p.softcap > 0.f) {
                const float* t = w.th + int64_t(i) * kBlockN;
                for (int jj = 0; jj < kBlockN; ++jj) dpr[jj] *= 1.f - t[jj] * t[jj];
            }
            if (dropout) {
                const int64_t r = r0 + i;
                for (int g = 0; g < kc; g += 8) {
                    const uint32_t keep = dropout_keep8(p.dropout.seed, p.dropout.offset, uint32_t(hd.bi),
                                                        uint32_t(p.h), uint32_t(hd.hi), uint32_t(r),
                                                        uint32_t((j0 + g) >> 3), p.dropout.threshold16);
                    for (int u = 0; u < 8; ++u) pr[g + u] = (keep >> u & 1u) ? pr[g + u] * rp : 0.f;
                }
            }
        }
    }

    void pack_kv(const BwdScratch& w, const SeqInfo& s, int bi, int hk, int64_t j0, int kc, bool rows) const {
        const auto kr = kv_rows<T>(p, p.k, p.sk_, s, bi, hk);
        const auto vr = kv_rows<T>(p, p.v, p.sv_, s, bi, hk);
        pack_kt<D>(kr, j0, kc, p.d, w.kt);
        pack_kt<D>(vr, j0, kc, p.dv, w.vt);
        if (rows) pack_rows<D>(kr, j0, kc, p.d, dp, w.kr);
    }

    // Pass 1: one key tile of one KV head.
    void dkdv(int bi, int hk, int64_t j0, int thread) const {
        const SeqInfo s = seq_info(p, bi);
        if (j0 >= s.sk) return;
        const Kernels& K = kernels();
        const BwdScratch w = scratch(thread);
        const int kc = int(std::min<int64_t>(kBlockN, s.sk - j0));
        std::fill(w.dk, w.dk + int64_t(kBlockN) * dp, 0.f);
        std::fill(w.dv, w.dv + int64_t(kBlockN) * dvp, 0.f);
        if (s.sq > 0) {
            pack_kv(w, s, bi, hk, j0, kc, false);
            // Rows that can see a key of [j0, j0+kc): the visible range is monotone in the row.
            int64_t rlo = 0, rhi = s.sq - 1;
            const int64_t shift = int64_t(s.sk) - s.sq;
            if (p.mask.right >= 0) rlo = std::max<int64_t>(rlo, j0 - p.mask.right - shift);
            if (p.mask.left >= 0) rhi = std::min<int64_t>(rhi, j0 + kc - 1 + p.mask.left - shift);
            for (int g = 0; g < p.group; ++g) {
                const int hi = hk * p.group + g;
                const FwdHead hd = fwd_head(p, s, bi, hi);
                for (int64_t r0 = rlo; r0 <= rhi; r0 += kBlockM) {
                    const int m = int(std::min<int64_t>(kBlockM, rhi + 1 - r0));
                    load_rows(w, s, bi, hi, r0, m);
                    tile_grads(K, w, hd, r0, m, j0, kc);
                    K.gemm(kc, dvp, m, w.p, 1, kBlockN, w.dout, dvp, w.dv, dvp, 1);
                    K.gemm(kc, dp, m, w.dp, 1, kBlockN, w.q, dp, w.dk, dp, 1);
                }
            }
        }
        // dS was taken against the raw score scale·q·k while w.q holds q·q_prescale.
        const float kscale = p.scale / q_prescale(p);
        const auto dkr = kv_rows<T>(p, bp.dk, bp.sdk_, s, bi, hk);
        const auto dvr = kv_rows<T>(p, bp.dv, bp.sdv_, s, bi, hk);
        for (int jj = 0; jj < kc; ++jj) {
            T* a = dkr.mut_row(j0 + jj);
            T* b = dvr.mut_row(j0 + jj);
            for (int x = 0; x < p.d; ++x) a[x] = D::store(w.dk[int64_t(jj) * dp + x] * kscale);
            for (int x = 0; x < p.dv; ++x) b[x] = D::store(w.dv[int64_t(jj) * dvp + x]);
        }
    }

    // Pass 2: one row block of one query head.
    void dq(int bi, int hi, int64_t r0, int thread) const {
        const SeqInfo s = seq_info(p, bi);
        if (r0 >= s.sq) return;
        const Kernels& K = kernels();
        const BwdScratch w = scratch(thread);
        const int m = int(std::min<int64_t>(kBlockM, s.sq - r0));
        std::fill(w.dq, w.dq + int64_t(m) * dp, 0.f);
        if (s.sk > 0) {
            load_rows(w, s, bi, hi, r0, m);
            const FwdHead hd = fwd_head(p, s, bi, hi);
            const ColRange first = visible_cols(p.mask, r0, s.sq, s.sk);
            const ColRange last = visible_cols(p.mask, r0 + m - 1, s.sq, s.sk);
            const int hk = hi / p.group;
            for (int64_t j0 = std::max<int64_t>(first.lo, 0) / kBlockN * kBlockN; j0 <= last.hi; j0 += kBlockN) {
                const int kc = int(std::min<int64_t>(kBlockN, s.sk - j0));
                pack_kv(w, s, bi, hk, j0, kc, true);
                tile_grads(K, w, hd, r0, m, j0, kc);
                K.gemm(m, dp, kc, w.dp, kBlockN, 1, w.kr, dp, w.dq, dp, 1);
            }
        }
        for (int i = 0; i < m; ++i) {
            T* dst = qrow<T>(p, bp.dq, bp.sdq_, s, bi, hi, r0 + i);
            for (int x = 0; x < p.d; ++x) dst[x] = D::store(w.dq[int64_t(i) * dp + x] * p.scale);
        }
    }
};

int64_t dbuf_floats(const FwdProblem& p) {
    return p.lse_unpadded ? int64_t(p.h) * p.total_q : int64_t(p.b) * p.h * p.seqlen_q;
}

} // namespace

uint64_t bwd_workspace_size(const BwdProblem& bp) {
    return 64 + uint64_t(BwdScratch::bytes(bp.f.d, bp.f.dv)) * num_threads() + 4 * uint64_t(dbuf_floats(bp.f));
}

int32_t bwd(const BwdProblem& bp, void* workspace, uint64_t workspace_bytes) {
    const FwdProblem& p = bp.f;
    if (p.b == 0) return FLASH_OK;
    if (workspace_bytes < bwd_workspace_size(bp) || !workspace)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "workspace_bytes=%llu is below the %llu bytes needed",
                         (unsigned long long)workspace_bytes, (unsigned long long)bwd_workspace_size(bp));
    dispatch_dtype(p.dtype, [&](auto tag) {
        using D = decltype(tag);
        const int64_t per_thread = BwdScratch::bytes(p.d, p.dv);
        float* dbuf = reinterpret_cast<float*>(thread_slice(workspace, per_thread, num_threads()));
        const BwdRun<D> run{bp, p, workspace, per_thread, dbuf, int(round_up(p.d, kPad)), int(round_up(p.dv, kPad))};
        const int nqb = int((p.seqlen_q + kBlockM - 1) / kBlockM);
        const int nkb = int((p.seqlen_k + kBlockN - 1) / kBlockN);
        parallel_for(int64_t(p.b) * p.h * nqb, [&](int64_t t, int) {
            const int bi = int(t / nqb / p.h), hi = int(t / nqb % p.h);
            const int64_t r0 = int64_t(t % nqb) * kBlockM;
            const SeqInfo s = seq_info(p, bi);
            if (r0 < s.sq) run.rowsum(bi, hi, r0, int(std::min<int64_t>(kBlockM, s.sq - r0)), s);
        });
        parallel_for(int64_t(p.b) * p.hk * nkb, [&](int64_t t, int th) {
            run.dkdv(int(t / nkb / p.hk), int(t / nkb % p.hk), int64_t(t % nkb) * kBlockN, th);
        });
        parallel_for(int64_t(p.b) * p.h * nqb, [&](int64_t t, int th) {
            run.dq(int(t / nqb / p.h), int(t / nqb % p.h), int64_t(nqb - 1 - t % nqb) * kBlockM, th);
        });
        return 0;
    });
    return FLASH_OK;
}

} // namespace flash::cpu
