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
// H100 one-process A/B, causal, session 39 (bench/NOTES.md step 57): 8 MB sections +9% / +6% at d64 512 / 1k and
// +14% at d128 512, but -6..-9% at d256 512-2k, where 8 MB is 16 pairs = 64 tiles; 32 MB was best at d256 and 2k.
// Shipped since session 40 (step 58) on the Hopper path: 8 MB grown to 2 waves, capped at 32, equal sections, the
// small ones only up to 1536 keys: +9% / +7% at d64 causal 512 / 1k, +12% / +6% at d128, d256 and 2k up unchanged.
// The mma.sync path keeps the 32 MB sections (rule = false): the rule cost it 1-2% at d64 causal 512-1k there.
// The -D overrides: tuning builds only (scripts/ab_tune.sh).
#ifndef FLASH_L2_SECTION_MB
#define FLASH_L2_SECTION_MB 8
#endif
#ifndef FLASH_L2_SECTION_WAVES
#define FLASH_L2_SECTION_WAVES 2
#endif
#ifndef FLASH_L2_SECTION_MAX_MB
#define FLASH_L2_SECTION_MAX_MB 32
#endif
// 1: sections of equal size (the same count, the pairs spread evenly), so the grid does not end on a short section
// whose heavy tiles start late (tile_order_model.py: d128 causal 2k 0.933 -> 0.970 of the ideal with the rule's
// 17-pair sections, 512 0.970 -> 0.987).
#ifndef FLASH_L2_SECTION_EQUAL
#define FLASH_L2_SECTION_EQUAL 1
#endif
// > 0: the small sections (FLASH_L2_SECTION_MB, the wave floor) only up to this many keys, FLASH_L2_SECTION_MAX_MB
// sections above it (smaller sections gained nothing at 2k in session 39; the model says they cost balance from 2k).
#ifndef FLASH_L2_SECTION_SHORT_SK
#define FLASH_L2_SECTION_SHORT_SK 1536
#endif
// rule = false: FLASH_L2_SECTION_MAX_MB sections, the last one shorter, no wave floor (the mma.sync path's order).
inline int64_t l2_section_pairs(int64_t pairs, int64_t seqlen_k, int d, int dv, int kv_share, int64_t m_blocks,
                                int64_t slots, bool rule) {
    const int64_t kv_bytes = std::max<int64_t>(1, seqlen_k * (d + dv) * 2 / std::max(1, kv_share));
    const bool short_k = rule && (FLASH_L2_SECTION_SHORT_SK <= 0 || seqlen_k <= FLASH_L2_SECTION_SHORT_SK);
    const int64_t by_bytes = (int64_t(short_k ? FLASH_L2_SECTION_MB : FLASH_L2_SECTION_MAX_MB) << 20) / kv_bytes;
    const int64_t mb = std::max<int64_t>(1, m_blocks);
    const int64_t waves = short_k ? FLASH_L2_SECTION_WAVES : 0;
    const int64_t by_waves = (waves * std::max<int64_t>(0, slots) + mb - 1) / mb;
    const int64_t cap = (int64_t(FLASH_L2_SECTION_MAX_MB) << 20) / kv_bytes;
    const int64_t all = std::max<int64_t>(1, pairs);
    const int64_t sec = std::clamp<int64_t>(std::min(std::max(by_bytes, by_waves), cap), 1, all);
    if (!rule || !FLASH_L2_SECTION_EQUAL) return sec;
    const int64_t n = (all + sec - 1) / sec;
    return (all + n - 1) / n;
}

} // namespace flash::cuda
