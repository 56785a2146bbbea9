// The ONE table of backward tile shapes (issue 6). Read by the host dispatcher (bwd.cu: shared memory check,
// workspace) and by the kernel templates (bwd_kernel.cuh). Tile shapes change the summation order only.
//
// One CTA of the main kernel owns block_n keys of one (sequence, KV head) and walks the query rows in blocks
// of block_m (for every query head of the group). Per query block it computes S = Q K^T and dP = dO V^T in
// the "SdP" warp layout, writes P and dS to shared memory in 16 bits, then dV += P^T dO, dK += dS^T Q in the
// "KV" warp layout (register accumulators for the whole CTA life) and dQ = dS K in the "Q" warp layout
// (fp32 atomics into the workspace, or nothing in deterministic mode, where a separate kernel computes dQ).
// Each layout splits its output tile over the 8 (or 4) warps as wm x wn (rows x columns).
#pragma once

namespace flash::cuda {

struct BwdTile {
    int d;        // instantiated head dim (d, dv <= it run on it)
    int block_m;  // query rows per inner step
    int block_n;  // keys per CTA
    int warps;
    int qstages;  // Q / dO ring depth (2 = next query block loads under the current one)
    int sdp_wm, sdp_wn; // S, dP [block_m x block_n]
    int kv_wm, kv_wn;   // dK [block_n x d], dV [block_n x dv]
    int q_wm, q_wn;     // dQ [block_m x d]
};

// Shared memory (bytes) of the main kernel: K, V, qstages x (Q, dO), P, dS, qstages x (LSE, D); the
// deterministic dQ kernel needs less (bwd_dq_smem_bytes). Two classes of tiles:
//  - kBwdTiles (GPUs with >= 163 KB per block: sm80/87, sm90, sm100): 32: 65K, 64: 162K, 96: 137K, 128: 161K,
//    192: 113K (MLA's narrow V, dv 128: 96.5K), 256: 145K. d64 128x128 with FA2's warp layouts and d128's SdP
//    layout 2x4 measured +11-22 % and +2-7 % over the previous 64x128 / 4x2 rows on an H100 (bench/NOTES.md,
//    backward run 3).
//  - kBwdTilesSmall (99 KB per block: sm86/89/120), for the head dims whose large tile does not fit there:
//    64: 97K, 96: 95K, 128: 81K, 192: 80K (dv 128: 68K), 256: 68K (32 runs its large tile; 192 / 128's large
//    tile, 96.5K, fits 99 KB and runs there too).
// bwd.cu takes the large tile when it fits the device's opt-in shared memory (capped by the test knob
// FLASH_SMEM_LIMIT_BYTES), else the small one, else returns FLASH_ERROR_UNSUPPORTED naming the GPU and tile.
constexpr BwdTile kBwdTiles[] = {
    //  d  bm   bn  w  qs  sdp   kv    q
    {32, 64, 128, 8, 2, 4, 2, 4, 2, 4, 2},
    {64, 128, 128, 8, 2, 2, 4, 4, 2, 4, 2},
    {96, 64, 128, 8, 2, 4, 2, 4, 2, 4, 2},
    {128, 64, 128, 8, 2, 2, 4, 4, 2, 2, 4},
    {192, 64, 64, 8, 1, 4, 2, 2, 4, 2, 4},
    {256, 64, 64, 8, 1, 4, 2, 2, 4, 2, 4},
};
constexpr BwdTile kBwdTilesSmall[] = {
    //  d  bm  bn  w  qs  sdp   kv    q
    {64, 64, 128, 8, 2, 4, 2, 4, 2, 2, 4},
    {96, 64, 64, 8, 2, 4, 2, 4, 2, 4, 2},
    {128, 64, 64, 8, 1, 4, 2, 4, 2, 4, 2},
    {192, 32, 64, 8, 1, 2, 4, 4, 2, 2, 4},
    {256, 32, 32, 4, 1, 2, 2, 2, 2, 2, 2},
};

constexpr bool bwd_has_small(int d) {
    for (const BwdTile& t : kBwdTilesSmall)
        if (t.d == d) return true;
    return false;
}

// The tile of head dim d: the large class, or the small class when `small` and d has a small tile.
constexpr BwdTile bwd_tile(int d, bool small = false) {
#ifdef FLASH_BWD_TUNE_D // tuning builds only: replaces the large tile of one head dim. Warp layouts as two digits
    // (wm wn): -DFLASH_BWD_TUNE_D=128 -DFLASH_BWD_TUNE_BM=64 -DFLASH_BWD_TUNE_BN=128 -DFLASH_BWD_TUNE_W=8
    // -DFLASH_BWD_TUNE_QS=2 -DFLASH_BWD_TUNE_SDP=24 -DFLASH_BWD_TUNE_KV=42 -DFLASH_BWD_TUNE_Q=24
    if (!small && d == FLASH_BWD_TUNE_D)
        return BwdTile{FLASH_BWD_TUNE_D,       FLASH_BWD_TUNE_BM,      FLASH_BWD_TUNE_BN,      FLASH_BWD_TUNE_W,
                       FLASH_BWD_TUNE_QS,      FLASH_BWD_TUNE_SDP / 10, FLASH_BWD_TUNE_SDP % 10, FLASH_BWD_TUNE_KV / 10,
                       FLASH_BWD_TUNE_KV % 10, FLASH_BWD_TUNE_Q / 10,   FLASH_BWD_TUNE_Q % 10};
#endif
    if (small)
        for (const BwdTile& t : kBwdTilesSmall)
            if (t.d == d) return t;
    for (const BwdTile& t : kBwdTiles)
        if (t.d == d) return t;
    return BwdTile{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
}

// Bytes of a swizzled tile of `rows` x `d` 16-bit elements (primitives/swizzle.cuh: pitch kChunks, or
// kChunks | 1 when kChunks is neither a multiple of 8 nor 2 or 4).
constexpr int bwd_tile_bytes(int rows, int d) {
    const int c = d / 8;
    const bool x = (c % 8 == 0) || c == 4 || c == 2;
    return rows * (x ? c : (c | 1)) * 16;
}

// The V / dO / dV width of the instantiation `dim` for a call with V head dim dv: 128 for dim 192 when dv <= 128
// (MLA's 192 / 128, as the forward's fwd_dim_v: dP = dO V^T and dV = P^T dO a third narrower, V and dO a third
// smaller in shared memory, dV's accumulators a third fewer), else dim.
constexpr int bwd_dim_v(int dim, int dv) { return dim == 192 && dv <= 128 ? 128 : dim; }

// dv: the V / dO width (0: t.d).
constexpr int bwd_smem_bytes(const BwdTile& t, int dv = 0) {
    const int w = dv ? dv : t.d;
    return bwd_tile_bytes(t.block_n, t.d) + bwd_tile_bytes(t.block_n, w) + t.qstages * bwd_tile_bytes(t.block_m, t.d) +
           t.qstages * bwd_tile_bytes(t.block_m, w) + 2 * bwd_tile_bytes(t.block_m, t.block_n) +
           2 * t.qstages * t.block_m * 4;
}

// The deterministic dQ kernel (one CTA per query block; loops over key blocks): Q, dO, K, V, dS, LSE, D.
constexpr int bwd_dq_smem_bytes(const BwdTile& t, int dv = 0) {
    const int w = dv ? dv : t.d;
    return bwd_tile_bytes(t.block_m, t.d) + bwd_tile_bytes(t.block_m, w) + bwd_tile_bytes(t.block_n, t.d) +
           bwd_tile_bytes(t.block_n, w) + bwd_tile_bytes(t.block_m, t.block_n) + 2 * t.block_m * 4;
}

} // namespace flash::cuda
