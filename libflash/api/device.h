// What the API layer needs from the CUDA runtime, behind functions that also exist (and fail cleanly)
// in a CPU-only build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flash {

// Number of usable CUDA devices; 0 without a driver or without the CUDA backend (never an error).
int32_t cuda_device_count();

// Makes `device` current on this thread for the lifetime of the guard, then restores the previous one.
class DeviceGuard {
public:
    DeviceGuard() = default;
    int32_t enter(int32_t device); // flash_status; sets the error on failure
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    [[maybe_unused]] int32_t previous_ = -1; // unused in CPU-only builds
};

// Copies `bytes` from device memory to host memory (debug-time index checks only). flash_status.
int32_t copy_device_to_host(void* dst, const void* src, size_t bytes, const char* what);

// FLASH_CHECK_POINTERS=1: verifies that `ptr` lives on the device the params name (device_type/id).
int32_t check_pointer_location(const char* field, const void* ptr, int32_t device_type, int32_t device_id);

// Environment switches, read once.
bool env_check_pointers(); // FLASH_CHECK_POINTERS=1
bool env_check_indices();  // FLASH_CHECK_INDICES=1: copy device index arrays to the host and check them

} // namespace flash
