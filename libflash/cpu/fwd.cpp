// flash_fwd on the CPU: one task per (sequence, head, block of kBlockM query rows), each computed start to
// finish by one thread with a fixed order of operations, so the bits do not depend on the thread count.
#include <type_traits>

#include "../api/error.h"
#include "attn_core.h"
#include "cpu_backend.h"
#include "fwd_io.h"
#include "thread_pool.h"

namespace flash::cpu {
namespace {

template <class D>
struct FwdRun {
    const FwdProblem& p;
    void* ws;
    int64_t per_thread;
    int nqb;

    void task(int64_t t, int thread) const {
        const int qb = nqb - 1 - int(t % nqb); // heavy (late, causal) row blocks first
        const int hi = int(t / nqb % p.h);
        const int bi = int(t / nqb / p.h);
        const SeqInfo s = seq_info(p, bi);
        const int64_t r0 = int64_t(qb) * kBlockM;
        if (r0 >= s.sq) return;
        auto [tile, w] = fwd_begin<D>(p, s, bi, hi, r0, thread_slice(ws, per_thread, thread));
        const FwdHead hd = fwd_head(p, s, bi, hi);
        if (s.sk > 0) {
            const int hk = hi / p.group;
            const auto kr = kv_rows<typename D::T>(p, p.k, p.sk_, s, bi, hk);
            const auto vr = kv_rows<typename D::T>(p, p.v, p.sv_, s, bi, hk);
            fwd_attend<D>(p, kernels(), hd, tile, w, kr, vr, 0, s.sk);
        }
        store_o<D>(p, s, bi, hi, tile, p.dropout.rp_keep);
    }
};

} // namespace

uint64_t fwd_workspace_size(const FwdProblem& p) { return 64 + uint64_t(fwd_thread_bytes(p)) * num_threads(); }

int32_t fwd(const FwdProblem& p, void* workspace, uint64_t workspace_bytes) {
    if (p.b == 0 || p.seqlen_q == 0) return FLASH_OK;
    if (workspace_bytes < fwd_workspace_size(p) || !workspace)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "workspace_bytes=%llu is below the %llu bytes needed",
                         (unsigned long long)workspace_bytes, (unsigned long long)fwd_workspace_size(p));
    const int nqb = int((p.seqlen_q + kBlockM - 1) / kBlockM);
    const int64_t ntasks = int64_t(p.b) * p.h * nqb;
    dispatch_dtype(p.dtype, [&](auto tag) {
        using D = decltype(tag);
        const FwdRun<D> run{p, workspace, fwd_thread_bytes(p), nqb};
        parallel_for(ntasks, [&](int64_t t, int th) { run.task(t, th); });
        return 0;
    });
    return FLASH_OK;
}

} // namespace flash::cpu
