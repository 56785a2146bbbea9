// The Hopper forward path (sm_90a): entry from the forward dispatcher and the per-instantiation launcher.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "api/problem.h"
#include "../fastdiv.h"
#include "../fwd_params.h"

namespace flash::cuda::sm90 {

// Kernel parameters: the forward's parameter block plus the three tensor maps (64-byte aligned by type).
struct Sm90Params {
    FwdParams f;
    CUtensorMap tm_q, tm_k, tm_v;
    CUtensorMap tm_o; // boxes of 64 rows x 64 columns; valid when tma_o != 0 (configs with the tma_o field)
    int tma_o;
    // GQA packing (FA3's PackGQA): pack = 1 when a tile's rows are (query row, query head) pairs of one K/V
    // head's group, packed row = query row * group + head within the group, so each K/V block read serves the
    // whole group. Worth it when the query length leaves most of a block_m tile empty (decode-like shapes).
    int pack;          // selects the kPack instantiation (hopper/fwd_sm90_launch.cuh)
    int q_rows;        // query rows per tile: block_m, or block_m / group when packed
    int tile_heads;    // heads a batch's tiles walk: h, or hk when packed
    uint32_t q_bytes;  // bytes of one Q tile's TMA boxes (q_rows * (pack ? group : 1) rows)
    FastDiv div_group; // by the GQA group: a packed row's query row
    int m_blocks; // query tiles per (head, batch); tiles are numbered m block fastest, then head, then batch
    FastDiv div_mblocks, div_head_mblocks; // by m_blocks and by m_blocks * tile_heads: a tile number's decode
    int* tile_counter; // dynamic schedule: tiles past the first gridDim.x are claimed with atomicAdd (zeroed
                       // before the launch); null: CTA c takes tiles c, c + gridDim.x, ...
#ifdef FLASH_SM90_TRACE
    long long* trace;
#endif
};

// Workspace the Hopper path needs for p (num_splits resolved): 0 when it does not take p or needs none.
// The forward's workspace planning adds it, so flash_fwd_workspace_size covers both paths.
uint64_t workspace_bytes(const FwdProblem& p, int num_splits);

// Runs p on the Hopper kernel when it applies (sm_90 device, sm_90a compiled, no dropout / ALiBi / split,
// TMA-compatible strides, ...): *taken = true and the launch status. Otherwise *taken = false, nothing is
// launched, and the caller runs the sm80 kernel. `k` is the forward's complete parameter block; `workspace`
// holds at least workspace_bytes(p, num_splits).
int32_t try_fwd(const FwdProblem& p, const FwdParams& k, int num_splits, void* workspace, cudaStream_t stream,
                bool* taken);

// Defined in hopper/generated/fwd_sm90_*.cu. grid.x CTAs stride over the m_blocks * h * b tiles; `alt` is the
// tile-table row of (kD, kMasked) the problem runs on (sm90_pick).
template <bool kBf16, int kD, bool kMasked>
int32_t run_fwd_sm90(const Sm90Params& p, dim3 grid, bool softcap, int alt, cudaStream_t stream);

} // namespace flash::cuda::sm90
