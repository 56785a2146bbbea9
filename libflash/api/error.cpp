#include "error.h"

#include <cstdarg>
#include <cstdio>

namespace flash {
namespace {
thread_local char t_message[1024] = "";
thread_local int32_t t_cuda_error = 0;
thread_local const char* t_kernel = "";
} // namespace

int32_t set_error(int32_t code, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(t_message, sizeof t_message, fmt, ap);
    va_end(ap);
    t_cuda_error = 0;
    return code;
}

int32_t set_cuda_error(int32_t cuda_error, const char* cuda_message, const char* what) {
    std::snprintf(t_message, sizeof t_message, "%s: CUDA error %d (%s)", what, cuda_error,
                  cuda_message ? cuda_message : "unknown");
    t_cuda_error = cuda_error;
    return FLASH_ERROR_CUDA;
}

void clear_error() {
    t_message[0] = '\0';
    t_cuda_error = 0;
    t_kernel = "";
}

void set_kernel(const char* name) { t_kernel = name ? name : ""; }

const char* last_kernel() { return t_kernel; }

} // namespace flash

extern "C" {

FLASH_API const char* flash_status_string(int32_t status) {
    switch (status) {
    case FLASH_OK: return "FLASH_OK";
    case FLASH_ERROR_INVALID_ARGUMENT: return "FLASH_ERROR_INVALID_ARGUMENT";
    case FLASH_ERROR_UNSUPPORTED: return "FLASH_ERROR_UNSUPPORTED";
    case FLASH_ERROR_NOT_IMPLEMENTED: return "FLASH_ERROR_NOT_IMPLEMENTED";
    case FLASH_ERROR_CUDA: return "FLASH_ERROR_CUDA";
    case FLASH_ERROR_OUT_OF_MEMORY: return "FLASH_ERROR_OUT_OF_MEMORY";
    case FLASH_ERROR_ABI: return "FLASH_ERROR_ABI";
    case FLASH_ERROR_NOT_READY: return "FLASH_ERROR_NOT_READY";
    case FLASH_ERROR_INTERNAL: return "FLASH_ERROR_INTERNAL";
    default: return "FLASH_ERROR_UNKNOWN";
    }
}

FLASH_API const char* flash_last_error(void) { return flash::t_message; }

FLASH_API int32_t flash_last_cuda_error(void) { return flash::t_cuda_error; }

FLASH_API const char* flash_last_kernel(void) { return flash::t_kernel; }

} // extern "C"
