// Host checks of the index arithmetic the CUDA kernels share with the host (built and run by
// test/native_host.test.ts with the host C++ compiler: no GPU, no CUDA toolkit). Prints one line per failure and
// "ok <checks>" at the end; exits 1 on any failure.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "cuda/fastdiv.h"
#include "cuda/tile_order.h"
#include "expect.h"

using flash::cuda::FastDiv;

// FastDiv's claim: exact for every 0 <= n < 2^31 and 1 <= d < 2^31.
static void fastdiv() {
    std::mt19937_64 rng(7);
    std::vector<uint32_t> ds;
    for (uint32_t d = 1; d <= 4096; ++d) ds.push_back(d);
    for (int k = 12; k <= 30; ++k)
        for (int64_t e = -3; e <= 3; ++e) ds.push_back(uint32_t((int64_t(1) << k) + e));
    ds.push_back(0x7fffffffu);
    for (int i = 0; i < 2000; ++i) ds.push_back(1u + uint32_t(rng() % 0x7ffffffeu));
    for (uint32_t d : ds) {
        const FastDiv f(d);
        std::vector<uint32_t> ns = {0u, 1u, d - 1u, d, d + 1u, 2u * d - 1u, 2u * d, 0x7ffffffeu, 0x7fffffffu};
        for (uint32_t m = 1; m < 64; ++m) ns.push_back(uint32_t((uint64_t(0x7fffffffu) / d) * d - m % d));
        for (int i = 0; i < 64; ++i) ns.push_back(uint32_t(rng() % 0x80000000u));
        for (uint32_t n : ns) {
            if (n > 0x7fffffffu) continue;
            EXPECT(f.div(n) == n / d, "FastDiv(%u).div(%u) = %u, want %u\n", d, n, f.div(n), n / d);
        }
    }
}

// l2_section_pairs: at least one pair and at most all of them; a section of several pairs holds at most the cap's K/V
// (FLASH_L2_SECTION_MAX_MB); it stops growing only once it holds FLASH_L2_SECTION_MB of K/V and FLASH_L2_SECTION_WAVES
// waves of tiles (or the cap, or every pair), and grows no further than the larger of the two needs. With
// FLASH_L2_SECTION_EQUAL the sections are instead of near-equal size: the last one is short by fewer pairs than
// there are sections; with FLASH_L2_SECTION_SHORT_SK, longer keys get the cap's sections (test/native_host.test.ts
// builds this file with the rule's macros in each form). rule = false ignores all but the cap.
static void sections() {
    const int64_t cap = int64_t(FLASH_L2_SECTION_MAX_MB) << 20;
    for (int64_t pairs : {1, 2, 7, 16, 64, 100000})
        for (int64_t sk : {1, 64, 1000, 16384, 131072, 1 << 22})
            for (int d : {32, 64, 128, 256})
                for (int share : {1, 4, 8})
                    for (int64_t mb : {1, 4, 11, 128})
                        for (int64_t slots : {0, 78, 132, 264}) {
                            const int64_t s = flash::cuda::l2_section_pairs(pairs, sk, d, d, share, mb, slots, true);
                            const int64_t kv = std::max<int64_t>(1, sk * (2 * d) * 2 / share);
                            // rule = false (the mma.sync path): the cap's sections, whatever the rule's macros say
                            const int64_t fixed =
                                flash::cuda::l2_section_pairs(pairs, sk, d, d, share, mb, slots, false);
                            EXPECT(fixed == std::clamp<int64_t>(cap / kv, 1, std::max<int64_t>(1, pairs)),
                                   "sections: rule off, %lld pairs (sk %lld d %d pairs %lld)\n", (long long)fixed,
                                   (long long)sk, d, (long long)pairs);
                            // above FLASH_L2_SECTION_SHORT_SK keys the sections are the cap's, no wave floor
                            const bool short_k = FLASH_L2_SECTION_SHORT_SK <= 0 || sk <= FLASH_L2_SECTION_SHORT_SK;
                            const int64_t small = short_k ? int64_t(FLASH_L2_SECTION_MB) << 20 : cap;
                            const int64_t waves = short_k ? FLASH_L2_SECTION_WAVES : 0;
                            EXPECT(s >= 1 && s <= std::max<int64_t>(1, pairs), "sections: %lld pairs of %lld\n",
                                   (long long)s, (long long)pairs);
                            EXPECT(s == 1 || s * kv <= cap, "sections: %lld pairs x %lld B > the cap\n", (long long)s,
                                   (long long)kv);
                            if (FLASH_L2_SECTION_EQUAL) {
                                const int64_t all = std::max<int64_t>(1, pairs), n = (all + s - 1) / s;
                                const int64_t last = all - (n - 1) * s;
                                EXPECT(last >= 1 && s - last < n, "sections: %lld of %lld pairs, the last %lld\n",
                                       (long long)s, (long long)all, (long long)last);
                                continue;
                            }
                            EXPECT(s == pairs || (s + 1) * kv > cap || ((s + 1) * kv > small && s * mb >= waves * slots),
                                   "sections: %lld pairs stop early (sk %lld d %d mb %lld slots %lld)\n", (long long)s,
                                   (long long)sk, d, (long long)mb, (long long)slots);
                            EXPECT(s == 1 || s * kv <= small || (s - 1) * mb < waves * slots,
                                   "sections: %lld pairs grow past both needs (sk %lld d %d mb %lld slots %lld)\n",
                                   (long long)s, (long long)sk, d, (long long)mb, (long long)slots);
                        }
}

int main() {
    fastdiv();
    sections();
    return native_test::finish();
}
