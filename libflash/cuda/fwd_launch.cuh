// The body of run_fwd, included by the generated instantiation files only.
#pragma once

#include <atomic>

#include "api/error.h"
#include "fwd_kernel.cuh"
#include "fwd_launch.h"
#include "smem_optin.h"

namespace flash::cuda {

template <class Cfg, bool kBf16, bool kMasked, bool kFull>
int32_t launch_fwd_kernel(const FwdParams& p, dim3 grid, cudaStream_t stream) {
    auto kernel = fwd_kernel<Cfg, kBf16, kMasked, kFull>;
    static std::atomic<uint64_t> configured{0};
    if (int32_t st = ensure_smem_optin(kernel, Cfg::kSmem, configured, "cudaFuncSetAttribute(fwd smem)")) return st;
    kernel<<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "fwd kernel launch");
    return FLASH_OK;
}

template <bool kBf16, int kD, bool kMasked, int kDV>
int32_t run_fwd(const FwdParams& p, dim3 grid, bool full, cudaStream_t stream) {
    using Cfg = FwdCfg<kD, kMasked, kDV>;
    if (full) return launch_fwd_kernel<Cfg, kBf16, kMasked, true>(p, grid, stream);
    return launch_fwd_kernel<Cfg, kBf16, kMasked, false>(p, grid, stream);
}

} // namespace flash::cuda
