// The ONE table of forward tile shapes: what a kernel instantiation looks like per (arch class, head dim).
// Nothing here changes results beyond rounding (tile shapes change the summation order only; the dropout
// mask is a function of (row, column) alone). Read by the host dispatcher (fwd.cu: occupancy, split
// heuristic, workspace) and by the kernel templates (fwd_kernel.cuh).
#pragma once

namespace flash::cuda {

// Arch classes. kBig: sm80/sm87/sm90/sm100 (>= 163 KB shared memory per SM); kSmall: sm86/sm89/sm120
// (99 KB per block). Today both classes use the same shapes, which all fit 99 KB, so each head dim has one
// instantiation; a class-specific entry is added here, and the launcher then instantiates both.
enum class ArchClass : int { kBig = 0, kSmall = 1 };

struct FwdTile {
    int d;          // instantiated head dim (Q/K and V/O both; any d, dv <= it runs on it; MLA's narrow-V
                    // instantiation, V/O 128 wide, runs on d192's row: fwd_dim_v)
    int masked;     // 0: no window; 1: causal / local window (the instantiation's kMasked)
    int block_m;    // query rows per CTA
    int block_n;    // key rows per pipeline stage
    int warps;      // each warp owns block_m / warps query rows (a multiple of 16)
    int stages;     // K/V ring depth (1 = FA2's interleave: V load under QK^T, next K under softmax+PV)
    int ctas_per_sm;// __launch_bounds__ min blocks; also the occupancy the split heuristic assumes
    bool q_in_regs; // keep Q's A fragments in registers across the K loop
    bool split_body;// compile the key-block body twice (masked / plain): lower register pressure in plain
                    // blocks when the kernel has headroom; costs spills when it has none (d128)
    bool lazy_rescale; // skip the O rescale when no row max of the warp moved (see fwd_kernel.cuh)
    bool reverse_m; // causal / local with split-KV only: launch the m-blocks from the last (longest key range) to
                    // the first (one split: L2 sections, heaviest first, for every head dim; tile_order.h)
    bool two_chains; // the softmax's row max and row sum as two independent chains per row (shorter dependency
                     // chains; the sum's order, so its rounding, differs from one chain)
    bool full_load;  // tiles that lie wholly inside the sequence (and head dim) are copied without per-row bounds
                     // checks (the checked copy spends ~6 integer instructions per 16-byte cp.async, ncu source
                     // counters; this one only the pointer step); costs a second copy of the loader's code
    bool late_sync;  // wait for V(j) and issue K(j + stages) after the softmax instead of between the two GEMMs
                     // (FA2's place): the row max then follows the S HMMAs with no barrier between them, and
                     // ptxas allocates the plain d128 kernel without spills (52 B before)
};

// Measured on H100 (bench/NOTES.md, CUDA section): 4 warps x 32 rows each (two m16 tiles per warp, so every
// K/V fragment read from shared memory feeds two MMAs) beat 8 warps x 16 rows by 20-25%; d64 non-causal
// likes 128 keys per stage; causal d64 too since the one-compare masks (session 8, H200: 128 keys, no split body,
// no lazy rescale +2.7..+7.8% at 1k-16k over 64 keys with the split body; with the split body or lazy rescale
// 0.93-1.02 / 0.97-1.01, bench/NOTES.md mma step 9); d128 runs best with FA2's single
// K and V buffer (stages = 1: 64 KB of smem, more L1 left for its register spills), +2-3% over 2 stages.
// rev_m (causal m-block order, A/B in one process, 2026-11-22): d128 +3-8% in launch order at 1k-16k (was
// reversed), d64 neutral (+0-1%), d256 -2..-11% at 4k-16k in launch order -> reversed; d32/d96/d192 follow the
// head dim with the same block_m (unmeasured). Since session 11 one-split masked launches use L2 sections with
// the heaviest m blocks of all the section's heads first (tile_order.h): +0-3% d64, +1.5-6% d128, +0.6-7% d256
// over these orders at 1k-16k, and 6-8% ahead of the same sections lightest first at d128 (bench/NOTES.md).
// full_load and late_sync (session 15, H200, one-process A/B of tuning builds, bench/NOTES.md mma.sync step 12):
// full_load d64 +1.2..+3.3% non-causal, +1.2..+1.9% causal (1k-16k); d128 -0.2..-2%, d256 -1.4..+0.4% -> off there.
// d64 non-causal with lazy rescale off (and full_load) +0.8..+4.4% over lazy on. late_sync d128 non-causal +4.4 /
// +3.0 / +2.1 / +1.3% at 1k / 2k / 4k / 16k, causal +0.2..+0.9%; d64 non-causal +1.4..+1.9%, causal -0.9..-1.6%;
// d256 -2..-3.7% -> on at d128 (d64 non-causal with lazy off: step 12); d96 0.97-1.00, d192 0.92-0.98 -> off; d32 unmeasured.
// two_chains (session 14, H200, one-process A/B against one chain, bench/NOTES.md mma step 11): d128 +0..+4.2% at
// 1k-16k (causal 4k-16k +4%), d64 -0.3..-2.6%, d256 -1.6..+0.1% -> on at d128 only (d96 / d192: below).
// d96 / d192 (session 20, bench/NOTES.md mma step 16): d96 lazy rescale off +2..+8% (H200 screen; sm_90a plain kernels
// then spill 20-40 B, sm_80 none), with full_load +2% geomean over the old row (H100, bf16 + fp16); two_chains and 2 stages
// no gain there. d192 full_load + two_chains +0.7% geomean (inside the run's +-2.5% control spread), late_sync -2..-8%:
// d192 unchanged.
constexpr FwdTile kFwdTiles[] = {
    //  d  mask  bm   bn  w  st cta q_regs split lazy  rev_m two_chains full_load late_sync
    {32, 0, 128, 64, 4, 2, 2, true, false, false, false, false, false, false},
    {32, 1, 128, 64, 4, 2, 2, true, false, false, false, false, false, false},
    {64, 0, 128, 128, 4, 2, 2, false, false, false, false, false, true, false},
    {64, 1, 128, 128, 4, 2, 2, false, false, false, false, false, true, false},
    {96, 0, 128, 64, 4, 1, 2, false, false, false, false, false, true, false},
    {96, 1, 128, 64, 4, 1, 2, false, false, false, false, false, true, false},
    {128, 0, 128, 64, 4, 1, 2, false, false, true, false, true, false, true},
    {128, 1, 128, 64, 4, 1, 2, false, false, true, false, true, false, true},
    {192, 0, 64, 64, 4, 1, 2, false, true, false, false, false, false, false},
    {192, 1, 64, 64, 4, 1, 2, false, true, false, true, false, false, false},
    {256, 0, 64, 64, 4, 1, 2, false, true, true, false, false, false, false},
    {256, 1, 64, 64, 4, 1, 2, false, true, true, true, false, false, false},
};

constexpr FwdTile fwd_tile(int d, bool masked, ArchClass = ArchClass::kBig) {
#ifdef FLASH_TUNE_D
#ifndef FLASH_TUNE_SPLIT
#define FLASH_TUNE_SPLIT 0
#endif
#ifndef FLASH_TUNE_LAZY
#define FLASH_TUNE_LAZY 0
#endif
#ifndef FLASH_TUNE_REV
#define FLASH_TUNE_REV 0
#endif
#ifndef FLASH_TUNE_CHAINS
#define FLASH_TUNE_CHAINS 0
#endif
#ifndef FLASH_TUNE_FULL
#define FLASH_TUNE_FULL 0
#endif
#ifndef FLASH_TUNE_LATE
#define FLASH_TUNE_LATE 0
#endif
    // Tuning builds only (scripts/device_run.sh tune): one head dim's rows replaced from the command line.
    if (d == FLASH_TUNE_D)
        return FwdTile{FLASH_TUNE_D, masked ? 1 : 0, FLASH_TUNE_BM, FLASH_TUNE_BN, FLASH_TUNE_W, FLASH_TUNE_ST,
                       FLASH_TUNE_CTA, false, FLASH_TUNE_SPLIT != 0, FLASH_TUNE_LAZY != 0, FLASH_TUNE_REV != 0,
                       FLASH_TUNE_CHAINS != 0, FLASH_TUNE_FULL != 0, FLASH_TUNE_LATE != 0};
#endif
    for (const FwdTile& t : kFwdTiles)
        if (t.d == d && t.masked == (masked ? 1 : 0)) return t;
    return FwdTile{0, 0, 0, 0, 0, 0, 0, false, false, false, false, false, false, false};
}

// Bytes of one shared-memory row d elements wide: d / 8 16-byte chunks at prim::SwizzledRows' pitch (chunk counts
// that are neither a multiple of 8 nor 2 or 4 get an odd pitch, c | 1: one chunk of padding when c is even, d96's 12
// chunks at pitch 13). A plain-C++ mirror of that rule (the host cannot include swizzle.cuh).
constexpr int fwd_row_bytes(int d) {
    const int c = d / 8;
    return ((c % 8 == 0 || c == 4 || c == 2) ? c : (c | 1)) * 16;
}

// Shared memory of a row: the Q tile (block_m rows) and `stages` K tiles (block_n rows) d wide, and as many V tiles
// dv wide (0: d; the narrow-V instantiation's 128). FwdCfg asserts that this equals its kSmem.
constexpr int fwd_smem_bytes(const FwdTile& t, int dv = 0) {
    return (t.block_m + t.stages * t.block_n) * fwd_row_bytes(t.d) +
           t.stages * t.block_n * fwd_row_bytes(dv ? dv : t.d);
}

// The V/O width of the mma.sync instantiation `dim` for a call with V/O head dim dv: 128 for dim 192 when dv <= 128
// (MLA's prefill shape, d 192 with dv 128, as the Hopper path's sm90_dim_v: P V and O a third smaller than with V
// zero-padded to 192), else dim.
constexpr int fwd_dim_v(int dim, int dv) { return dim == 192 && dv <= 128 ? 128 : dim; }

// Chunks per lane of load_tile's fast path for a row of c chunks copied by `threads` threads in steps of `rows` rows
// (rows a multiple of the rows one step covers): 1 when the threads are a multiple of c; else the smallest k dividing
// c with threads a multiple of c / k and c / k >= 8, so that every lane copies k chunks, c / k apart, and each copy
// reads whole 128-byte lines of a row (d192: 24 = 8 lanes x 3); 0 when there is none (d96's 12 chunks: 4 lanes x 3
// ran 0-4% slower than 16 padded lanes, 3 neighbouring chunks per lane 20-40% slower; bench/NOTES.md mma step 15).
// fwd_kernel.cuh's load_tile maps its copies by it; here so that the host test can check it.
constexpr int load_lane_chunks(int c, int threads, int rows) {
    for (int k = 1; k <= c; ++k)
        if (c % k == 0 && threads % (c / k) == 0 && rows % (threads / (c / k)) == 0 && (k == 1 || c / k >= 8))
            return k;
    return 0;
}

// Why a row cannot be compiled or launched as promised, or nullptr. Asserted for the table below (so the host
// build and CI's host test, test/native/tile_table.cpp, catch a bad edit) and per instantiation by FwdCfg.
constexpr const char* fwd_tile_error(const FwdTile& t) {
    if (t.d % 16 != 0 || t.d > 256 || t.warps < 1 || t.block_n % 16 != 0 || t.block_n < 16 ||
        t.block_m % (16 * t.warps) != 0 || t.block_m < 16)
        return "tile shape";
    if (t.stages < 1) return "stages";
    if (fwd_smem_bytes(t) > 99 * 1024) return "shared memory beyond the 99 KB of the small arch class";
    // ctas_per_sm is what the split heuristic assumes; checked against sm90's 228 KB per SM with the 1 KB each CTA
    // reserves. sm80 / sm87 (164 KB) hold one d256 CTA (96 KB) where this says two.
    if (t.ctas_per_sm < 1 || t.ctas_per_sm * (fwd_smem_bytes(t) + 1024) > 228 * 1024)
        return "ctas_per_sm CTAs do not fit one sm90 SM's shared memory";
    return nullptr;
}

// The table as a whole: every row valid, and exactly one row per (head dim, mask) for the instantiated head dims
// (scripts/gen_kernels.py's HEAD_DIMS: 32, 64, 96, 128, 192, 256).
constexpr const char* fwd_table_error() {
    for (const FwdTile& t : kFwdTiles)
        if (const char* e = fwd_tile_error(t)) return e;
    constexpr int kDims[] = {32, 64, 96, 128, 192, 256};
    for (int d : kDims)
        for (int m = 0; m < 2; ++m) {
            int rows = 0;
            for (const FwdTile& t : kFwdTiles) rows += t.d == d && t.masked == m;
            if (rows != 1) return "a (head dim, mask) pair without exactly one row";
        }
    return nullptr;
}
static_assert(fwd_table_error() == nullptr, "kFwdTiles: a row breaks a rule of fwd_table_error");

} // namespace flash::cuda
