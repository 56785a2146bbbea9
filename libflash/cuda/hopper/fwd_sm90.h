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
    // GQA packing (FA3's PackGQA): a tile's rows are (query row, query head) pairs of one K/V head's group,
    // packed row = query row * group + head within the group, so each K/V block read serves the whole group.
    // Worth it when the query length leaves most of a block_m tile empty (decode-like shapes).
    // Split-KV: each (m block, head, batch) tile's key blocks are cut into f.num_splits contiguous ranges, one
    // work tile each, writing fp32 partials (f.o_accum, f.lse_accum) that fwd_combine.cu merges. It always runs
    // on the packed kernel (FA3's rule: with splits the grid is small, so packing never costs; group 1 packs
    // trivially).
    int variant;       // kVarPlain / kVarDense / kVarPack / kVarSplit: the instantiation (hopper/fwd_sm90_launch.cuh)
    int q_rows;        // query rows per tile: block_m, or block_m / group when packed
    int acc_d;         // split: row stride (floats) of o_accum
    FastDiv div_group; // by the GQA group: a packed row's query row
    FastDiv div_splits; // by num_splits: a split tile's decode
    int m_blocks; // query tiles per (head, batch); unmasked or split tiles are numbered m block fastest, then
                  // split, then head, then batch
    FastDiv div_mblocks, div_head_mblocks; // by m_blocks and by m_blocks * splits * tile heads: a tile number's decode
    // Masked (causal / local) tiles that do not split run in L2 sections (FA3's scheduler order): `sec` (b, head
    // slot) pairs at a time, whose K/V fit in L2 together; inside a section m block slowest (heaviest first), the
    // pair fastest, so every SM's last tiles are light ones (m block fastest left one heavy tile per head near the
    // end). The last section holds the remaining pairs.
    FastDiv div_sec, div_sec_last; // by the pairs of a section, and of the last section
    FastDiv div_sec_tiles;         // by m_blocks * pairs of a section: a tile number's section
    FastDiv div_heads;             // by the tile heads (h, or hk when packed): a pair's batch
    int n_sec;                     // sections
    int* tile_counter; // dynamic schedule: tiles past the first gridDim.x are claimed with atomicAdd (zeroed
                       // before the launch); null: CTA c takes tiles c, c + gridDim.x, ...
    int n_tiles;       // work tiles of this launch: tiles 0 .. n_tiles - 1 (the tail split's main launch stops
                       // before its last tail_tiles)
    // Tail split (kSplit launches with tail_ctas > 0; unmasked dense problems, TailPlan): the last tail_tiles
    // tiles of the main numbering, from tail_base on, as one run of tail_tiles * tail_nblk key blocks cut into
    // tail_ctas equal ranges (stream-K). CTA c's range meets at most two tiles: work tile c is its piece in the
    // first, c + tail_ctas its piece in the second (or nothing). Piece `w` writes its partial rows to
    // o_accum / lse_accum rows w * block_m + tile row; fwd_combine.cu's tail combine merges each tile's pieces.
    int tail_ctas, tail_base, tail_tiles, tail_nblk;
    int64_t tail_blocks; // tail_tiles * tail_nblk
#ifdef FLASH_SM90_TRACE
    long long* trace;
#endif
};

// kVarDense: kVarPlain for calls without cu_seqlens, seqused, leftpad_k or softcap, whose tile geometry then needs
// none of their loads and 64-bit row origins (the causal grid's short tiles pay for them once per tile).
enum : int { kVarPlain = 0, kVarPack = 1, kVarSplit = 2, kVarDense = 3 };

// How the Hopper path runs a problem (choose): which instantiation and tile row, and the split count.
struct Choice {
    int dim = 0;    // instantiated head dim; 0: this path does not take the problem
    int dim_v = 0;  // the instantiation's V/O width (sm90_dim_v: dim, or 128 for MLA-shaped calls at dim 192)
    int alt = 0;    // tile-table row (sm90_pick)
    bool pack = false;
    int splits = 1; // resolved split count (>= 1)
    bool counter = false; // the dynamic schedule's tile counter lives in the workspace (kCounterBytes)
    // Tail split: a persistent unmasked grid of `tiles` tiles on `ctas` SMs ends on a partial wave (tiles mod
    // ctas of them); those tail_tiles tiles run as key-range pieces on every SM instead (a second launch, then a
    // combine). 0: no tail split. It needs tail_bytes of workspace, the optional last part of the workspace.
    int tail_tiles = 0;
    int tail_ctas = 0;
    int block_m = 0; // the row's block_m (the partial rows of one piece)
};
constexpr uint64_t kCounterBytes = 256;

// Workspace of a tail split: fp32 partial O (acc_d floats per row) and LSE for 2 * ctas pieces of block_m rows.
constexpr uint64_t tail_o_bytes(const Choice& c, int acc_d) {
    return uint64_t(2) * c.tail_ctas * c.block_m * acc_d * sizeof(float);
}
constexpr uint64_t tail_bytes(const Choice& c, int acc_d) {
    return c.tail_tiles == 0 ? 0 : ((tail_o_bytes(c, acc_d) + 255) & ~uint64_t(255)) +
                                       uint64_t(2) * c.tail_ctas * c.block_m * sizeof(float);
}

// Whether the Hopper kernel takes p, and how: the split count is p.num_splits, or with 0 FA3's heuristic on the
// Hopper tile geometry. c->dim == 0: it does not (sm_90 device, sm_90a compiled, no dropout / ALiBi,
// TMA-compatible strides, and a split only where the group packs); the caller runs the sm80 kernel.
int32_t choose(const FwdProblem& p, Choice* c);

// Runs p on the Hopper kernel as `c` says: *taken = true and the launch status, or *taken = false with nothing
// launched (a stride the copy engine cannot describe: the caller runs the sm80 kernel with the same `k`).
// `k` is the forward's complete parameter block (with c.splits > 1 its partials o_accum, row stride acc_d
// floats, and lse_accum, which the caller combines); `counter` is the workspace's tile counter when c.counter.
// `tail_ws`: tail_bytes(c, acc_d) of workspace for a tail split, or null (the grid then runs whole).
int32_t run(const FwdProblem& p, const FwdParams& k, const Choice& c, int acc_d, int* counter, void* tail_ws,
            cudaStream_t stream, bool* taken);

// Defined in hopper/generated/fwd_sm90_*.cu. grid.x CTAs stride over the tiles; `alt` is the tile-table row
// of (kD, kDV, kMasked) the problem runs on (sm90_pick).
// `pdl`: a programmatic dependent launch (the tail split's pieces start on the SMs the main launch frees).
template <bool kBf16, int kD, int kDV, bool kMasked, int kVar>
int32_t run_fwd_sm90(const Sm90Params& p, dim3 grid, bool softcap, int alt, bool pdl, cudaStream_t stream);

} // namespace flash::cuda::sm90
