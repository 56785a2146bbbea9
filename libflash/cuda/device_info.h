// Host-side facts every CUDA entry point plans with: the instantiated head dims and the device's
// attributes (cached per device, since cudaDeviceGetAttribute sits on every call's path).
#pragma once

#include <cstdint>

namespace flash::cuda {

struct DevInfo {
    int sms = 0, major = 0, minor = 0;
    int smem_optin = 0; // max dynamic shared memory per block (cudaDevAttrMaxSharedMemoryPerBlockOptin)
};

// flash_status; on failure the error is set.
int32_t device_info(int dev, DevInfo* out);

// The smallest compiled head-dim instantiation holding both d and dv (FLASH_HDIM_<d> from sources.cmake),
// 0 if none.
int pick_dim(int d, int dv);

} // namespace flash::cuda
