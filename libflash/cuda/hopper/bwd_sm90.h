// The Hopper backward path (sm_90a): entry from the backward dispatcher (bwd/bwd.cu) and the per-instantiation
// launcher. Kernel: bwd_sm90_kernel.cuh; tiles: bwd_sm90_config.h.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "api/problem.h"
#include "../bwd/bwd_params.h"

namespace flash::cuda::sm90 {

// Kernel parameters: the backward's parameter block plus the four tensor maps (64-byte aligned by type).
struct Bwd90Params {
    BwdParams b;
    CUtensorMap tm_q, tm_k, tm_v, tm_do;
    int n_blocks;    // key blocks per (KV head, batch): ceil(max seqlen_k / block_n)
    int group_heads; // tile numbering: groups of this many (KV head, batch) pairs, key block slowest inside
    int num_tiles;   // n_blocks * h_k * b; CTA c works on tiles c, c + gridDim.x, ...
};

// Runs the main backward kernel on the Hopper path when it applies (sm_90 device, sm_90a compiled, FLASH_SM90
// not 0, fp16/bf16 at instantiated head dim 64 or 128, dense or cu_seqlens varlen layout (no seqused / leftpad), no dropout / ALiBi / softcap, not
// deterministic, TMA-compatible 16-byte aligned strides, sequence lengths < 2^28; bwd.cu also keeps it off under a
// FLASH_SMEM_LIMIT_BYTES cap): *taken = true and the launch status. Otherwise
// *taken = false, nothing is launched, and the caller runs the sm80 kernel. `k` is the backward's complete
// parameter block (dsum already written by the preprocessing kernel, dq_accum zeroed); `dim` the head dim
// the dispatcher planned the workspace for (k.acc_d). The dispatcher's dQ conversion runs after either path.
int32_t try_bwd(const BwdProblem& bp, const BwdParams& k, int dim, cudaStream_t stream, bool* taken);

// Defined in hopper/generated/bwd_sm90_*.cu. grid: (CTAs) x 1 x 1, each striding over the tiles. atomic_dq: dQ added with float2 atomics from registers (default) instead of the copy engine's bulk
// reduce (FLASH_BWD90_DQ=bulk, a measurement knob).
template <bool kBf16, int kD, bool kMasked>
int32_t run_bwd_sm90(const Bwd90Params& p, dim3 grid, bool atomic_dq, cudaStream_t stream);

} // namespace flash::cuda::sm90
