// Device utilities of the public API and the API layer's device helpers. With the CUDA runtime linked
// statically, a machine without a driver reports 0 devices; a CPU-only build reports 0 devices too and
// answers everything else with FLASH_ERROR_UNSUPPORTED.
#include "device.h"

#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "error.h"
#ifdef FLASH_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace flash {

bool env_check_pointers() {
    static const bool on = [] { const char* v = std::getenv("FLASH_CHECK_POINTERS"); return v && std::strcmp(v, "1") == 0; }();
    return on;
}

bool env_check_indices() {
    static const bool on = [] { const char* v = std::getenv("FLASH_CHECK_INDICES"); return v && std::strcmp(v, "1") == 0; }();
    return on;
}

#ifdef FLASH_WITH_CUDA

namespace {
int32_t cuda_fail(cudaError_t e, const char* what) {
    cudaGetLastError(); // clear a non-sticky error so the next call starts clean
    return set_cuda_error(int32_t(e), cudaGetErrorString(e), what);
}
} // namespace

#define CUDA_TRY(call, what)                                                                               \
    do {                                                                                                   \
        cudaError_t _e = (call);                                                                           \
        if (_e != cudaSuccess) return cuda_fail(_e, what);                                                 \
    } while (0)

int32_t cuda_device_count() {
    static const int32_t n = [] {
        int c = 0;
        if (cudaGetDeviceCount(&c) != cudaSuccess) {
            cudaGetLastError();
            return 0;
        }
        return c;
    }();
    return n;
}

int32_t DeviceGuard::enter(int32_t device) {
    int cur = 0;
    CUDA_TRY(cudaGetDevice(&cur), "cudaGetDevice");
    if (cur != device) {
        CUDA_TRY(cudaSetDevice(device), "cudaSetDevice");
        previous_ = cur;
    }
    return FLASH_OK;
}

DeviceGuard::~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
}

int32_t copy_device_to_host(void* dst, const void* src, size_t bytes, const char* what) {
    CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), what);
    return FLASH_OK;
}

int32_t check_pointer_location(const char* field, const void* ptr, int32_t device_type, int32_t device_id) {
    cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, ptr);
    if (e != cudaSuccess) {
        cudaGetLastError();
        a.type = cudaMemoryTypeUnregistered;
    }
    const bool on_device = a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
    if (device_type == FLASH_DEVICE_CUDA && !(on_device && (a.type == cudaMemoryTypeManaged || a.device == device_id)))
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s=%p is not memory of CUDA device %d (memory type %d, device %d)",
                         field, ptr, device_id, int(a.type), a.device);
    if (device_type == FLASH_DEVICE_CPU && a.type == cudaMemoryTypeDevice)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s=%p is CUDA device memory (device %d) but device_type is "
                         "FLASH_DEVICE_CPU", field, ptr, a.device);
    return FLASH_OK;
}

namespace {
int32_t need_device(const char* what) {
    if (cuda_device_count() == 0)
        return set_error(FLASH_ERROR_UNSUPPORTED, "%s: no CUDA device is available on this machine", what);
    return FLASH_OK;
}
cudaMemcpyKind memcpy_kind(int32_t k) {
    switch (k) {
    case FLASH_MEMCPY_HOST_TO_HOST: return cudaMemcpyHostToHost;
    case FLASH_MEMCPY_HOST_TO_DEVICE: return cudaMemcpyHostToDevice;
    case FLASH_MEMCPY_DEVICE_TO_HOST: return cudaMemcpyDeviceToHost;
    case FLASH_MEMCPY_DEVICE_TO_DEVICE: return cudaMemcpyDeviceToDevice;
    default: return cudaMemcpyDefault;
    }
}
} // namespace

} // namespace flash

using namespace flash;

#define NEED_DEVICE(what) do { if (int32_t _s = need_device(what)) return _s; } while (0)
#define NEED_PTR(p, what) do { if (!(p)) return set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", what, #p); } while (0)
#define CHECK_KIND(k, what) do { if ((k) < FLASH_MEMCPY_HOST_TO_HOST || (k) > FLASH_MEMCPY_DEFAULT) \
    return set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s: kind=%d is not a flash_memcpy_kind", what, (k)); } while (0)

extern "C" {

FLASH_API int32_t flash_device_count(int32_t* count) {
    NEED_PTR(count, "flash_device_count");
    *count = cuda_device_count();
    clear_error();
    return FLASH_OK;
}

FLASH_API int32_t flash_device_get_properties(int32_t device, flash_device_properties* props) {
    NEED_PTR(props, "flash_device_get_properties");
    if (props->struct_size != sizeof *props)
        return set_error(FLASH_ERROR_ABI, "flash_device_get_properties: struct_size=%llu, expected %llu",
                         (unsigned long long)props->struct_size, (unsigned long long)sizeof *props);
    NEED_DEVICE("flash_device_get_properties");
    if (device < 0 || device >= cuda_device_count())
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "flash_device_get_properties: device=%d is not in 0..%d", device,
                         cuda_device_count() - 1);
    cudaDeviceProp p;
    CUDA_TRY(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    int smem = 0, clock = 0;
    CUDA_TRY(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "cudaDeviceGetAttribute");
    if (cudaDeviceGetAttribute(&clock, cudaDevAttrMemoryClockRate, device) != cudaSuccess) {
        cudaGetLastError();
        clock = 0;
    }
    std::memset(props->name, 0, sizeof props->name);
    std::snprintf(props->name, sizeof props->name, "%s", p.name);
    props->major = p.major;
    props->minor = p.minor;
    props->multiprocessor_count = p.multiProcessorCount;
    props->max_shared_memory_per_block_optin = smem;
    props->total_global_mem = p.totalGlobalMem;
    props->l2_cache_size = p.l2CacheSize;
    props->memory_bus_width = p.memoryBusWidth;
    props->memory_clock_khz = clock;
    props->reserved = 0;
    clear_error();
    return FLASH_OK;
}

FLASH_API int32_t flash_set_device(int32_t device) {
    NEED_DEVICE("flash_set_device");
    CUDA_TRY(cudaSetDevice(device), "cudaSetDevice");
    return FLASH_OK;
}

FLASH_API int32_t flash_get_device(int32_t* device) {
    NEED_PTR(device, "flash_get_device");
    NEED_DEVICE("flash_get_device");
    int d = 0;
    CUDA_TRY(cudaGetDevice(&d), "cudaGetDevice");
    *device = d;
    return FLASH_OK;
}

FLASH_API int32_t flash_device_synchronize(void) {
    NEED_DEVICE("flash_device_synchronize");
    CUDA_TRY(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    return FLASH_OK;
}

FLASH_API int32_t flash_malloc(void** ptr, uint64_t bytes) {
    NEED_PTR(ptr, "flash_malloc");
    NEED_DEVICE("flash_malloc");
    *ptr = nullptr;
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return set_error(FLASH_ERROR_OUT_OF_MEMORY, "flash_malloc: cannot allocate %llu bytes on the device",
                         (unsigned long long)bytes);
    }
    if (e != cudaSuccess) return cuda_fail(e, "cudaMalloc");
    return FLASH_OK;
}

FLASH_API int32_t flash_free(void* ptr) {
    if (!ptr) return FLASH_OK;
    NEED_DEVICE("flash_free");
    CUDA_TRY(cudaFree(ptr), "cudaFree");
    return FLASH_OK;
}

FLASH_API int32_t flash_memcpy(void* dst, const void* src, uint64_t bytes, int32_t kind) {
    CHECK_KIND(kind, "flash_memcpy");
    if (bytes == 0) return FLASH_OK;
    NEED_PTR(dst, "flash_memcpy");
    NEED_PTR(src, "flash_memcpy");
    NEED_DEVICE("flash_memcpy");
    CUDA_TRY(cudaMemcpy(dst, src, bytes, memcpy_kind(kind)), "cudaMemcpy");
    return FLASH_OK;
}

FLASH_API int32_t flash_memcpy_async(void* dst, const void* src, uint64_t bytes, int32_t kind, void* stream) {
    CHECK_KIND(kind, "flash_memcpy_async");
    if (bytes == 0) return FLASH_OK;
    NEED_PTR(dst, "flash_memcpy_async");
    NEED_PTR(src, "flash_memcpy_async");
    NEED_DEVICE("flash_memcpy_async");
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, memcpy_kind(kind), cudaStream_t(stream)), "cudaMemcpyAsync");
    return FLASH_OK;
}

FLASH_API int32_t flash_memset(void* ptr, int32_t value, uint64_t bytes) {
    if (bytes == 0) return FLASH_OK;
    NEED_PTR(ptr, "flash_memset");
    NEED_DEVICE("flash_memset");
    CUDA_TRY(cudaMemset(ptr, value, bytes), "cudaMemset");
    return FLASH_OK;
}

FLASH_API int32_t flash_memset_async(void* ptr, int32_t value, uint64_t bytes, void* stream) {
    if (bytes == 0) return FLASH_OK;
    NEED_PTR(ptr, "flash_memset_async");
    NEED_DEVICE("flash_memset_async");
    CUDA_TRY(cudaMemsetAsync(ptr, value, bytes, cudaStream_t(stream)), "cudaMemsetAsync");
    return FLASH_OK;
}

FLASH_API int32_t flash_stream_create(void** stream) {
    NEED_PTR(stream, "flash_stream_create");
    NEED_DEVICE("flash_stream_create");
    cudaStream_t s = nullptr;
    CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    *stream = s;
    return FLASH_OK;
}

FLASH_API int32_t flash_stream_destroy(void* stream) {
    if (!stream) return FLASH_OK;
    NEED_DEVICE("flash_stream_destroy");
    CUDA_TRY(cudaStreamDestroy(cudaStream_t(stream)), "cudaStreamDestroy");
    return FLASH_OK;
}

FLASH_API int32_t flash_stream_synchronize(void* stream) {
    NEED_DEVICE("flash_stream_synchronize");
    CUDA_TRY(cudaStreamSynchronize(cudaStream_t(stream)), "cudaStreamSynchronize");
    return FLASH_OK;
}

FLASH_API int32_t flash_event_create(void** event) {
    NEED_PTR(event, "flash_event_create");
    NEED_DEVICE("flash_event_create");
    cudaEvent_t e = nullptr;
    CUDA_TRY(cudaEventCreate(&e), "cudaEventCreate");
    *event = e;
    return FLASH_OK;
}

FLASH_API int32_t flash_event_destroy(void* event) {
    if (!event) return FLASH_OK;
    NEED_DEVICE("flash_event_destroy");
    CUDA_TRY(cudaEventDestroy(cudaEvent_t(event)), "cudaEventDestroy");
    return FLASH_OK;
}

FLASH_API int32_t flash_event_record(void* event, void* stream) {
    NEED_PTR(event, "flash_event_record");
    NEED_DEVICE("flash_event_record");
    CUDA_TRY(cudaEventRecord(cudaEvent_t(event), cudaStream_t(stream)), "cudaEventRecord");
    return FLASH_OK;
}

FLASH_API int32_t flash_event_query(void* event) {
    NEED_PTR(event, "flash_event_query");
    NEED_DEVICE("flash_event_query");
    cudaError_t e = cudaEventQuery(cudaEvent_t(event));
    if (e == cudaErrorNotReady) {
        cudaGetLastError();
        return FLASH_ERROR_NOT_READY;
    }
    if (e != cudaSuccess) return cuda_fail(e, "cudaEventQuery");
    return FLASH_OK;
}

FLASH_API int32_t flash_event_synchronize(void* event) {
    NEED_PTR(event, "flash_event_synchronize");
    NEED_DEVICE("flash_event_synchronize");
    CUDA_TRY(cudaEventSynchronize(cudaEvent_t(event)), "cudaEventSynchronize");
    return FLASH_OK;
}

FLASH_API int32_t flash_event_elapsed_ms(float* ms, void* start, void* end) {
    NEED_PTR(ms, "flash_event_elapsed_ms");
    NEED_PTR(start, "flash_event_elapsed_ms");
    NEED_PTR(end, "flash_event_elapsed_ms");
    NEED_DEVICE("flash_event_elapsed_ms");
    CUDA_TRY(cudaEventElapsedTime(ms, cudaEvent_t(start), cudaEvent_t(end)), "cudaEventElapsedTime");
    return FLASH_OK;
}

} // extern "C"

#else // !FLASH_WITH_CUDA

int32_t cuda_device_count() { return 0; }
int32_t DeviceGuard::enter(int32_t) {
    return set_error(FLASH_ERROR_UNSUPPORTED, "this libflash was built without CUDA");
}
DeviceGuard::~DeviceGuard() {}
int32_t copy_device_to_host(void*, const void*, size_t, const char* what) {
    return set_error(FLASH_ERROR_UNSUPPORTED, "%s: this libflash was built without CUDA", what);
}
int32_t check_pointer_location(const char*, const void*, int32_t, int32_t) { return FLASH_OK; }
} // namespace flash

using namespace flash;

#define NO_CUDA(name, ...)                                                                                 \
    FLASH_API int32_t name(__VA_ARGS__) {                                                                  \
        return set_error(FLASH_ERROR_UNSUPPORTED, #name ": this libflash was built without CUDA");         \
    }

extern "C" {
FLASH_API int32_t flash_device_count(int32_t* count) {
    if (!count) return set_error(FLASH_ERROR_INVALID_ARGUMENT, "flash_device_count: count is NULL");
    *count = 0;
    clear_error();
    return FLASH_OK;
}
NO_CUDA(flash_device_get_properties, int32_t, flash_device_properties*)
NO_CUDA(flash_set_device, int32_t)
NO_CUDA(flash_get_device, int32_t*)
NO_CUDA(flash_device_synchronize, void)
NO_CUDA(flash_malloc, void**, uint64_t)
NO_CUDA(flash_free, void*)
NO_CUDA(flash_memcpy, void*, const void*, uint64_t, int32_t)
NO_CUDA(flash_memcpy_async, void*, const void*, uint64_t, int32_t, void*)
NO_CUDA(flash_memset, void*, int32_t, uint64_t)
NO_CUDA(flash_memset_async, void*, int32_t, uint64_t, void*)
NO_CUDA(flash_stream_create, void**)
NO_CUDA(flash_stream_destroy, void*)
NO_CUDA(flash_stream_synchronize, void*)
NO_CUDA(flash_event_create, void**)
NO_CUDA(flash_event_destroy, void*)
NO_CUDA(flash_event_record, void*, void*)
NO_CUDA(flash_event_query, void*)
NO_CUDA(flash_event_synchronize, void*)
NO_CUDA(flash_event_elapsed_ms, float*, void*, void*)
}

#endif
