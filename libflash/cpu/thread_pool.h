// A persistent worker pool, created lazily on first use and kept for the life of the process.
// Work is a flat range of independent tasks; each task's result must depend only on its index (never on
// which thread ran it), which is what makes every CPU entry point bitwise identical for any thread count.
#pragma once

#include <cstdint>

namespace flash::cpu {

using TaskFn = void (*)(void* ctx, int64_t task, int thread);

// Threads the pool runs with (the caller counts as thread 0): min(FLASH_NUM_THREADS, hardware threads),
// fixed at first use. Per-thread scratch is sized by this.
int num_threads();

// Runs fn(ctx, t, thread) for t in [0, n) and returns when all are done. thread < num_threads().
// If the pool is busy with another caller's job, the tasks run on the calling thread alone.
void parallel_for(int64_t n, TaskFn fn, void* ctx);

// Convenience for lambdas: parallel_for(n, [&](int64_t t, int thread) { ... }).
template <class F>
void parallel_for(int64_t n, F&& f) {
    parallel_for(
        n, [](void* c, int64_t t, int th) { (*static_cast<F*>(c))(t, th); },
        const_cast<void*>(static_cast<const void*>(&f)));
}

} // namespace flash::cpu
