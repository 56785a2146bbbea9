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
    int d;          // instantiated head dim (Q/K and V/O both; any d, dv <= it runs on it)
    int block_m;    // query rows per CTA
    int block_n;    // key rows per pipeline stage
    int warps;      // each warp owns block_m / warps query rows (a multiple of 16)
    int stages;     // K/V ring depth (1 = FA2's interleave: V load under QK^T, next K under softmax+PV)
    int ctas_per_sm;// __launch_bounds__ min blocks; also the occupancy the split heuristic assumes
    bool q_in_regs; // keep Q's A fragments in registers across the K loop
};

// Rows: head dim 32, 64, 96, 128, 192, 256.
constexpr FwdTile kFwdTiles[] = {
    //  d  bm   bn  w  st cta q_regs
    {32, 128, 64, 4, 2, 2, true},
    {64, 128, 64, 4, 2, 2, false},
    {96, 128, 64, 8, 2, 1, false},
    {128, 128, 64, 8, 2, 1, false},
    {192, 128, 64, 8, 1, 1, false},
    {256, 64, 64, 4, 1, 2, false},
};

constexpr FwdTile fwd_tile(int d, ArchClass = ArchClass::kBig) {
    for (const FwdTile& t : kFwdTiles)
        if (t.d == d) return t;
    return FwdTile{0, 0, 0, 0, 0, 0, false};
}

} // namespace flash::cuda
