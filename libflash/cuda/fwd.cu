// Host side of the CUDA forward: FwdProblem -> FwdParams, instantiation choice, split-KV heuristic,
// workspace layout, launches. Every rule about which keys a row sees lives in the kernel (fwd_kernel.cuh),
// mirrored from api/seqinfo.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "api/error.h"
#include "cuda_backend.h"
#include "device_info.h"
#include "fwd_config.h"
#include "fwd_launch.h"
#include "hopper/fwd_sm90.h"
#include "split_heuristic.h"
#include "tile_order.h"

#ifndef FLASH_HEAD_DIMS_JSON
#define FLASH_HEAD_DIMS_JSON "[]"
#endif
#ifndef FLASH_CUDA_ARCHS_STR
#define FLASH_CUDA_ARCHS_STR ""
#endif

namespace flash::cuda {

namespace {

// Decode-shaped flash_fwd calls (dense, at most kDecodeRows packed query rows per K/V head, head dims <= 128,
// no dropout) run on the KV-cache decode kernel (kvcache/): its 16-row GQA-packed tiles beat both forward
// kernels' 128-row tiles there (bench/NOTES.md "Hopper forward" step 26). FLASH_FWD_DECODE=0 turns it off
// (A/B comparisons, the forward kernels' own small-query tests). pack_gqa = -1 keeps the forward kernels (the
// decode kernel always packs). seqused_q / seqused_k / leftpad_k take the route too: the decode kernel reads
// them with api/seqinfo.h's rules (keys end at seqused_k, else seqlen_k, when there are no cache_seqlens).
constexpr int64_t kDecodeRows = 32;
bool decode_route(const FwdProblem& p) {
    static const bool off = [] {
        const char* e = std::getenv("FLASH_FWD_DECODE");
        return e && std::strcmp(e, "0") == 0;
    }();
    return !off && p.cu_seqlens_q == nullptr && p.cu_seqlens_k == nullptr && p.dropout.p == 0.f &&
           std::max(p.d, p.dv) <= 128 && int64_t(p.seqlen_q) * p.group <= kDecodeRows &&
           !(p.group > 1 && p.pack_gqa < 0);
}

struct Plan {
    int dim = 0;
    FwdTile tile{};
    sm90::Choice hopper{}; // hopper.dim > 0: the Hopper kernel takes the call
    int m_blocks = 0;
    int num_splits = 1;
    int64_t acc_rows = 0;
    uint64_t ws_bytes = 0;
    uint64_t lse_accum_offset = 0;
    uint64_t counter_offset = 0; // the Hopper dynamic schedule's tile counter, after the partials
    uint64_t tail_offset = 0;    // the Hopper tail split's partials
};

// Everything both fwd_workspace_size and fwd must agree on. Workspace: [o_accum][lse_accum] (split-KV
// partials, either path), the Hopper tile counter (256 bytes, when its row schedules dynamically), then the
// Hopper tail split's partials (sm90::tail_bytes).
int32_t make_plan(const FwdProblem& p, Plan* plan) {
    plan->dim = pick_dim(p.d, p.dv);
    if (plan->dim == 0)
        return set_error(FLASH_ERROR_UNSUPPORTED,
                         "head dims d=%d dv=%d: this build's largest CUDA forward instantiation is smaller "
                         "(compiled head dims %s)",
                         p.d, p.dv, FLASH_HEAD_DIMS_JSON);
    plan->tile = fwd_tile(plan->dim, p.mask.left >= 0 || p.mask.right >= 0);
    const FwdTile& t = plan->tile;
    plan->m_blocks = (p.seqlen_q + t.block_m - 1) / t.block_m;
    if (int32_t st = sm90::choose(p, &plan->hopper); st != FLASH_OK) return st;
    int ns = 1;
    if (plan->hopper.dim > 0) {
        ns = plan->hopper.splits;
    } else {
        const int n_blocks = (p.seqlen_k + t.block_n - 1) / t.block_n;
        if (p.num_splits >= 1) {
            ns = p.num_splits;
        } else if (p.seqlen_q > 0 && n_blocks > 1) {
            DevInfo di;
            if (int32_t st = device_info(p.device_id, &di); st != FLASH_OK) return st;
            const int64_t total = int64_t(p.b) * p.h * plan->m_blocks;
            ns = num_splits_heuristic(total, di.sms * t.ctas_per_sm, n_blocks, 128);
        }
        ns = std::max(1, std::min({ns, std::max(1, n_blocks), 256}));
    }
    plan->num_splits = ns;
    plan->acc_rows = p.cu_seqlens_q ? int64_t(p.total_q) : int64_t(p.b) * p.seqlen_q;
    uint64_t end = 0;
    if (ns > 1) {
        const uint64_t o_bytes = uint64_t(ns) * p.h * plan->acc_rows * plan->dim * sizeof(float);
        plan->lse_accum_offset = (o_bytes + 255) & ~uint64_t(255);
        end = plan->lse_accum_offset + uint64_t(ns) * p.h * plan->acc_rows * sizeof(float);
    }
    if (plan->hopper.dim > 0 && plan->hopper.counter) {
        plan->counter_offset = (end + 255) & ~uint64_t(255);
        end = plan->counter_offset + sm90::kCounterBytes;
    }
    plan->ws_bytes = end;
    if (plan->hopper.dim > 0 && plan->hopper.tail_tiles > 0) {
        plan->tail_offset = (end + 255) & ~uint64_t(255);
        plan->ws_bytes = plan->tail_offset + sm90::tail_bytes(plan->hopper, plan->dim);
    }
    return FLASH_OK;
}

} // namespace

uint64_t fwd_workspace_size(const FwdProblem& p) {
    if (decode_route(p)) return fwd_kvcache_workspace_size(p);
    Plan plan;
    if (make_plan(p, &plan) != FLASH_OK) {
        clear_error();
        return 0;
    }
    return plan.ws_bytes;
}

int32_t fwd(const FwdProblem& p, void* workspace, uint64_t workspace_bytes, void* stream_ptr) {
    if (p.b == 0 || p.seqlen_q == 0 || p.h == 0) return FLASH_OK;
    if (p.dtype != DType::F16 && p.dtype != DType::BF16)
        return set_error(FLASH_ERROR_UNSUPPORTED, "dtype=%d: the CUDA forward supports fp16 and bf16", int(p.dtype));
    if (p.b > 65535 || p.h > 65535)
        return set_error(FLASH_ERROR_UNSUPPORTED, "b=%d h=%d: the CUDA forward grid allows at most 65535 of each",
                         p.b, p.h);
    if (decode_route(p)) {
        const int32_t st = fwd_kvcache(p, workspace, workspace_bytes, stream_ptr);
        if (st == FLASH_OK) set_kernel("cuda.fwd_kvcache");
        return st;
    }
    Plan plan;
    if (int32_t st = make_plan(p, &plan); st != FLASH_OK) return st;
    if (plan.ws_bytes > 0 && (workspace == nullptr || workspace_bytes < plan.ws_bytes))
        return set_error(FLASH_ERROR_INVALID_ARGUMENT,
                         "workspace_bytes=%llu: this call needs %llu bytes (num_splits=%d; ask flash_fwd_workspace_size)",
                         (unsigned long long)workspace_bytes, (unsigned long long)plan.ws_bytes, plan.num_splits);
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

    if (plan.acc_rows > INT32_MAX)
        return set_error(FLASH_ERROR_UNSUPPORTED, "split-KV rows %lld exceed 2^31", (long long)plan.acc_rows);

    FwdParams k{};
    fill_attn_params(p, &k);
    k.num_splits = plan.num_splits;
    k.acc_rows = int32_t(plan.acc_rows);
    if (plan.num_splits > 1) {
        k.o_accum = static_cast<float*>(workspace);
        k.lse_accum = reinterpret_cast<float*>(static_cast<char*>(workspace) + plan.lse_accum_offset);
    }
    const bool bf16 = p.dtype == DType::BF16;
    // k is complete here. The Hopper path (hopper/fwd_sm90.cu) takes what it covers; the rest runs below.
    if (plan.hopper.dim > 0) {
        bool taken = false;
        int* counter = plan.hopper.counter
                           ? reinterpret_cast<int*>(static_cast<char*>(workspace) + plan.counter_offset)
                           : nullptr;
        void* tail_ws = plan.hopper.tail_tiles > 0 ? static_cast<char*>(workspace) + plan.tail_offset : nullptr;
        if (int32_t st = sm90::run(p, k, plan.hopper, plan.dim, counter, tail_ws, stream, &taken); st != FLASH_OK)
            return st;
        if (taken) return plan.num_splits > 1 ? run_fwd_combine(k, plan.dim, bf16, stream) : FLASH_OK;
    }

    const bool full = p.softcap > 0.f || p.alibi != nullptr || p.dropout.p > 0.f;
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    const int64_t gx = int64_t(plan.m_blocks) * plan.num_splits;
    if (gx > INT32_MAX) return set_error(FLASH_ERROR_UNSUPPORTED, "seqlen_q=%d: grid too large", p.seqlen_q);
    const dim3 grid(unsigned(gx), unsigned(p.h), unsigned(p.b));
    // the 32 MB sections without the rule (tile_order.h: it cost this kernel 1-2% at d64 causal), so no wave floor
    // and no SM count
    if (masked && plan.num_splits == 1 && gx * p.h * p.b <= INT32_MAX)
        k.sec_pairs = int32_t(l2_section_pairs(int64_t(p.h) * p.b, p.seqlen_k, p.d, p.dv, p.group, plan.m_blocks,
                                               /*slots=*/0, /*rule=*/false));

    int32_t st = FLASH_ERROR_INTERNAL;
    // The V / O width of the instantiation: dim, or 128 for MLA's 192 / 128 (fwd_config.h fwd_dim_v).
#ifdef FLASH_FWD_NO_NARROW_V // A/B builds only: MLA's shapes on the d192 kernel with V zero-padded, as before
    const int dim_v = plan.dim;
#else
    const int dim_v = fwd_dim_v(plan.dim, p.dv);
#endif
#define FLASH_FWD_RUN(D, DV)                                                                               \
    st = bf16 ? (masked ? run_fwd<true, D, true, DV>(k, grid, full, stream)                                \
                        : run_fwd<true, D, false, DV>(k, grid, full, stream))                              \
              : (masked ? run_fwd<false, D, true, DV>(k, grid, full, stream)                               \
                        : run_fwd<false, D, false, DV>(k, grid, full, stream))
#define FLASH_FWD_CASE(D)                                                                                  \
    case D:                                                                                                \
        if (dim_v != D) break; /* a narrow-V call: below */                                                \
        FLASH_FWD_RUN(D, D);                                                                               \
        break;
    switch (plan.dim) {
#ifdef FLASH_HDIM_32
        FLASH_FWD_CASE(32)
#endif
#ifdef FLASH_HDIM_64
        FLASH_FWD_CASE(64)
#endif
#ifdef FLASH_HDIM_96
        FLASH_FWD_CASE(96)
#endif
#ifdef FLASH_HDIM_128
        FLASH_FWD_CASE(128)
#endif
#ifdef FLASH_HDIM_192
        FLASH_FWD_CASE(192)
#endif
#ifdef FLASH_HDIM_256
        FLASH_FWD_CASE(256)
#endif
    default:
        return set_error(FLASH_ERROR_INTERNAL, "no CUDA forward instantiation for head dim %d", plan.dim);
    }
#ifdef FLASH_HDIM_192
    if (plan.dim == 192 && dim_v == 128) FLASH_FWD_RUN(192, 128);
#endif
#undef FLASH_FWD_CASE
#undef FLASH_FWD_RUN
    if (st != FLASH_OK) return st;
    // o_accum rows stay plan.dim floats wide (the workspace's size); the narrow-V kernel writes dv of them.
    if (plan.num_splits > 1) st = run_fwd_combine(k, plan.dim, bf16, stream);
    if (st == FLASH_OK) set_kernel(dim_v != plan.dim ? "cuda.sm80.fwd.dv128" : "cuda.sm80.fwd");
    return st;
}

const char* compiled_archs_json() {
    // FLASH_CUDA_ARCHS_STR is the arch list, comma-separated by CMake, e.g. "80,86,90a" or "90a-real".
    static const std::string json = [] {
        std::string out = "[";
        const char* s = FLASH_CUDA_ARCHS_STR;
        bool first = true;
        while (*s) {
            while (*s && !(*s >= '0' && *s <= '9')) ++s;
            if (!*s) break;
            int v = 0;
            while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
            while (*s && *s != ',' && *s != ';') ++s;
            out += (first ? "" : ",") + std::to_string(v);
            first = false;
        }
        return out + "]";
    }();
    return json.c_str();
}

const char* compiled_head_dims_json() { return FLASH_HEAD_DIMS_JSON; }

} // namespace flash::cuda
