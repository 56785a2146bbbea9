// The Hopper forward's tile table: one or two rows per (head dim, V head dim, window). Changes speed only (summation order);
// what changes results (dtype, head dim, mask, softcap) is in the template arguments, not here.
// Read by the host (hopper/fwd_sm90.cu) and by the kernel (hopper/fwd_sm90_kernel.cuh).
#pragma once

#include <cstdint>

namespace flash::cuda::sm90 {

struct Sm90Tile {
    int d;         // instantiated Q/K head dim (any d <= it runs on it, TMA zero-fills the rest); a multiple of 32:
                   // shared memory holds whole 64-column blocks (sm90_dpad), the GEMMs only d columns
    int dv;        // instantiated V/O head dim (any dv <= it runs on it): d, or less for the narrow-V instantiation of
                   // MLA-shaped calls (192 / 128, FA3's): V's tiles, the P V GEMM and O then cover dv columns, not d
    int masked;    // 0: no window; 1: causal / local
    int consumers; // consumer warpgroups, 64 query rows each: block_m = 64 * consumers
    int block_n;   // keys per K/V stage (the N of S = Q K^T, a multiple of 16)
    int stages;    // K/V ring depth
    bool overlap;  // intra-warpgroup overlap: softmax of block j runs while P V of block j-1 is on the tensor cores
    bool pingpong; // two consumer warpgroups take turns issuing their GEMMs, so one's softmax hides under the
                   // other's GEMMs (FA3's warp-scheduler barriers); needs consumers == 2
    bool persistent; // one CTA per SM working through the tiles (else one CTA per tile)
    bool dynamic;    // persistent CTAs claim tiles from an atomic counter in the workspace (else a static stride)
    int reg_producer, reg_consumer; // setmaxnreg targets; p + consumers*c <= (consumers+1) * launch regs
    bool desc_base; // wgmma descriptors as one base per operand + constant offsets (fewer integer ops per GEMM)
    int q_slots;    // 2: persistent CTAs load the next tile's Q while this tile runs (needs the shared memory)
    int persist_max_n; // > 0: launch persistently only while seqlen_k <= persist_max_n * block_n, else one CTA
                       // per tile (the kernel then takes one tile each); 0: always as `persistent` says
    int tma_o;      // how O leaves a full tile: 0 by 32-bit stores from registers; otherwise staged in shared memory
                    // (stmatrix) and written by TMA stores, 1 through the tile's Q slot, released once the copy has
                    // read it (under the next tile's first GEMM), so persistent CTAs need q_slots 2; 2 through a
                    // buffer of its own (64 rows x dv, after the K/V ring) that the consumer warpgroups take in turn,
                    // for rows whose shared memory has room for that but not for a second Q
    int min_sk;     // this row serves seqlen_k >= min_sk: a (d, dv, mask) triple has one or two rows, in ascending
                    // min_sk (the first one 0), and a problem runs on the last row whose min_sk it reaches
    bool softcap;   // softcap problems may run here; false: they run on the triple's other row whatever their
                    // length (the tanh's registers make this row spill; its softcap kernel is not compiled)
    bool dense;     // calls without cu_seqlens, seqused, leftpad_k or softcap run on a kernel compiled without their
                    // geometry loads (kVarDense); false: that kernel is not compiled and they take the plain one
    bool uniform;   // the tile's key-block count is re-read from lane 0, so ptxas proves the K/V ring position warp-
                    // uniform and builds every wgmma descriptor in uniform registers (fewer vector integer ops and
                    // R2UR per GEMM); false: the consumers derive it from the tile as loaded
    bool pair_o;    // O leaving by register stores (tma_o 0, and partial tiles on every row): lanes q and q ^ 1 trade one
                    // packed value per pair of column tiles so each stores 8 bytes (half the store instructions, whole
                    // 32-byte sectors per row); false: 4-byte stores, no shuffle
    bool stagger;   // ping-pong rows: consumer 0 keeps the turn through a tile's first softmax, so it runs alone and
                    // consumer 1 trails it by that much (false: both run their first softmax side by side)
    int spec;       // speculative softmax: after a tile's first key block the exponentials are taken against the
                    // running max without computing the block's max (the K slot is released after the softmax instead
                    // of before). A block whose sums say the max moved: 1, S recomputed; 2, rows rescued from their
                    // exponentials, S recomputed only on overflow (softmax_spec). 0: the row max of every block, as
                    // FA3 does
};

// Shared memory: Q block_m*d*2 + stages * block_n*(d + dv)*2 bytes must fit 227 KB; registers per consumer
// thread: S block_n/2 + O dv/2 + P block_n/4. Measured alternatives (H100, bf16, FA3 grid; bench/NOTES.md,
// "Hopper forward", step 3):
// - ping-pong: +6-18% at d128 non-causal; at d256 it spills 132 B and loses 4-14% (off there).
// - persistent: +7% at d128 1k and +10% at d256 4k non-causal, but the static tile striding unbalances
//   causal work (d128 16k causal 559 -> 395 TF). With the dynamic (atomic counter) schedule causal d64 gains
//   4-20% (most at 1k-2k), while d128/d256 causal lose 2-15% at >= 2k (their masked kernels spill 48-56 B
//   with the tile ring's extra state): those stay one CTA per tile, the hardware balancing the triangle.
// - d64 non-causal: 3 consumers (192 x 128, registers 32/160) +5-14% over 2 consumers with ping-pong;
//   block_n 192 at d64 and 176 at d128: no gain, spills (step 7: 176 now 0-16 B, still 1-5% behind 128).
// - desc_base + q_slots 2 (steps 8-9): d64 non-causal +3-5%, d128 non-causal +1-5% (652 TF at 16k); on the
//   causal rows and at d256 (desc_base only: a second Q does not fit) -4..+4%, inside the noise: off there.
// - d128 causal (step 10): persistent + dynamic + desc_base + q_slots 2 is +16-19% at 512, +10-12% at 1k,
//   +3-5% at 2k, +2% at 4k, -3% at 16k against one CTA per tile -> persistent up to persist_max_n key blocks.
//   A third K/V stage (q_slots 1) and the "chain" overlap of tile boundaries: no gain (NOTES step 10).
//   d64 causal: 3 or 4 stages = 2 (+-1%); d256 causal dynamic (q_slots 1, no room for 2): +2% at 512-1k, -10% at 16k.
// - Two rows for d64 (step 12): 2 consumers + ping-pong + tma_o below 2k keys (+6% at 512-1k non-causal over
//   3 consumers, -1..-7% from 2k); 3 consumers from 2k (causal: +3-4% at 2k-4k, +12% at 16k, -8..-11% at 512-1k).
//   Non-causal from 1536 keys since session 35, from 1025 since session 36 (below).
// - tma_o (step 11): d128 +11% / +7% / +5% / +2% / 0 non-causal and +17% / +11% / +6% / +3% / -1% causal at
//   512 / 1k / 2k / 4k / 16k; d64 non-causal (3 consumers) 0.98 -> 0.83 (worse with seqlen: the loop's code,
//   not the epilogue), d64 causal with q_slots 2 0.97-1.03; d256 causal spills 124 B with it. On at d128 only
//   (d64 / d96 short rows since; for the d256 short rows and MLA through a buffer of its own, tma_o 2, below).
// - d64 causal below 2k keys (step 15): desc_base + q_slots 2 + tma_o on the 2-consumer row, re-measured after
//   the tile decode got cheaper: +6.7% / +2.7% at 512 / 1k (-2% at 2k, where the 3-consumer row runs).
// - d256 desc_base (step 16; ncu: 6.6 M uniform-pipe instructions against cuDNN's 1.1 M at causal 512): non-causal
//   +1.1 / +1.7 / +1.3 / +1.4% at 512-4k (16k -1.3%, inside its spread), causal +1.6 / +2.0 / +0.3 / +0.3 / +2.0%.
//   d256 causal persistent + dynamic up to 13 key blocks (with desc_base): 1.00 / 1.00 at 512 / 1k, 0.96-0.98 above.
// - d256 below 2k keys causal, below 1k non-causal (step 18): block_n 128 in one K/V stage (Q 64 KB + K,V 128 KB),
//   ping-pong instead of overlap, persistent: causal +12% / +2.5% at 512 / 1k, non-causal +5.6% at 512 (0.96 at
//   1k, 0.93-0.97 above) over the block_n 80 rows, which keep the longer ones and softcap. Not kept: block_n 64
//   persistent causal (-3..-5% >= 2k), block_n 128 with overlap (144-216 B spills), a per-warpgroup skip of fully
//   masked blocks (-9..-16% >= 2k), half GEMMs on the diagonal block (step 19, -1..-36%).
//   Session 17 (H200, step 34): block_n 64 in two stages on the short row, overlap 0.95-0.98 and ping-pong 0.87-0.93.
// - After the L2-section tile order (session 11, tile_order.h; +1-11% on the causal rows): d128 causal persistent
//   at every length (persist_max_n 0) 0.98-1.0 at 2k-16k, d256 causal long row persistent + dynamic 1.03 at 2k,
//   0.99 at 4k, 0.93 at 8k-16k: neither kept. d64 causal 3 consumers below 2k: 0.89 at 512-1k (the 2k crossover
//   stays); d256 causal block_n 128 row up to 3072 keys: 2k bf16 1.027, fp16 0.989 (not kept).
// - uniform (session 14, H200, one-process A/B, 4 rounds): d64 causal +3% at 512-1k, 0 from 2k; d128 +0..+4%
//   (non-causal +4% from 2k); d64 non-causal -2% at 512-1k (the ping-pong row), 0 from 2k; d256 -2..+2% (off);
//   d192 not measured (off). Static SASS: d64 causal 2984 -> 2832 instructions, d128 causal 3488 -> 3272.
// - dense (session 13, H200, one-process A/B against the plain kernel on every row): d64 2-consumer causal +4% /
//   +3% at 512 / 1k, non-causal +1%; d64 3-consumer non-causal +1%, causal -3..-4% at 2k-16k (off there); d128
//   non-causal +3% / +2% at 512 / 1k, -1..+1% elsewhere; d256 -1.5..+1% (off); d192 not measured (off).
// - d96 (session 16): its own instantiation (before: the d128 kernel, columns 96-127 zeros) +5-11%; d128's rows.
//   Against them, non-causal 1k / 4k / 16k: block_n 144 0.88 / 0.96 / 0.98, block_n 176 0.87 / 0.94 / 0.98, three
//   consumers at block_n 112 0.79 / 0.97 / 1.05 (at 128 / 144 they spill 144 / 288 B).
// - d192 / dv128 (session 17, H200, one-process A/B, bf16 b*s = 16k, 10 heads; bench/NOTES.md step 33): its own rows, as
//   the narrower O leaves registers for d128's block_n 128 (d192's 112: 0.86-0.96). Non-causal: no ping-pong, persistent
//   (ping-pong 0.97-1.01, ping-pong + uniform 0.98-1.01, no ping-pong + uniform 0.87-1.0); causal: ping-pong + uniform,
//   persistent + dynamic below 2k keys (+19% / +13% at 512 / 1k over one CTA per tile), one CTA per tile from 2k
//   (the persistent kernel 0.96 at 2k, and 0.89 at 4k even launched one CTA per tile: its tile ring costs 4-20 B of
//   spills). Against V zero-padded on the d192 kernel +11-24% non-causal, +13-42% causal (final A/B, bf16 and fp16).
// - O through a buffer of its own (tma_o 2; session 18, H200, one-process A/Bs, bench/NOTES.md step 35): the persistent
//   rows with one Q slot had room for 64 x dv more but not for a second Q. d256 short rows +19% / +9% / +4% non-causal
//   and +17% / +10% / +8% causal at 512 / 1k / 2k, and with it they now serve up to 4k keys (non-causal from 1k and
//   causal from 2k ran the block_n 80 rows; at 4k and 8k the block_n 80 rows stay 1-3% ahead). Since session 35 the
//   non-causal short row serves below 2k keys only (below). MLA 192 / 128 +5-12%
//   (non-causal and causal row 0 tma_o 2, causal row 1 tma_o 1). Not kept: the d256 causal long row with O through its
//   Q slot (one CTA per tile; 0.86-0.92 at 4k-16k, with the exit waiting for the copy's reads only), d128 with the
//   buffer instead of its second Q slot's O (0.96-0.98), the d256 non-causal long row one CTA per tile with O through
//   the Q slot (0.93-0.97). d64's 3-consumer rows: the turn-taking needs <= 2 consumers (sm90_tile_error).
// - pair_o (session 23, bench/NOTES.md step 39; results/s23_pair_o_ab_h100.md): d192 +5-9% at 1k-2k, 0-2% from 4k;
//   d256 block_n 80 rows +2-4% at 4k-8k (H100; +2.5-3.7% at 4k on an H200). d64's 3-consumer rows 0.98-0.99 (off).
// - d192 x 192 (session 24, H100, bench/NOTES.md step 40; results/s24_d192_rows_ab_h100.md): causal persistent +
//   dynamic with desc_base below 4k keys, one CTA per tile with desc_base from 4k (the persistent one 0.95 at 16k):
//   +15-18% at 512-1k, +9% at 2k, +2-6% from 4k over the old row (confirming A/B, bf16 + fp16); the persistent row's
//   kernels spill 8 B (28 B the split one). Non-causal unchanged: desc_base
//   +0.5-5% at 512-4k but 0.96 at 16k, one CTA per tile 0.87-0.95, O through the Q slot 0.88-0.98, dense 0.96-0.99
//   from 2k, uniform inside the noise.
// - stagger (session 25, H100, bench/NOTES.md step 42; results/s25_short_ab_h100.md): d64 non-causal row 0 +1.6 / +2.1%
//   at 512 / 1k; d64 causal 0.95-0.96, d128 0.96-0.98 causal and non-causal (off there).
// - spec (session 26, H100, bench/NOTES.md step 43; results/s26_spec_ab_h100.md): against the same tree without it,
//   d64 / d96 / d128 +3-11% from 2k (d128 non-causal 16k 725-743 TF bf16), +0-4% at 1k, -1..-1.5% at 512; d64 causal
//   3-consumer row -2% at 2k, +6-11% from 4k. Off: the d64 causal short row (-6% at 1k), MLA 192 / 128 (non-causal
//   -2..-8%, causal -1..+5%, both calls), d192 and d256 (new spills: 20-80 B and 8-124 B). A tile's last block on the
//   full softmax (its K / Q released early) was worse at 512-1k (-3%) and no better elsewhere.
//   Sessions 27-28 (step 44: spec 2, rows rescued from their exponentials, no recompute but on overflow; H100 A/Bs
//   against spec 1, results/s28_rescue_ab_h100.md): d64 causal 3-consumer row +2-6% at 2k-8k (its tiles' top rows
//   see their first key in the second block, so spec 1 recomputed there); d128 0.95-1.0 (the larger branch), d256
//   (rescue only; spec 1 spills) short rows -2..-3%, causal long row -3..-6%, non-causal long row +1-3% in session 27
//   and 0.93-1.00 in session 28: spec 2 on the d64 causal 3-consumer row only.
// - Row boundaries re-measured (session 35, H100, one-process A/Bs of tuning rows, 5 rounds; bench/NOTES.md step 54):
//   d64 non-causal 3-consumer row against the 2-consumer one 0.94 / 0.98-1.00 / 1.11 / 1.10-1.13 at 512 / 1k / 1536 /
//   2k (the 192-row tiles divide 1536 and 3072 exactly) -> from 1536 keys (was 2048); d256 non-causal block_n 80 row
//   against the block_n 128 short row 1.00-1.01 / 1.00-1.01 / 1.01-1.04 / 1.03-1.04 at 1k / 1536 / 2k / 3k -> from
//   2048 keys (was 4096). The d256 causal long row (one CTA per tile) 0.87-0.95 below 2k, 1.00-1.01 at 3k: unchanged.
//   spec 1 on the d256 non-causal long row: 0.99-1.02 at 4k-16k (its softcap kernel spills 4 B): off.
// - d64 rows again (session 36, H100, the same kind of A/B, 5-6 rounds; bench/NOTES.md step 55): non-causal 3-consumer
//   row against the 2-consumer one 0.98-1.01 / 1.09-1.12 / 1.06-1.09 / 1.06-1.07 / 1.06-1.08 at 1024 / 1088 / 1152 /
//   1216 / 1280 keys -> from 1025 (was 1536). The non-causal 2-consumer row (now below 1025 keys) with 3 K/V stages
//   +2-3 / +1-2 / +3-4 / +0-1% at 512 / 640 / 768 / 896, 0.98-1.00 at 1024: 3 stages (the first row whose ring depth
//   does not divide a tile's key blocks; check_fwd's "persistent 2-consumer d64" wraps it inside and across tiles).
//   Causal: the 3-consumer row 0.89-0.96 below 2048 (boundary unchanged; its tuning copy ran spec 1, NOTES step 55);
//   the 2-consumer row with 3 stages 0.99 / 1.01 / 1.01-1.03 at 512 / 1k / 1536, 4 stages 0.98 / 1.00-1.01 /
//   1.01-1.02: 2 stages kept (causal 512 is the cell furthest below cuDNN).
// - Session 37 (H100, bench/NOTES.md step 56): the 3-stage non-causal row confirmed against the 2-stage one, +2-4%
//   at 512-768, 1.00 at 896-2048 (d64 non-causal 512 0.99 -> 1.04-1.05x cuDNN). Causal: the 3-consumer row with spec 2
//   from a faithful copy 1.00-1.04 of the 2-consumer row at 1536-1792 (boundary kept at 2048); on the 2-consumer row
//   spec 1 / spec 2 0.95-0.97 / 0.92-0.95 at 512-1536, ping-pong off 1.00: unchanged.
constexpr Sm90Tile kSm90Tiles[] = {
    //  d  dv  mask cons  bn  st  overlap pingpong persist dynamic regs     desc_base q_slots persist_max_n tma_o min_sk softcap dense uniform pair_o stagger spec
    {64, 64, 0, 2, 128, 3, true, true, true, false, 24, 240, true, 2, 0, 1, 0, true, true, false, false, true, 1},
    {64, 64, 0, 3, 128, 2, true, false, true, false, 32, 160, true, 2, 0, 0, 1025, true, true, false, false, false, 1},
    {64, 64, 1, 2, 128, 2, true, true, true, true, 24, 240, true, 2, 0, 1, 0, true, true, true, false, false, 0},
    {64, 64, 1, 3, 128, 2, true, false, true, true, 32, 160, true, 2, 0, 0, 2048, true, false, true, false, false, 2},
    {96, 96, 0, 2, 128, 2, true, true, true, false, 24, 240, true, 2, 0, 1, 0, true, true, true, false, false, 1},
    {96, 96, 1, 2, 128, 2, true, true, true, true, 24, 240, true, 2, 32, 1, 0, true, true, true, false, false, 1},
    {128, 128, 0, 2, 128, 2, true, true, true, false, 24, 240, true, 2, 0, 1, 0, true, true, true, false, false, 1},
    {128, 128, 1, 2, 128, 2, true, true, true, true, 24, 240, true, 2, 32, 1, 0, true, true, true, false, false, 1},
    {192, 192, 0, 2, 112, 2, true, false, true, false, 24, 240, false, 1, 0, 0, 0, true, false, false, true, false, 0},
    {192, 192, 1, 2, 112, 2, true, false, true, true, 24, 240, true, 1, 0, 0, 0, true, false, false, true, false, 0},
    {192, 192, 1, 2, 112, 2, true, false, false, false, 24, 240, true, 1, 0, 0, 4096, true, false, false, true, false, 0},
    {192, 128, 0, 2, 128, 2, true, false, true, false, 24, 240, true, 1, 0, 2, 0, true, false, false, false, false, 0},
    {192, 128, 1, 2, 128, 2, true, true, true, true, 24, 240, true, 1, 0, 2, 0, true, false, true, false, false, 0},
    {192, 128, 1, 2, 128, 2, true, true, false, false, 24, 240, true, 1, 0, 1, 2048, true, false, true, false, false, 0},
    {256, 256, 0, 2, 128, 1, false, true, true, false, 24, 240, true, 1, 0, 2, 0, false, false, false, false, false, 0},
    {256, 256, 0, 2, 80, 2, true, false, true, false, 24, 240, true, 1, 0, 0, 2048, true, false, false, true, false, 0},
    {256, 256, 1, 2, 128, 1, false, true, true, true, 24, 240, true, 1, 0, 2, 0, false, false, false, false, false, 0},
    {256, 256, 1, 2, 80, 2, true, false, false, false, 24, 240, true, 1, 0, 0, 4096, true, false, false, true, false, 0},
};

// Row `alt` (0 or 1) of (d, dv, mask); d = 0 when there is none.
constexpr Sm90Tile sm90_tile(int d, int dv, bool masked, int alt = 0) {
#ifdef FLASH_SM90_TUNE_D
#ifndef FLASH_SM90_TUNE_DV
#define FLASH_SM90_TUNE_DV FLASH_SM90_TUNE_D
#endif
#ifndef FLASH_SM90_TUNE_DB
#define FLASH_SM90_TUNE_DB 0
#endif
#ifndef FLASH_SM90_TUNE_QS
#define FLASH_SM90_TUNE_QS 1
#endif
#ifndef FLASH_SM90_TUNE_PMN
#define FLASH_SM90_TUNE_PMN 0
#endif
#ifndef FLASH_SM90_TUNE_TO
#define FLASH_SM90_TUNE_TO 0
#endif
#ifndef FLASH_SM90_TUNE_UN
#define FLASH_SM90_TUNE_UN 0
#endif
#ifndef FLASH_SM90_TUNE_PO
#define FLASH_SM90_TUNE_PO 0
#endif
#ifndef FLASH_SM90_TUNE_DE
#define FLASH_SM90_TUNE_DE 0
#endif
#ifndef FLASH_SM90_TUNE_SG
#define FLASH_SM90_TUNE_SG 0
#endif
#ifndef FLASH_SM90_TUNE_SP
#define FLASH_SM90_TUNE_SP 0
#endif
    // Tuning builds only (scripts/ab_tune.sh): one instantiation's rows replaced from the command line.
    if (d == FLASH_SM90_TUNE_D && dv == FLASH_SM90_TUNE_DV)
        return Sm90Tile{FLASH_SM90_TUNE_D, FLASH_SM90_TUNE_DV, masked ? 1 : 0, FLASH_SM90_TUNE_CONS, FLASH_SM90_TUNE_BN,
                        FLASH_SM90_TUNE_ST, FLASH_SM90_TUNE_OV != 0, FLASH_SM90_TUNE_PP != 0,
                        FLASH_SM90_TUNE_PS != 0, FLASH_SM90_TUNE_DY != 0, FLASH_SM90_TUNE_RP, FLASH_SM90_TUNE_RC,
                        FLASH_SM90_TUNE_DB != 0, FLASH_SM90_TUNE_QS, FLASH_SM90_TUNE_PMN,
                        FLASH_SM90_TUNE_TO, alt == 0 ? 0 : 1 << 30, true, FLASH_SM90_TUNE_DE != 0, FLASH_SM90_TUNE_UN != 0,
                        FLASH_SM90_TUNE_PO != 0, FLASH_SM90_TUNE_SG != 0, FLASH_SM90_TUNE_SP};
#endif
    for (const Sm90Tile& t : kSm90Tiles)
        if (t.d == d && t.dv == dv && t.masked == (masked ? 1 : 0) && alt-- == 0) return t;
    return Sm90Tile{0, 0, 0, 0, 0, 0, false, false, false, false, 0, 0, false, 1, 0, 0, 0, false, false, false, false, false,
                    false};
}

// Rows of (d, dv, mask): 1 or 2.
constexpr int sm90_alts(int d, int dv, bool masked) {
    return sm90_tile(d, dv, masked, 1).d == d ? 2 : 1;
}

// The row a problem with seqlen_k keys runs on.
constexpr int sm90_pick(int d, int dv, bool masked, int64_t seqlen_k, bool softcap) {
    if (sm90_alts(d, dv, masked) == 1) return 0;
    const int by_length = seqlen_k >= sm90_tile(d, dv, masked, 1).min_sk ? 1 : 0;
    return softcap && !sm90_tile(d, dv, masked, by_length).softcap ? 1 - by_length : by_length;
}

// Every (d, dv, mask) triple has a row that takes softcap problems.
constexpr bool sm90_softcap_covered() {
    for (const Sm90Tile& t : kSm90Tiles)
        if (!sm90_tile(t.d, t.dv, t.masked != 0, 0).softcap && !sm90_tile(t.d, t.dv, t.masked != 0, 1).softcap)
            return false;
    return true;
}

// The kernel's barrier block: mbarriers + the tile ring (at +512), padded so the tiles after it stay 1024-aligned.
inline constexpr int kSm90BarBytes = 1024;

// Columns a row of Q / K / V occupies in shared memory: whole 128-byte swizzle blocks of 64 (d96: 128, the last
// block half zeros from TMA's out-of-bounds fill, which the GEMMs never read).
constexpr int sm90_dpad(int d) { return (d + 63) / 64 * 64; }

// The kernel's shared memory for a row (fwd_sm90_kernel.cuh's layout: 1 KB of alignment slack, the barrier block,
// q_slots Q tiles of block_m x sm90_dpad(d), a ring of `stages` K tiles of block_n x sm90_dpad(d) and as many V
// tiles of block_n x sm90_dpad(dv), and with tma_o 2 an O buffer of 64 x sm90_dpad(dv); 16-bit elements).
constexpr int sm90_smem_bytes(const Sm90Tile& t) {
    const int dp = sm90_dpad(t.d), dvp = sm90_dpad(t.dv);
    return 1024 + kSm90BarBytes + t.q_slots * 64 * t.consumers * dp * 2 + t.stages * t.block_n * (dp + dvp) * 2 +
           (t.tma_o == 2 ? 64 * dvp * 2 : 0);
}

// Registers per thread at launch: 65536 / threads, rounded down to a multiple of 8 (setmaxnreg then moves them
// between the warpgroups; an increase beyond what the decreases freed never returns).
constexpr int sm90_launch_regs(const Sm90Tile& t) { return (65536 / (128 * (t.consumers + 1))) / 8 * 8; }

// Why a row cannot be compiled, or nullptr. The kernel asserts it per instantiation (tuning rows included);
// the table is asserted below, so the host build (and CI's host test, test/native/tile_table.cpp) catch a bad
// edit without compiling for sm_90a.
constexpr const char* sm90_tile_error(const Sm90Tile& t) {
    if (t.d % 32 != 0 || t.d > 256 || t.dv % 32 != 0 || t.dv < 32 || t.dv > t.d || t.block_n % 16 != 0 || t.block_n > 256 || t.consumers < 1 || 64 * t.consumers > 256)
        return "tile shape";
    if ((t.block_n * 128) % 1024 != 0) return "block_n must keep column blocks 1024-byte aligned";
    if (t.stages < 1 || sm90_smem_bytes(t) > 227 * 1024) return "shared memory";
    if (t.q_slots != 1 && !(t.q_slots == 2 && t.persistent)) return "a second Q slot serves persistent CTAs only";
    if (t.tma_o < 0 || t.tma_o > 2) return "tma_o is 0, 1 or 2";
    if (t.spec < 0 || t.spec > 2) return "spec is 0, 1 or 2";
    // The warpgroups take the O buffer in turn, waiting on one mbarrier's parity: exact only while a warpgroup's own
    // previous release has landed before its next wait, i.e. with at most one other user between (2 consumers).
    if (t.tma_o == 2 && t.consumers > 2) return "the O buffer's turn-taking serves at most two consumer warpgroups";
    if (t.tma_o == 1 && t.persistent && t.q_slots != 2)
        return "a persistent CTA staging O in its Q slot needs the second slot for the next tile's Q";
    if (t.reg_producer + t.consumers * t.reg_consumer > (t.consumers + 1) * sm90_launch_regs(t))
        return "setmaxnreg budget exceeds the launch allocation";
    if (t.pingpong && t.consumers != 2) return "ping-pong needs two consumer warpgroups";
    if (t.stagger && !(t.pingpong && t.overlap)) return "stagger shifts the ping-pong turns of the overlapped key loop";
    return nullptr;
}

// The table as a whole: every row valid; per (d, dv, mask) one or two rows, the first from 0 keys and the second
// from a positive min_sk (sm90_pick's assumption); a softcap row per triple (sm90_softcap_covered).
constexpr const char* sm90_table_error() {
    for (const Sm90Tile& t : kSm90Tiles) {
        if (const char* e = sm90_tile_error(t)) return e;
        int rows = 0;
        for (const Sm90Tile& u : kSm90Tiles) rows += u.d == t.d && u.dv == t.dv && u.masked == t.masked;
        if (rows > 2) return "more than two rows for a (d, dv, mask) triple";
        if (sm90_tile(t.d, t.dv, t.masked != 0, 0).min_sk != 0) return "a triple's first row must start at 0 keys";
        if (rows == 2 && sm90_tile(t.d, t.dv, t.masked != 0, 1).min_sk <= 0)
            return "a triple's second row needs min_sk > 0";
    }
    return sm90_softcap_covered() ? nullptr : "a (d, dv, mask) triple has no row with softcap = true";
}
static_assert(sm90_table_error() == nullptr, "kSm90Tiles: a row breaks a rule of sm90_table_error");

// The Hopper instantiation for max(d, dv): 64, 96, 128, 192 or 256 (head dims <= 32 stay on the sm80 kernel,
// whose d32 tile wastes no MMA work). A build without that one runs on the next compiled one (fwd_sm90.cu).
// Its V/O width is the same, except for sm90_dim_v's narrow-V instantiation.
constexpr int sm90_dim(int d_max) {
    return d_max <= 32    ? 0
           : d_max <= 64  ? 64
           : d_max <= 96  ? 96
           : d_max <= 128 ? 128
           : d_max <= 192 ? 192
           : d_max <= 256 ? 256
                          : 0;
}

// The V/O width of the instantiation `dim` for a call with V/O head dim dv: 128 for dim 192 when dv <= 128 (MLA's
// prefill shape, d 192 with dv 128: a third less P V work and O registers than V zero-padded to 192), else dim. A
// build without 128 sends d, dv <= 128 up to 192 and so to this instantiation too (fwd_sm90.cu covered_dim).
constexpr int sm90_dim_v(int dim, int dv) { return dim == 192 && dv <= 128 ? 128 : dim; }

} // namespace flash::cuda::sm90
