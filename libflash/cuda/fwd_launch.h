// Declarations shared by the dispatcher (fwd.cu) and the generated instantiation files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fwd_params.h"

namespace flash::cuda {

// Launch geometry decided by the dispatcher: grid.x = m_blocks * num_splits, grid.y = h, grid.z = b.
// `full` selects the softcap / ALiBi / dropout instantiation. Defined in generated/fwd_*.cu.
template <bool kBf16, int kD, bool kMasked>
int32_t run_fwd(const FwdParams& p, dim3 grid, bool full, cudaStream_t stream);

// Split-KV combine (fwd_combine.cu): merges o_accum / lse_accum into o and lse. acc_d = the row width of
// o_accum (the instantiated head dim).
int32_t run_fwd_combine(const FwdParams& p, int acc_d, bool bf16, cudaStream_t stream);

} // namespace flash::cuda
