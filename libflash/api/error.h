// Thread-local error state behind flash_last_error(). Every failing path calls set_error exactly once,
// with a message that names the field and the values, and returns its code unchanged.
#pragma once

#include <cstdint>

#include "flash.h"

namespace flash {

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int32_t set_error(int32_t code, const char* fmt, ...);

// Records a CUDA runtime failure: code FLASH_ERROR_CUDA, the cudaError_t value and "<what>: <cuda message>".
int32_t set_cuda_error(int32_t cuda_error, const char* cuda_message, const char* what);

void clear_error();

// The kernel path of the current call (flash_last_kernel): a static string, set by the backend that ran it;
// clear_error() resets it, so a failed or not-yet-run call reports "".
void set_kernel(const char* name);
const char* last_kernel();

} // namespace flash
