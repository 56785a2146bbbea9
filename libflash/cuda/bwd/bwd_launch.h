// Declarations shared by the backward dispatcher (bwd.cu) and the generated instantiation files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "bwd_params.h"

namespace flash::cuda {

// Runs the main backward kernel (grid: key blocks x h_k x b) and, when `deterministic`, the dQ kernel
// (grid: query blocks x h x b). `full` selects the softcap / ALiBi / dropout instantiation; kSmall the tile of
// kBwdTilesSmall (bwd_config.h; instantiated only for the head dims with bwd_has_small); kDV the V / dO / dV
// width (kD, or bwd_dim_v's narrow V). Defined in bwd/generated/bwd_*.cu.
template <bool kBf16, int kD, bool kMasked, bool kSmall, int kDV = kD>
int32_t run_bwd(const BwdParams& p, bool full, bool deterministic, cudaStream_t stream);

} // namespace flash::cuda
