// Self-description of the ABI: versions, params defaults, the field table and the build description.
#include <cstddef>
#include <cstring>
#include <string>

#include "error.h"
#include "../cpu/cpu_backend.h"
#ifdef FLASH_WITH_CUDA_KERNELS
#include <cuda_runtime_api.h>

#include "../cuda/cuda_backend.h"
#endif

#define FLASH_FIELD_ROW(S, F, K) {#F, uint32_t(offsetof(S, F)), uint32_t(sizeof(((S*)nullptr)->F)), K, 0}
#include "layout.gen.inc"

namespace {
const flash_field_info k_fwd_fields[] = {FLASH_FWD_FIELDS};
const flash_field_info k_bwd_fields[] = {FLASH_BWD_FIELDS};

// The documented defaults; the two structs share these field names.
template <class P>
int32_t init_defaults(P* p, const char* name) {
    if (!p) return flash::set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s: params is NULL", name);
    std::memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->device_type = FLASH_DEVICE_CUDA;
    p->dtype = FLASH_DTYPE_BF16;
    p->window_size_left = -1;
    p->window_size_right = -1;
    flash::clear_error();
    return FLASH_OK;
}
} // namespace

extern "C" {

FLASH_API int32_t flash_version(void) { return FLASH_VERSION; }
FLASH_API int32_t flash_abi_version(void) { return FLASH_ABI_VERSION; }

FLASH_API int32_t flash_fwd_params_init(flash_fwd_params* p) { return init_defaults(p, "flash_fwd_params_init"); }

FLASH_API int32_t flash_bwd_params_init(flash_bwd_params* p) { return init_defaults(p, "flash_bwd_params_init"); }

FLASH_API const flash_field_info* flash_params_layout(int32_t which, uint32_t* count) {
    const flash_field_info* t = nullptr;
    uint32_t n = 0;
    if (which == FLASH_PARAMS_FWD) {
        t = k_fwd_fields;
        n = sizeof k_fwd_fields / sizeof k_fwd_fields[0];
    } else if (which == FLASH_PARAMS_BWD) {
        t = k_bwd_fields;
        n = sizeof k_bwd_fields / sizeof k_bwd_fields[0];
    }
    if (count) *count = n;
    return t;
}

FLASH_API uint64_t flash_params_sizeof(int32_t which) {
    if (which == FLASH_PARAMS_FWD) return sizeof(flash_fwd_params);
    if (which == FLASH_PARAMS_BWD) return sizeof(flash_bwd_params);
    return 0;
}

FLASH_API const char* flash_build_info(void) {
    // Built once: the CPU SIMD choice is made at run time, so this cannot be a compile-time literal.
    static const std::string info = [] {
        std::string s = "{\"version\":\"" + std::to_string(FLASH_VERSION_MAJOR) + "." +
                        std::to_string(FLASH_VERSION_MINOR) + "." + std::to_string(FLASH_VERSION_PATCH) +
                        "\",\"abi\":" + std::to_string(FLASH_ABI_VERSION);
#ifdef FLASH_WITH_CUDA_KERNELS
        s += ",\"backends\":[\"cpu\",\"cuda\"],\"cuda_archs\":";
        s += flash::cuda::compiled_archs_json();
        s += ",\"cuda_head_dims\":";
        s += flash::cuda::compiled_head_dims_json();
        s += ",\"cuda_runtime\":" + std::to_string(CUDART_VERSION);
#ifdef FLASH_HAS_SM90A
        s += ",\"cuda_fwd_paths\":[\"sm80\",\"sm90\"]"; // sm90: wgmma + TMA, taken on sm_90 GPUs
#else
        s += ",\"cuda_fwd_paths\":[\"sm80\"]";
#endif
        s += ",\"features\":{\"cuda\":{\"fwd\":[\"causal\",\"local\",\"alibi\",\"softcap\",\"dropout\",\"gqa\","
             "\"varlen\",\"lse\",\"split_kv\"],"
             "\"kvcache\":[\"append\",\"rotary\",\"paged\",\"leftpad\",\"cache_batch_idx\",\"split_kv\",\"gqa\","
             "\"causal\",\"local\",\"alibi\",\"softcap\",\"lse\"],"
             "\"bwd\":[\"causal\",\"local\",\"alibi\",\"softcap\",\"dropout\",\"gqa\",\"varlen\",\"deterministic\"]},";
#else
        s += ",\"backends\":[\"cpu\"],\"cuda_archs\":[],\"cuda_head_dims\":[],\"cuda_runtime\":0";
        s += ",\"features\":{";
#endif
        // What each CPU entry point implements today; tests skip exactly what is missing here.
        s += "\"cpu\":{\"fwd\":[\"causal\",\"local\",\"alibi\",\"softcap\",\"dropout\",\"gqa\",\"varlen\",\"lse\"],"
             "\"kvcache\":[\"append\",\"rotary\",\"paged\",\"leftpad\",\"cache_batch_idx\",\"split_kv\",\"gqa\","
             "\"causal\",\"local\",\"alibi\",\"softcap\",\"lse\"],"
             "\"bwd\":[\"causal\",\"local\",\"alibi\",\"softcap\",\"dropout\",\"gqa\",\"varlen\",\"deterministic\"]}}";
        s += ",\"dtypes\":{\"cpu\":[\"float16\",\"bfloat16\",\"float32\"],\"cuda\":[\"float16\",\"bfloat16\"]}";
        s += ",\"cpu_simd\":\"";
        s += flash::cpu::simd_name();
        s += "\",\"cpu_head_dims\":\"1..256\"}";
        return s;
    }();
    return info.c_str();
}

} // extern "C"
