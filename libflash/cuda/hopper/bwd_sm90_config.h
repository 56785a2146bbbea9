// The Hopper backward's tile table (one row per head dim). Changes speed only (summation order of dQ).
// Read by the host (hopper/bwd_sm90.cu) and the kernel (hopper/bwd_sm90_kernel.cuh).
#pragma once

namespace flash::cuda::sm90 {

struct Bwd90Tile {
    int d;       // instantiated head dim (d, dv <= it run on it: TMA zero-fills the columns past d / dv)
    int block_m; // query rows per step (the N of S^T = K Q^T); 64 or 128
    int block_n; // keys per CTA: two consumer warpgroups of 64 keys each (fixed at 128)
    int stages;  // Q / dO / LSE / D ring depth
    int reg_producer, reg_consumer; // setmaxnreg targets (producer + 2 consumers <= 3 * 168)
};

// Shared memory: K + V (2 * 128 * d * 2) + stages * (Q + dO) (2 * block_m * d * 2) + 2 dS^T buffers
// (2 * 128 * block_m * 2) + dQ staging 36 KB + 4 KB: d64/bm128: 200 KB, d128/bm64: 200 KB. Registers per consumer thread:
// dK, dV d/2 each + S^T, dP^T block_m/2 each (then P^T / dS^T fragments block_m/4 each + dQ 32).
constexpr Bwd90Tile kBwd90Tiles[] = {
    // d  bm   bn  st  regs
    {64, 128, 128, 2, 24, 240},
    {128, 64, 128, 2, 24, 240},
};

constexpr Bwd90Tile bwd90_tile(int d) {
    for (const Bwd90Tile& t : kBwd90Tiles)
        if (t.d == d) return t;
    return Bwd90Tile{0, 0, 0, 0, 0, 0};
}

// Dynamic shared memory of the kernel (bwd_sm90_kernel.cuh Bwd90Cfg::kSmem asserts the same value): 1 KB of
// alignment slack, mbarriers + the LSE / D ring (rounded to 1 KB), K, V, the Q / dO ring, two dS^T buffers, the
// dQ staging rows (2 x 64 x 288 B).
constexpr int bwd90_smem_bytes(const Bwd90Tile& t) {
    return 1024 + (256 + t.stages * t.block_m * 8 + 1023) / 1024 * 1024 + 2 * t.block_n * t.d * 2 +
           2 * t.stages * t.block_m * t.d * 2 + 2 * t.block_n * t.block_m * 2 + 2 * 64 * 288;
}

} // namespace flash::cuda::sm90
