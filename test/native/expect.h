// The host drivers' check counter (test/native/*.cpp): EXPECT counts a check and prints the first 20 failures;
// finish() prints "ok <checks>" (what test/native_host.test.ts matches) or the failure count, and is main's status.
#pragma once

#include <cstdio>

namespace native_test {
inline long checks = 0, failures = 0;

inline int finish() {
    if (failures) {
        std::printf("%ld of %ld checks failed\n", failures, checks);
        return 1;
    }
    std::printf("ok %ld\n", checks);
    return 0;
}
} // namespace native_test

#define EXPECT(cond, ...)                                                                                        \
    do {                                                                                                         \
        ++native_test::checks;                                                                                   \
        if (!(cond)) {                                                                                           \
            if (++native_test::failures <= 20) std::printf(__VA_ARGS__);                                         \
        }                                                                                                        \
    } while (0)
