// The body of launch_attn / attn_occupancy, included by the kv_hdim*.cu instantiation files only.
#pragma once

#include <atomic>

#include "../../api/error.h"
#include "kv_kernel.cuh"
#include "kv_launch.h"
#include "../smem_optin.h"

namespace flash::cuda::kv {

template <int kD, bool kBf16>
int32_t configure_attn() {
    using Cfg = KVCfg<kD>;
    static std::atomic<uint64_t> configured{0};
    return ensure_smem_optin(kv_attn_kernel<Cfg, kBf16>, Cfg::kSmem, configured, "cudaFuncSetAttribute(kvcache smem)");
}

template <int kD, bool kBf16>
int32_t launch_attn(const KVParams& p, dim3 grid, cudaStream_t stream) {
    using Cfg = KVCfg<kD>;
    if (int32_t st = configure_attn<kD, kBf16>(); st != FLASH_OK) return st;
    kv_attn_kernel<Cfg, kBf16><<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "kvcache attention launch");
    return FLASH_OK;
}

template <int kD, bool kBf16>
int32_t attn_occupancy(int* ctas_per_sm) {
    using Cfg = KVCfg<kD>;
    if (int32_t st = configure_attn<kD, kBf16>(); st != FLASH_OK) return st;
    const cudaError_t e =
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(ctas_per_sm, kv_attn_kernel<Cfg, kBf16>, Cfg::kThreads, Cfg::kSmem);
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    if (*ctas_per_sm < 1) *ctas_per_sm = 1;
    return FLASH_OK;
}

} // namespace flash::cuda::kv

#define FLASH_KV_INSTANTIATE(D)                                                                            \
    namespace flash::cuda::kv {                                                                            \
    template int32_t launch_attn<D, true>(const KVParams&, dim3, cudaStream_t);                            \
    template int32_t launch_attn<D, false>(const KVParams&, dim3, cudaStream_t);                           \
    template int32_t attn_occupancy<D, true>(int*);                                                        \
    template int32_t attn_occupancy<D, false>(int*);                                                       \
    }
