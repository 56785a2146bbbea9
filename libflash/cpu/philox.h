// Philox-4x32-10 and the dropout keep rule of include/flash.h ("Dropout mask"), host-only plain C++ so the
// CUDA backend can mirror it line for line. The mask is a pure function of (seed, offset, batch, head, row,
// col): no tile size, thread count or split count enters it.
#pragma once

#include <cstdint>

namespace flash::cpu {

struct Philox4 {
    uint32_t x[4];
};

inline Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = uint64_t(M0) * c0, p1 = uint64_t(M1) * c2;
        const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
        const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        if (round < 9) {
            k0 += W0;
            k1 += W1;
        }
    }
    return Philox4{{c0, c1, c2, c3}};
}

// The 8 keep decisions of the key columns [8*(c>>3), 8*(c>>3)+8) of one (batch, head, row): bit t set = kept.
// One Philox call serves the whole group of 8, which is why callers walk columns in groups of 8.
inline uint32_t dropout_keep8(uint64_t seed, uint64_t offset, uint32_t batch, uint32_t nheads, uint32_t head,
                              uint32_t row, uint32_t col_group, uint32_t threshold16) {
    const uint64_t n = offset + uint64_t(batch) * nheads + head;
    const Philox4 r = philox4x32_10(col_group, row, uint32_t(n), uint32_t(n >> 32), uint32_t(seed),
                                    uint32_t(seed >> 32));
    uint32_t keep = 0;
    for (int t = 0; t < 8; ++t) {
        const uint32_t u16 = (r.x[t >> 1] >> (16 * (t & 1))) & 0xFFFFu;
        if (u16 >= threshold16) keep |= 1u << t;
    }
    return keep;
}

} // namespace flash::cpu
