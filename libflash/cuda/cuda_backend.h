// The CUDA backend entry points, called by the API layer after validation. Compiled only when
// FLASH_WITH_CUDA is defined. Each returns a flash_status and, on failure, has called flash::set_error.
// The device is already current (the API layer sets it) and `stream` is a cudaStream_t.
#pragma once

#include <cstdint>

#include "../api/problem.h"

namespace flash::cuda {

uint64_t fwd_workspace_size(const FwdProblem& p);
int32_t fwd(const FwdProblem& p, void* workspace, uint64_t workspace_bytes, void* stream);

uint64_t fwd_kvcache_workspace_size(const FwdProblem& p);
int32_t fwd_kvcache(const FwdProblem& p, void* workspace, uint64_t workspace_bytes, void* stream);

uint64_t bwd_workspace_size(const BwdProblem& p);
int32_t bwd(const BwdProblem& p, void* workspace, uint64_t workspace_bytes, void* stream);

// JSON array text of the compiled SM archs, e.g. "[80,90]", and of the compiled head dims.
const char* compiled_archs_json();
const char* compiled_head_dims_json();

} // namespace flash::cuda
