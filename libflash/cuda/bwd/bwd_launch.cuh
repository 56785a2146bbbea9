// The body of run_bwd, included by the generated instantiation files only.
#pragma once

#include <atomic>

#include "api/error.h"
#include "bwd_kernel.cuh"
#include "bwd_launch.h"
#include "../smem_optin.h"

namespace flash::cuda {

namespace bwd_detail {

template <class Cfg, bool kBf16, bool kMasked, bool kFull>
int32_t launch_bwd(const BwdParams& p, bool deterministic, cudaStream_t stream) {
    {
        auto kernel = bwd_kernel<Cfg, kBf16, kMasked, kFull>;
        static std::atomic<uint64_t> configured{0};
        if (int32_t st = ensure_smem_optin(kernel, Cfg::kSmem, configured, "cudaFuncSetAttribute(bwd smem)")) return st;
        const dim3 grid(unsigned(ceil_div(p.seqlen_k, Cfg::kBN)), unsigned(p.hk), unsigned(p.b));
        if (grid.x > 0) kernel<<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p);
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "bwd kernel launch");
    }
    if (deterministic) {
        auto kernel = bwd_dq_kernel<Cfg, kBf16, kMasked, kFull>;
        static std::atomic<uint64_t> configured{0};
        if (int32_t st = ensure_smem_optin(kernel, Cfg::kDqSmem, configured, "cudaFuncSetAttribute(bwd smem)")) return st;
        const dim3 grid(unsigned(ceil_div(p.seqlen_q, Cfg::kBM)), unsigned(p.h), unsigned(p.b));
        if (grid.x > 0) kernel<<<grid, Cfg::kThreads, Cfg::kDqSmem, stream>>>(p);
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "bwd dq kernel launch");
    }
    return FLASH_OK;
}

} // namespace bwd_detail

template <bool kBf16, int kD, bool kMasked, bool kSmall, int kDV>
int32_t run_bwd(const BwdParams& p, bool full, bool deterministic, cudaStream_t stream) {
    using Cfg = BwdCfg<kD, kSmall, kDV>;
    if (full) return bwd_detail::launch_bwd<Cfg, kBf16, kMasked, true>(p, deterministic, stream);
    return bwd_detail::launch_bwd<Cfg, kBf16, kMasked, false>(p, deterministic, stream);
}

} // namespace flash::cuda
