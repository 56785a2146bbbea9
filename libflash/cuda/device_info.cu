#include "device_info.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <mutex>

#include "../api/error.h"

namespace flash::cuda {

namespace {
// Instantiated head dims, ascending.
constexpr int kCompiledDims[] = {
#ifdef FLASH_HDIM_32
    32,
#endif
#ifdef FLASH_HDIM_64
    64,
#endif
#ifdef FLASH_HDIM_96
    96,
#endif
#ifdef FLASH_HDIM_128
    128,
#endif
#ifdef FLASH_HDIM_192
    192,
#endif
#ifdef FLASH_HDIM_256
    256,
#endif
    0};
} // namespace

int pick_dim(int d, int dv) {
    const int need = std::max(d, dv);
    for (int x : kCompiledDims)
        if (x != 0 && x >= need) return x;
    return 0;
}

int32_t device_info(int dev, DevInfo* out) {
    static std::mutex mu;
    static DevInfo cache[64];
    static bool have[64] = {};
    const bool cacheable = dev >= 0 && dev < 64;
    if (cacheable) {
        std::lock_guard<std::mutex> lk(mu);
        if (have[dev]) {
            *out = cache[dev];
            return FLASH_OK;
        }
    }
    DevInfo d;
    cudaError_t e = cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return set_cuda_error(e, cudaGetErrorString(e), "cudaDeviceGetAttribute");
    }
    if (cacheable) {
        std::lock_guard<std::mutex> lk(mu);
        cache[dev] = d;
        have[dev] = true;
    }
    *out = d;
    return FLASH_OK;
}

} // namespace flash::cuda
