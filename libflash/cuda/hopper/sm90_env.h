// Environment switches shared by the Hopper forward and backward dispatchers.
#pragma once

#include <cstdlib>
#include <cstring>

namespace flash::cuda::sm90 {

// FLASH_SM90=0 keeps every forward and backward on the mma.sync kernels (A/B comparisons, bisecting). Read once.
inline bool disabled_by_env() {
    static const bool off = [] {
        const char* e = std::getenv("FLASH_SM90");
        return e && std::strcmp(e, "0") == 0;
    }();
    return off;
}

} // namespace flash::cuda::sm90
