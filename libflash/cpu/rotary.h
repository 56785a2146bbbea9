// Rotary embedding for the KV cache (q and knew), in fp32, rounded back to the storage type afterwards
// because the GPU kernels rotate on the way into shared memory / the cache, which holds that type.
#pragma once

#include <cstdint>

#include "../api/problem.h"

namespace flash::cpu {

// x[0..d) at absolute position pos. Interleaved pairs (2j, 2j+1); GPT-NeoX pairs (j, j + rotary_dim/2);
// dims >= rotary_dim pass through.
template <class D>
void apply_rotary(const FwdProblem& p, float* x, int64_t pos) {
    using T = typename D::T;
    const int half = p.rotary_dim / 2;
    const T* cs = static_cast<const T*>(p.rotary_cos) + pos * half;
    const T* sn = static_cast<const T*>(p.rotary_sin) + pos * half;
    for (int j = 0; j < half; ++j) {
        const int i0 = p.rotary_interleaved ? 2 * j : j;
        const int i1 = p.rotary_interleaved ? 2 * j + 1 : j + half;
        const float c = D::load(cs[j]), s = D::load(sn[j]);
        const float x0 = x[i0], x1 = x[i1];
        x[i0] = D::load(D::store(x0 * c - x1 * s));
        x[i1] = D::load(D::store(x0 * s + x1 * c));
    }
}

} // namespace flash::cpu
