// FA2's num_splits_heuristic (flash_api.cpp), shared by the sm80 and Hopper forward paths: the fewest splits
// whose wave efficiency is within 85% of the best, and none at all once the grid of `tiles` work tiles
// already fills 80% of the `slots` CTAs that run at once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace flash::cuda {

inline int num_splits_heuristic(int64_t tiles, int slots, int n_blocks, int max_splits) {
    if (tiles >= int64_t(0.8 * slots)) return 1;
    max_splits = std::min({max_splits, slots, n_blocks, 256});
    if (max_splits <= 1) return 1;
    float eff[257] = {};
    float max_eff = 0.f;
    auto ceil_div64 = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
    // A split count that leaves the blocks per split unchanged from the one before adds nothing.
    auto eligible = [&](int s) { return s == 1 || ceil_div64(n_blocks, s) != ceil_div64(n_blocks, s - 1); };
    for (int s = 1; s <= max_splits; ++s) {
        if (!eligible(s)) continue;
        const float waves = float(tiles * s) / float(slots);
        eff[s] = waves / std::ceil(waves);
        max_eff = std::max(max_eff, eff[s]);
    }
    for (int s = 1; s <= max_splits; ++s)
        if (eligible(s) && eff[s] >= 0.85f * max_eff) return s;
    return 1;
}

} // namespace flash::cuda
