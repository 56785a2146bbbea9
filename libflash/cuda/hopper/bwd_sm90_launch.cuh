// The body of run_bwd_sm90, included by the generated instantiation files only.
#pragma once

#include <atomic>

#include "api/error.h"
#include "../smem_optin.h"
#include "bwd_sm90_kernel.cuh"

namespace flash::cuda::sm90 {

template <class Cfg, bool kBf16, bool kMasked, bool kBulkDq>
int32_t launch_bwd_sm90(const Bwd90Params& p, dim3 grid, cudaStream_t stream) {
    auto kernel = bwd_sm90_kernel<Cfg, kBf16, kMasked, kBulkDq>;
    static std::atomic<uint64_t> configured{0};
    if (int32_t st = ensure_smem_optin(kernel, Cfg::kSmem, configured, "cudaFuncSetAttribute(sm90 bwd smem)")) return st;
    if (grid.x > 0) kernel<<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "sm90 bwd kernel launch");
    return FLASH_OK;
}

template <bool kBf16, int kD, bool kMasked>
int32_t run_bwd_sm90(const Bwd90Params& p, dim3 grid, bool atomic_dq, cudaStream_t stream) {
    using Cfg = Bwd90Cfg<kD>;
    if (atomic_dq) return launch_bwd_sm90<Cfg, kBf16, kMasked, false>(p, grid, stream);
    return launch_bwd_sm90<Cfg, kBf16, kMasked, true>(p, grid, stream);
}

} // namespace flash::cuda::sm90
