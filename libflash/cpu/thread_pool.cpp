#include "thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace flash::cpu {
namespace {

class Pool {
public:
    explicit Pool(int n) : n_(n) {
        for (int i = 1; i < n_; ++i) std::thread([this, i] { loop(i); }).detach();
    }
    int size() const { return n_; }

    void run(int64_t n, TaskFn fn, void* ctx) {
        std::unique_lock<std::mutex> busy(job_, std::try_to_lock);
        if (!busy.owns_lock() || n_ == 1 || n <= 1) {
            for (int64_t t = 0; t < n; ++t) fn(ctx, t, 0);
            return;
        }
        {
            std::lock_guard<std::mutex> g(m_);
            fn_ = fn;
            ctx_ = ctx;
            total_ = n;
            next_.store(0, std::memory_order_relaxed);
            active_ = n_ - 1;
            ++generation_;
        }
        cv_.notify_all();
        work(0);
        std::unique_lock<std::mutex> g(m_);
        done_cv_.wait(g, [this] { return active_ == 0; });
    }

private:
    void work(int thread) {
        for (;;) {
            const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
            if (t >= total_) break;
            fn_(ctx_, t, thread);
        }
    }
    void loop(int thread) {
        uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> g(m_);
                cv_.wait(g, [&] { return generation_ != seen; });
                seen = generation_;
            }
            work(thread);
            std::lock_guard<std::mutex> g(m_);
            if (--active_ == 0) done_cv_.notify_one();
        }
    }

    const int n_;
    std::mutex job_; // one job at a time
    std::mutex m_;
    std::condition_variable cv_, done_cv_;
    uint64_t generation_ = 0;
    int active_ = 0;
    TaskFn fn_ = nullptr;
    void* ctx_ = nullptr;
    int64_t total_ = 0;
    std::atomic<int64_t> next_{0};
};

int configured_threads() {
    int hw = int(std::thread::hardware_concurrency());
    if (hw < 1) hw = 1;
    if (const char* env = std::getenv("FLASH_NUM_THREADS")) {
        const int want = std::atoi(env);
        if (want >= 1 && want < hw) return want;
    }
    return hw;
}

// Never destroyed: workers may still be parked on its condition variable while the process exits.
Pool& pool() {
    static Pool* p = new Pool(configured_threads());
    return *p;
}

} // namespace

int num_threads() { return pool().size(); }

void parallel_for(int64_t n, TaskFn fn, void* ctx) { pool().run(n, fn, ctx); }

} // namespace flash::cpu
