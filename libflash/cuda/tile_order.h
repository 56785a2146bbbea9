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

// (batch, head) pairs per L2 section: 32 MB of K/V (FA3's figure; the H100/H200 L2 is 50 MB). kv_share: query
// heads sharing one K/V head among adjacent pairs (the GQA group when heads are not packed, else 1).
// FLASH_L2_SECTION_MB: tuning builds only (scripts/ab_tune.sh), the section's K/V budget in MB.
#ifndef FLASH_L2_SECTION_MB
#define FLASH_L2_SECTION_MB 32
#endif
inline int64_t l2_section_pairs(int64_t pairs, int64_t seqlen_k, int d, int dv, int kv_share) {
    const int64_t kv_bytes = std::max<int64_t>(1, seqlen_k * (d + dv) * 2 / std::max(1, kv_share));
    return std::clamp<int64_t>((int64_t(FLASH_L2_SECTION_MB) << 20) / kv_bytes, 1, std::max<int64_t>(1, pairs));
}

} // namespace flash::cuda
