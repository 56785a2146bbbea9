// The three attention entry points: validate into a problem, check the workspace, pick the backend, run.
// Nothing escapes as an exception: a C++ exception from any layer becomes FLASH_ERROR_INTERNAL.
#include <cstdint>
#include <exception>
#include <new>

#include "device.h"
#include "error.h"
#include "validate.h"
#include "../cpu/cpu_backend.h"
#ifdef FLASH_WITH_CUDA_KERNELS
#include "../cuda/cuda_backend.h"
#endif

namespace flash {
namespace {

template <class F>
int32_t guarded(const char* name, F&& body) {
    try {
        clear_error();
        return body();
    } catch (const std::bad_alloc&) {
        return set_error(FLASH_ERROR_OUT_OF_MEMORY, "%s: out of host memory", name);
    } catch (const std::exception& e) {
        return set_error(FLASH_ERROR_INTERNAL, "%s: internal error: %s", name, e.what());
    } catch (...) {
        return set_error(FLASH_ERROR_INTERNAL, "%s: internal error (unknown exception)", name);
    }
}

int32_t check_workspace(const char* name, uint64_t need, const void* ws, uint64_t bytes) {
    if (bytes < need)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s: workspace_bytes=%llu is smaller than the %llu bytes "
                         "%s_workspace_size reports", name, (unsigned long long)bytes, (unsigned long long)need, name);
    if (need > 0 && !ws)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s: workspace is NULL but %llu bytes are needed", name,
                         (unsigned long long)need);
    return FLASH_OK;
}

// One table row per entry point: how to size its workspace and run it on each backend.
template <class Problem>
struct Backend {
    uint64_t (*cpu_size)(const Problem&);
    int32_t (*cpu_run)(const Problem&, void*, uint64_t);
#ifdef FLASH_WITH_CUDA_KERNELS
    uint64_t (*cuda_size)(const Problem&);
    int32_t (*cuda_run)(const Problem&, void*, uint64_t, void*);
    const char* cuda_kernel; // flash_last_kernel() unless the backend names a more specific path
#endif
};

#ifdef FLASH_WITH_CUDA_KERNELS
#define FLASH_BACKEND(fn) {cpu::fn##_workspace_size, cpu::fn, cuda::fn##_workspace_size, cuda::fn, "cuda." #fn}
#else
#define FLASH_BACKEND(fn) {cpu::fn##_workspace_size, cpu::fn}
#endif

const Backend<FwdProblem> k_fwd = FLASH_BACKEND(fwd);
const Backend<FwdProblem> k_kvcache = FLASH_BACKEND(fwd_kvcache);
const Backend<BwdProblem> k_bwd = FLASH_BACKEND(bwd);

#ifdef FLASH_WITH_CUDA_KERNELS
int32_t device_of(const FwdProblem& p) { return p.device_type; }
int32_t device_of(const BwdProblem& p) { return p.f.device_type; }
int32_t device_id_of(const FwdProblem& p) { return p.device_id; }
int32_t device_id_of(const BwdProblem& p) { return p.f.device_id; }
#endif

template <class Problem>
int32_t workspace_size(const Backend<Problem>& be, const Problem& p, uint64_t* bytes) {
#ifdef FLASH_WITH_CUDA_KERNELS
    if (device_of(p) == FLASH_DEVICE_CUDA) {
        DeviceGuard g;
        if (int32_t st = g.enter(device_id_of(p))) return st;
        *bytes = be.cuda_size(p);
        return FLASH_OK;
    }
#endif
    *bytes = be.cpu_size(p);
    return FLASH_OK;
}

template <class Problem>
int32_t run(const char* name, const Backend<Problem>& be, const Problem& p, void* ws, uint64_t bytes, void* stream) {
    uint64_t need = 0;
    if (int32_t st = workspace_size(be, p, &need)) return st;
    if (int32_t st = check_workspace(name, need, ws, bytes)) return st;
#ifdef FLASH_WITH_CUDA_KERNELS
    if (device_of(p) == FLASH_DEVICE_CUDA) {
        // The kernels read and write fp32 partials in the workspace as float2 / float4: a misaligned pointer
        // would fault on the device (a sticky error that ends the context), so it is refused here.
        if (need > 0 && (reinterpret_cast<uintptr_t>(ws) & 15u) != 0)
            return set_error(FLASH_ERROR_INVALID_ARGUMENT,
                             "%s: workspace=%p is not 16-byte aligned (cudaMalloc's pointers are)", name, ws);
        DeviceGuard g;
        if (int32_t st = g.enter(device_id_of(p))) return st;
        const int32_t st = be.cuda_run(p, ws, bytes, stream);
        if (st == FLASH_OK && !*last_kernel()) set_kernel(be.cuda_kernel);
        return st;
    }
#endif
    const int32_t st = be.cpu_run(p, ws, bytes);
    if (st == FLASH_OK) set_kernel("cpu");
    return st;
}

int32_t null_out(const char* name, const void* out) {
    return out ? FLASH_OK : set_error(FLASH_ERROR_INVALID_ARGUMENT, "%s: bytes (the output pointer) is NULL", name);
}

} // namespace
} // namespace flash

using namespace flash;

extern "C" {

FLASH_API int32_t flash_fwd_workspace_size(const flash_fwd_params* params, uint64_t* bytes) {
    return guarded("flash_fwd_workspace_size", [&] {
        if (int32_t st = null_out("flash_fwd_workspace_size", bytes)) return st;
        FwdProblem p;
        if (int32_t st = load_fwd(params, Entry::Fwd, &p)) return st;
        return workspace_size(k_fwd, p, bytes);
    });
}

FLASH_API int32_t flash_fwd(const flash_fwd_params* params, void* workspace, uint64_t workspace_bytes, void* stream) {
    return guarded("flash_fwd", [&] {
        FwdProblem p;
        if (int32_t st = load_fwd(params, Entry::Fwd, &p)) return st;
        return run("flash_fwd", k_fwd, p, workspace, workspace_bytes, stream);
    });
}

FLASH_API int32_t flash_fwd_kvcache_workspace_size(const flash_fwd_params* params, uint64_t* bytes) {
    return guarded("flash_fwd_kvcache_workspace_size", [&] {
        if (int32_t st = null_out("flash_fwd_kvcache_workspace_size", bytes)) return st;
        FwdProblem p;
        if (int32_t st = load_fwd(params, Entry::KVCache, &p)) return st;
        return workspace_size(k_kvcache, p, bytes);
    });
}

FLASH_API int32_t flash_fwd_kvcache(const flash_fwd_params* params, void* workspace, uint64_t workspace_bytes,
                                    void* stream) {
    return guarded("flash_fwd_kvcache", [&] {
        FwdProblem p;
        if (int32_t st = load_fwd(params, Entry::KVCache, &p)) return st;
        return run("flash_fwd_kvcache", k_kvcache, p, workspace, workspace_bytes, stream);
    });
}

FLASH_API int32_t flash_bwd_workspace_size(const flash_bwd_params* params, uint64_t* bytes) {
    return guarded("flash_bwd_workspace_size", [&] {
        if (int32_t st = null_out("flash_bwd_workspace_size", bytes)) return st;
        BwdProblem p;
        if (int32_t st = load_bwd(params, &p)) return st;
        return workspace_size(k_bwd, p, bytes);
    });
}

FLASH_API int32_t flash_bwd(const flash_bwd_params* params, void* workspace, uint64_t workspace_bytes, void* stream) {
    return guarded("flash_bwd", [&] {
        BwdProblem p;
        if (int32_t st = load_bwd(params, &p)) return st;
        return run("flash_bwd", k_bwd, p, workspace, workspace_bytes, stream);
    });
}

} // extern "C"
