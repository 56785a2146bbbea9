// The order masked (causal / local) forward tiles are numbered in, shared by the sm80 and Hopper kernels.
// Tiles of a causal problem differ in length (an m block's key range grows with its rows). Numbered m block
// fastest, every head's heaviest tile sits within a head's worth of tiles of the lightest, so the grid's last
// tiles include heavy ones and SMs idle at the end (2-12% in a list-scheduling model at 1k-8k, most at d256).
// FA3's scheduler order instead: L2 sections of (batch, head) pairs whose K/V fit in L2 together, m block
// slowest inside a section (heaviest first), the pair fastest -- the grid ends on the lightest tiles.
#pragma once

#include <algorithm>
#include <cstdint>

namespace flash::cuda {

// (batch, head) pairs per L2 section. kv_share: query heads sharing one K/V head among adjacent pairs (the GQA
// group when heads are not packed, else 1). m_blocks: tiles per pair; slots: CTAs the GPU runs at once.
// A section's tiles all run within about one wave, so a K/V head is read from DRAM once while its m blocks share it
// in L2: FLASH_L2_SECTION_MB of K/V (8: a third of one 25 MB half of the L2; FA3 uses 32). But a section of fewer
// than FLASH_L2_SECTION_WAVES waves of tiles ends on heavy tiles, which the heaviest-first order exists to avoid, so
// the section grows to that many waves, up to FLASH_L2_SECTION_MAX_MB of K/V (beyond it K/V re-reads come back).
// H100 one-process A/B, causal, session 39 (bench/NOTES.md): 8 MB sections +9% / +6% at d64 512 / 1k and +14% at
// d128 512, but -6..-9% at d256 512-2k, where 8 MB is 16 pairs = 64 tiles; 32 MB was best at d256 and 2k.
// The -D overrides: tuning builds only (scripts/ab_tune.sh). Shipped: 32 / 0 / 32, the order before session 39, until
// the rule's A/B over the whole causal grid and the GPU checks have run; 8 / 2 / 32 is the rule (NOTES step 57).
#ifndef FLASH_L2_SECTION_MB
#define FLASH_L2_SECTION_MB 32
#endif
#ifndef FLASH_L2_SECTION_WAVES
#define FLASH_L2_SECTION_WAVES 0
#endif
#ifndef FLASH_L2_SECTION_MAX_MB
#define FLASH_L2_SECTION_MAX_MB 32
#endif
// 1: sections of equal size (the same count, the pairs spread evenly), so the grid does not end on a short section
// whose heavy tiles start late (tile_order_model.py: d128 causal 2k 0.933 -> 0.970 of the ideal with the rule's
// 17-pair sections, 512 0.970 -> 0.987). A tuning macro until measured (NOTES step 57).
#ifndef FLASH_L2_SECTION_EQUAL
#define FLASH_L2_SECTION_EQUAL 0
#endif
// > 0: the small sections (FLASH_L2_SECTION_MB, the wave floor) only up to this many keys, FLASH_L2_SECTION_MAX_MB
// sections above it (measured: smaller sections gained nothing at 2k; the model says they cost balance from 2k up).
#ifndef FLASH_L2_SECTION_SHORT_SK
#define FLASH_L2_SECTION_SHORT_SK 0
#endif
inline int64_t l2_section_pairs(int64_t pairs, int64_t seqlen_k, int d, int dv, int kv_share, int64_t m_blocks,
                                int64_t slots) {
    const int64_t kv_bytes = std::max<int64_t>(1, seqlen_k * (d + dv) * 2 / std::max(1, kv_share));
    const bool short_k = FLASH_L2_SECTION_SHORT_SK <= 0 || seqlen_k <= FLASH_L2_SECTION_SHORT_SK;
    const int64_t by_bytes = (int64_t(short_k ? FLASH_L2_SECTION_MB : FLASH_L2_SECTION_MAX_MB) << 20) / kv_bytes;
    const int64_t mb = std::max<int64_t>(1, m_blocks);
    const int64_t waves = short_k ? FLASH_L2_SECTION_WAVES : 0;
    const int64_t by_waves = (waves * std::max<int64_t>(0, slots) + mb - 1) / mb;
    const int64_t cap = (int64_t(FLASH_L2_SECTION_MAX_MB) << 20) / kv_bytes;
    const int64_t all = std::max<int64_t>(1, pairs);
    const int64_t sec = std::clamp<int64_t>(std::min(std::max(by_bytes, by_waves), cap), 1, all);
    if (!FLASH_L2_SECTION_EQUAL) return sec;
    const int64_t n = (all + sec - 1) / sec;
    return (all + n - 1) / n;
}

} // namespace flash::cuda
