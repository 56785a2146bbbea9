// Declarations shared by the dispatcher (fwd.cu) and the generated instantiation files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fwd_params.h"

namespace flash::cuda {

// Launch geometry decided by the dispatcher: grid.x = m_blocks * num_splits, grid.y = h, grid.z = b.
// `full` selects the softcap / ALiBi / dropout instantiation; kDV the V / O width (kD, or fwd_dim_v's narrow V).
// Defined in generated/fwd_*.cu.
template <bool kBf16, int kD, bool kMasked, int kDV = kD>
int32_t run_fwd(const FwdParams& p, dim3 grid, bool full, cudaStream_t stream);

// Split-KV combine (fwd_combine.cu): merges o_accum / lse_accum into o and lse. acc_d = the row width of
// o_accum (the instantiated head dim).
int32_t run_fwd_combine(const FwdParams& p, int acc_d, bool bf16, cudaStream_t stream);

// The Hopper tail split's pieces (hopper/fwd_sm90.h, Sm90Params::tail_*): tiles base .. base + tiles - 1 of the
// unmasked dense numbering (m block fastest, then head slot, then batch), their key blocks cut into `ctas`
// equal ranges of blocks / ctas; CTA c's pieces are partial rows c and ctas + c (block_m rows each).
struct TailCombine {
    int base, tiles, nblk, ctas;
    int64_t blocks;                     // tiles * nblk
    int m_blocks, heads, q_rows, block_m; // heads: tile head slots (h, or hk when packed); q_rows: query rows per tile
    int acc_d;                          // floats per partial row
    const float* o_acc;
    const float* lse_acc;
};

// Merges every tail tile's pieces into o and lse; a programmatic dependent of the pieces' launch when `pdl`.
int32_t run_fwd_tail_combine(const FwdParams& p, const TailCombine& tc, bool bf16, bool pdl, cudaStream_t stream);

} // namespace flash::cuda
