// The CPU backend: the reference semantics of every entry point (see include/flash.h and
// libflash/api/problem.h). Inputs are validated and normalized by the API layer before these run.
// Each function returns a flash_status and, on failure, has called flash::set_error.
#pragma once

#include <cstdint>

#include "../api/problem.h"

namespace flash::cpu {

uint64_t fwd_workspace_size(const FwdProblem& p);
int32_t fwd(const FwdProblem& p, void* workspace, uint64_t workspace_bytes);

uint64_t fwd_kvcache_workspace_size(const FwdProblem& p);
int32_t fwd_kvcache(const FwdProblem& p, void* workspace, uint64_t workspace_bytes);

uint64_t bwd_workspace_size(const BwdProblem& p);
int32_t bwd(const BwdProblem& p, void* workspace, uint64_t workspace_bytes);

// Name of the SIMD path chosen at run time ("avx512", "avx2", "neon", "scalar"), for flash_build_info.
const char* simd_name();

} // namespace flash::cpu
