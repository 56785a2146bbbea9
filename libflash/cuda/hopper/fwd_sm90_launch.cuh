// The body of run_fwd_sm90, included by the generated instantiation files only.
#pragma once

#include <atomic>

#include "../launch_ex.h"
#include "../smem_optin.h"
#include "fwd_sm90_kernel.cuh"

namespace flash::cuda::sm90 {

template <class Cfg, bool kBf16, bool kMasked, bool kSoftcap, int kVar>
int32_t launch_fwd_sm90(const Sm90Params& p, dim3 grid, bool pdl, cudaStream_t stream) {
    auto kernel = fwd_sm90_kernel<Cfg, kBf16, kMasked, kSoftcap, kVar == kVarPack || kVar == kVarSplit,
                                  kVar == kVarSplit, kVar == kVarDense>;
    static std::atomic<uint64_t> configured{0};
    if (int32_t st = ensure_smem_optin(kernel, Cfg::kSmem, configured, "cudaFuncSetAttribute(sm90 fwd smem)")) return st;
    const cudaError_t e = launch_ex(kernel, grid, dim3(Cfg::kThreads), Cfg::kSmem, stream, pdl, p);
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "sm90 fwd kernel launch");
    return FLASH_OK;
}

// GQA packing and split-KV are their own instantiations (one file each, kVar), so the plain kernels carry none
// of their index arithmetic; so is the dense plain kernel, compiled only for the rows whose `dense` flag is set
// (kSm90Tiles), without a softcap kernel (softcap calls take the plain one: the d64 3-consumer row's dense softcap
// kernel spilled 52 B).
template <bool kBf16, int kD, int kDV, bool kMasked, int kAlt, int kVar>
int32_t run_fwd_sm90_row(const Sm90Params& p, dim3 grid, bool softcap, bool pdl, cudaStream_t stream) {
    using Cfg = Sm90Cfg<kD, kDV, kMasked, kAlt>;
    if constexpr (kVar == kVarDense) {
        if constexpr (!sm90_tile(kD, kDV, kMasked, kAlt).dense) {
            return set_error(FLASH_ERROR_INTERNAL,
                             "sm90 fwd: tile row %d of d%d / dv%d has no dense kernel (its dense flag is off)", kAlt, kD,
                             kDV);
        } else {
            if (softcap) return set_error(FLASH_ERROR_INTERNAL, "sm90 fwd: softcap routed to the dense kernel");
            return launch_fwd_sm90<Cfg, kBf16, kMasked, false, kVar>(p, grid, pdl, stream);
        }
    } else {
        if constexpr (sm90_tile(kD, kDV, kMasked, kAlt).softcap) {
            if (softcap) return launch_fwd_sm90<Cfg, kBf16, kMasked, true, kVar>(p, grid, pdl, stream);
        } else if (softcap) {
            return set_error(FLASH_ERROR_INTERNAL,
                             "sm90 fwd: softcap routed to tile row %d of d%d / dv%d, which has no softcap kernel "
                             "(sm90_pick)", kAlt, kD, kDV);
        }
        return launch_fwd_sm90<Cfg, kBf16, kMasked, false, kVar>(p, grid, pdl, stream);
    }
}

template <bool kBf16, int kD, int kDV, bool kMasked, int kVar>
int32_t run_fwd_sm90(const Sm90Params& p, dim3 grid, bool softcap, int alt, bool pdl, cudaStream_t stream) {
    if constexpr (sm90_alts(kD, kDV, kMasked) == 2) {
        if (alt == 1) return run_fwd_sm90_row<kBf16, kD, kDV, kMasked, 1, kVar>(p, grid, softcap, pdl, stream);
    }
    return run_fwd_sm90_row<kBf16, kD, kDV, kMasked, 0, kVar>(p, grid, softcap, pdl, stream);
}

} // namespace flash::cuda::sm90
