// Declarations shared by kvcache.cu (host side) and the per-head-dim instantiation files kv_hdim*.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kv_params.h"

namespace flash::cuda::kv {

// Launches the decode attention kernel (which also appends knew/vnew) for instantiated head dim kD.
// grid = (num_splits * hk * m_blocks, b).
template <int kD, bool kBf16>
int32_t launch_attn(const KVParams& p, dim3 grid, cudaStream_t stream);

// Resident CTAs per SM of that kernel on the current device (for the split heuristic), and its key block.
template <int kD, bool kBf16>
int32_t attn_occupancy(int* ctas_per_sm);

int block_n(int dim); // keys per pipeline block of the instantiation for `dim`

} // namespace flash::cuda::kv
