#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "device.h"
#include "error.h"

namespace flash {
namespace {

constexpr int32_t kMaxHeadDim = 256;
constexpr int32_t kMaxSplits = 256;
// Sizes of the first released layouts: callers may pass any struct_size from these up to ours.
constexpr uint64_t kFwdMinSize = offsetof(flash_fwd_params, pack_gqa);
constexpr uint64_t kBwdMinSize = sizeof(flash_bwd_params);

#define FAIL(code, ...) return set_error(code, __VA_ARGS__)
#define INVALID(...) FAIL(FLASH_ERROR_INVALID_ARGUMENT, __VA_ARGS__)
#define TRY(expr)                                                                                          \
    do {                                                                                                   \
        int32_t _st = (expr);                                                                              \
        if (_st != FLASH_OK) return _st;                                                                   \
    } while (0)

template <class P>
int32_t copy_params(const P* in, P* out, uint64_t min_size, const char* name) {
    if (!in) INVALID("%s: params is NULL", name);
    const uint64_t n = in->struct_size;
    if (n < min_size || n > sizeof(P))
        FAIL(FLASH_ERROR_ABI, "%s: struct_size=%llu is not a layout this library knows (accepted %llu..%llu)%s",
             name, (unsigned long long)n, (unsigned long long)min_size, (unsigned long long)sizeof(P),
             n > sizeof(P) ? ": the caller was built against a newer libflash" : "");
    std::memcpy(out, in, n);
    return FLASH_OK;
}

int32_t check_dims(const char* name, int32_t b, int32_t sq, int32_t sk, int32_t d, int32_t dv, int32_t h,
                   int32_t hk) {
    if (b < 0) INVALID("%s: b=%d must be >= 0", name, b);
    if (sq < 0) INVALID("%s: seqlen_q=%d must be >= 0", name, sq);
    if (sk < 0) INVALID("%s: seqlen_k=%d must be >= 0", name, sk);
    if (h < 1) INVALID("%s: h=%d must be >= 1", name, h);
    if (hk < 1) INVALID("%s: h_k=%d must be >= 1 (0 means h)", name, hk);
    if (h % hk != 0) INVALID("%s: h_k=%d does not divide h=%d", name, hk, h);
    if (d < 1 || d > kMaxHeadDim) INVALID("%s: d=%d must be in 1..%d", name, d, kMaxHeadDim);
    if (dv < 1 || dv > kMaxHeadDim) INVALID("%s: dv=%d must be in 1..%d (0 means d)", name, dv, kMaxHeadDim);
    return FLASH_OK;
}

int32_t check_strides(const char* name, const char* t, int64_t batch, int64_t row, int64_t head) {
    if (batch < 0 || row < 0 || head < 0)
        INVALID("%s: %s strides must be >= 0 (batch=%lld row=%lld head=%lld)", name, t, (long long)batch,
                (long long)row, (long long)head);
    return FLASH_OK;
}

int32_t need_ptr(const char* name, const char* field, const void* p) {
    if (!p) INVALID("%s: %s is NULL but required", name, field);
    return FLASH_OK;
}

// Reads an int32 index array the host can see: directly for the CPU, through a copy for CUDA when
// FLASH_CHECK_INDICES=1. Returns false (no check possible) otherwise.
class IndexView {
public:
    IndexView(const FwdProblem& f) : cpu_(f.device_type == FLASH_DEVICE_CPU), check_(cpu_ || env_check_indices()) {}
    bool enabled() const { return check_; }
    int32_t load(const void* p, int64_t n, const char* what, const int32_t** out) {
        *out = nullptr;
        if (!p || !check_ || n <= 0) return FLASH_OK;
        if (cpu_) {
            *out = static_cast<const int32_t*>(p);
            return FLASH_OK;
        }
        store_.emplace_back(size_t(n));
        TRY(copy_device_to_host(store_.back().data(), p, size_t(n) * 4, what));
        *out = store_.back().data();
        return FLASH_OK;
    }

private:
    bool cpu_, check_;
    std::vector<std::vector<int32_t>> store_;
};

// Everything flash_fwd, flash_fwd_kvcache and flash_bwd share (same field names in both structs).
template <class P>
int32_t load_common(const P& p, const char* name, FwdProblem* f) {
    if (p.reserved0 != 0) INVALID("%s: reserved0=%d must be 0", name, p.reserved0);
    if (p.device_type != FLASH_DEVICE_CPU && p.device_type != FLASH_DEVICE_CUDA)
        INVALID("%s: device_type=%d must be FLASH_DEVICE_CPU (1) or FLASH_DEVICE_CUDA (2)", name, p.device_type);
    f->device_type = p.device_type;
    f->device_id = p.device_type == FLASH_DEVICE_CUDA ? p.device_id : 0;
    if (p.device_type == FLASH_DEVICE_CUDA) {
#ifndef FLASH_WITH_CUDA_KERNELS
        FAIL(FLASH_ERROR_UNSUPPORTED, "%s: device_type=FLASH_DEVICE_CUDA but this libflash was built without the "
             "CUDA backend (rebuild with FLASH_CUDA=ON)", name);
#endif
        const int32_t n = cuda_device_count();
        if (p.device_id < 0 || p.device_id >= n)
            INVALID("%s: device_id=%d is not a CUDA device (this machine has %d)", name, p.device_id, n);
    }
    if (p.dtype < FLASH_DTYPE_FP16 || p.dtype > FLASH_DTYPE_FP32)
        INVALID("%s: dtype=%d must be FLASH_DTYPE_FP16 (1), FLASH_DTYPE_BF16 (2) or FLASH_DTYPE_FP32 (3)", name,
                p.dtype);
    if (p.dtype == FLASH_DTYPE_FP32 && p.device_type == FLASH_DEVICE_CUDA)
        FAIL(FLASH_ERROR_UNSUPPORTED, "%s: dtype=FLASH_DTYPE_FP32 runs on the CPU backend only; the CUDA kernels "
             "take fp16 or bf16", name);
    f->dtype = DType(p.dtype);

    const int32_t hk = p.h_k == 0 ? p.h : p.h_k;
    const int32_t dv = p.dv == 0 ? p.d : p.dv;
    TRY(check_dims(name, p.b, p.seqlen_q, p.seqlen_k, p.d, dv, p.h, hk));
    f->b = p.b;
    f->seqlen_q = p.seqlen_q;
    f->seqlen_k = p.seqlen_k;
    f->d = p.d;
    f->dv = dv;
    f->h = p.h;
    f->hk = hk;
    f->group = p.h / hk;

    TRY(check_strides(name, "q", p.q_batch_stride, p.q_row_stride, p.q_head_stride));
    TRY(check_strides(name, "k", p.k_batch_stride, p.k_row_stride, p.k_head_stride));
    TRY(check_strides(name, "v", p.v_batch_stride, p.v_row_stride, p.v_head_stride));
    TRY(check_strides(name, "o", p.o_batch_stride, p.o_row_stride, p.o_head_stride));
    f->q = p.q_ptr;
    f->k = p.k_ptr;
    f->v = p.v_ptr;
    f->o = p.o_ptr;
    f->sq_ = {p.q_batch_stride, p.q_row_stride, p.q_head_stride};
    f->sk_ = {p.k_batch_stride, p.k_row_stride, p.k_head_stride};
    f->sv_ = {p.v_batch_stride, p.v_row_stride, p.v_head_stride};
    f->so_ = {p.o_batch_stride, p.o_row_stride, p.o_head_stride};
    if (p.b > 0) {
        TRY(need_ptr(name, "q_ptr", p.q_ptr));
        TRY(need_ptr(name, "k_ptr", p.k_ptr));
        TRY(need_ptr(name, "v_ptr", p.v_ptr));
        TRY(need_ptr(name, "o_ptr", p.o_ptr));
    }

    if (!(std::isfinite(p.scale_softmax) && p.scale_softmax >= 0.f))
        INVALID("%s: scale_softmax=%g must be finite and > 0 (0 means 1/sqrt(d))", name, double(p.scale_softmax));
    f->scale = p.scale_softmax == 0.f ? 1.f / std::sqrt(float(p.d)) : p.scale_softmax;
    f->scale_log2 = f->scale * 1.4426950408889634f;
    if (!(std::isfinite(p.softcap) && p.softcap >= 0.f))
        INVALID("%s: softcap=%g must be finite and >= 0 (0 = off)", name, double(p.softcap));
    f->softcap = p.softcap;
    if (!(std::isfinite(p.p_dropout) && p.p_dropout >= 0.f && p.p_dropout < 1.f))
        INVALID("%s: p_dropout=%g must be in [0, 1)", name, double(p.p_dropout));
    if (p.softcap > 0.f && p.p_dropout > 0.f)
        FAIL(FLASH_ERROR_UNSUPPORTED, "%s: softcap=%g with p_dropout=%g is not supported (as in FlashAttention)",
             name, double(p.softcap), double(p.p_dropout));
    f->dropout.p = p.p_dropout;
    f->dropout.rp_keep = 1.f / (1.f - p.p_dropout);
    {
        const double t = std::floor(double(p.p_dropout) * 65536.0 + 0.5);
        f->dropout.threshold16 = t > 65535.0 ? 65535u : uint32_t(t);
    }
    f->dropout.seed = p.philox_seed;
    f->dropout.offset = p.philox_offset;

    if (p.is_causal != 0 && p.is_causal != 1) INVALID("%s: is_causal=%d must be 0 or 1", name, p.is_causal);
    f->mask.left = p.window_size_left < 0 ? -1 : p.window_size_left;
    f->mask.right = p.is_causal ? 0 : (p.window_size_right < 0 ? -1 : p.window_size_right);
    f->mask.causal = f->mask.right == 0 && f->mask.left < 0;
    f->mask.local = !f->mask.causal && (f->mask.left >= 0 || f->mask.right >= 0);

    if (p.alibi_slopes_batch_stride < 0)
        INVALID("%s: alibi_slopes_batch_stride=%lld must be >= 0", name, (long long)p.alibi_slopes_batch_stride);
    f->alibi = static_cast<const float*>(p.alibi_slopes_ptr);
    f->alibi_batch_stride = p.alibi_slopes_ptr ? p.alibi_slopes_batch_stride : 0;

    f->cu_seqlens_q = static_cast<const int32_t*>(p.cu_seqlens_q);
    f->cu_seqlens_k = static_cast<const int32_t*>(p.cu_seqlens_k);
    f->seqused_q = static_cast<const int32_t*>(p.seqused_q);
    f->seqused_k = static_cast<const int32_t*>(p.seqused_k);
    f->lse = static_cast<float*>(p.softmax_lse_ptr);
    f->lse_unpadded = p.cu_seqlens_q != nullptr;
    if (p.cu_seqlens_q) {
        if (p.total_q < 0) INVALID("%s: total_q=%d must be >= 0 with cu_seqlens_q", name, p.total_q);
        f->total_q = p.total_q;
    }
    return FLASH_OK;
}

// Host-visible checks of the per-sequence index arrays (always on the CPU; FLASH_CHECK_INDICES=1 on CUDA).
int32_t check_indices(const char* name, const FwdProblem& f, const int32_t* leftpad_dev) {
    IndexView iv(f);
    if (!iv.enabled() || f.b == 0) return FLASH_OK;
    const int32_t *cuq, *cuk, *usq, *usk, *lp, *cs, *cbi;
    TRY(iv.load(f.cu_seqlens_q, f.b + 1, "cu_seqlens_q", &cuq));
    TRY(iv.load(f.cu_seqlens_k, f.b + 1, "cu_seqlens_k", &cuk));
    TRY(iv.load(f.seqused_q, f.b, "seqused_q", &usq));
    TRY(iv.load(f.seqused_k, f.b, "seqused_k", &usk));
    TRY(iv.load(leftpad_dev, f.b, "leftpad_k", &lp));
    TRY(iv.load(f.cache_seqlens, f.b, "cache_seqlens", &cs));
    TRY(iv.load(f.cache_batch_idx, f.b, "cache_batch_idx", &cbi));
    if (cuq && cuq[f.b] > f.total_q)
        INVALID("%s: cu_seqlens_q[%d]=%d exceeds total_q=%d", name, f.b, cuq[f.b], f.total_q);
    for (int32_t i = 0; i < f.b; ++i) {
        int32_t sq = f.seqlen_q, kend = f.seqlen_k;
        if (cuq) {
            sq = cuq[i + 1] - cuq[i];
            if (cuq[i] < 0 || sq < 0 || sq > f.seqlen_q)
                INVALID("%s: cu_seqlens_q[%d..%d]=(%d, %d) must be ascending from >= 0 with a length <= "
                        "seqlen_q=%d (the max)", name, i, i + 1, cuq[i], cuq[i + 1], f.seqlen_q);
        }
        if (usq && (usq[i] < 0 || usq[i] > sq))
            INVALID("%s: seqused_q[%d]=%d must be in 0..%d", name, i, usq[i], sq);
        if (cuk) {
            kend = cuk[i + 1] - cuk[i];
            if (cuk[i] < 0 || kend < 0 || kend > f.seqlen_k)
                INVALID("%s: cu_seqlens_k[%d..%d]=(%d, %d) must be ascending from >= 0 with a length <= "
                        "seqlen_k=%d (the max)", name, i, i + 1, cuk[i], cuk[i + 1], f.seqlen_k);
        }
        if (cs) {
            if (cs[i] < 0 || int64_t(cs[i]) + f.seqlen_knew > f.seqlen_k)
                INVALID("%s: cache_seqlens[%d]=%d + seqlen_knew=%d exceeds the cache capacity seqlen_k=%d", name,
                        i, cs[i], f.seqlen_knew, f.seqlen_k);
            kend = cs[i] + f.seqlen_knew;
        }
        if (usk) {
            if (usk[i] < 0 || usk[i] > kend)
                INVALID("%s: seqused_k[%d]=%d must be in 0..%d", name, i, usk[i], kend);
            kend = usk[i];
        }
        if (lp && (lp[i] < 0 || lp[i] > kend - (cs ? f.seqlen_knew : 0)))
            INVALID("%s: leftpad_k[%d]=%d must be in 0..%d (the sequence's cached keys)", name, i, lp[i],
                    kend - (cs ? f.seqlen_knew : 0));
        if (cbi && (cbi[i] < 0 || cbi[i] >= f.b_k))
            INVALID("%s: cache_batch_idx[%d]=%d is outside the cache's b_k=%d rows", name, i, cbi[i], f.b_k);
        if (f.rotary_dim > 0 && cs) {
            const int64_t need = int64_t(cs[i]) + std::max(f.seqlen_q, f.seqlen_knew);
            if (need > f.rotary_seqlen)
                INVALID("%s: rotary positions up to %lld are needed for sequence %d (cache_seqlens=%d) but "
                        "rotary_seqlen=%d", name, (long long)need - 1, i, cs[i], f.rotary_seqlen);
        }
    }
    if (f.block_table) {
        const int32_t* bt;
        const int64_t n = int64_t(f.b - 1) * f.block_table_batch_stride + f.max_num_blocks_per_seq;
        TRY(iv.load(f.block_table, n, "block_table", &bt));
        for (int32_t i = 0; i < f.b; ++i) {
            const int32_t used = cs ? cs[i] + f.seqlen_knew : f.seqlen_k;
            const int32_t pages = (used + f.page_block_size - 1) / f.page_block_size;
            for (int32_t j = 0; j < pages; ++j) {
                const int32_t e = bt[int64_t(i) * f.block_table_batch_stride + j];
                if (e < 0 || e >= f.num_pages)
                    INVALID("%s: block_table[%d][%d]=%d is outside the page pool (num_pages=%d)", name, i, j, e,
                            f.num_pages);
            }
        }
    }
    return FLASH_OK;
}

int32_t check_locations(const FwdProblem& f, const char* const* names, const void* const* ptrs, int n) {
    if (!env_check_pointers()) return FLASH_OK;
    for (int i = 0; i < n; ++i)
        if (ptrs[i]) TRY(check_pointer_location(names[i], ptrs[i], f.device_type, f.device_id));
    return FLASH_OK;
}

} // namespace

int32_t load_fwd(const flash_fwd_params* in, Entry entry, FwdProblem* f) {
    const char* name = entry == Entry::Fwd ? "flash_fwd" : "flash_fwd_kvcache";
    flash_fwd_params p;
    std::memset(&p, 0, sizeof p);
    TRY(copy_params(in, &p, kFwdMinSize, name));
    *f = FwdProblem{};
    TRY(load_common(p, name, f));
    if (p.reserved1 != 0 || p.reserved2 != 0)
        INVALID("%s: reserved1=%d, reserved2=%d must be 0", name, p.reserved1, p.reserved2);
    if (p.num_splits < 0 || p.num_splits > kMaxSplits)
        INVALID("%s: num_splits=%d must be in 0..%d (0 = heuristic)", name, p.num_splits, kMaxSplits);
    f->num_splits = p.num_splits;
    if (p.pack_gqa < -1 || p.pack_gqa > 1)
        INVALID("%s: pack_gqa=%d must be -1 (never), 0 (heuristic) or 1 (whenever possible)", name, p.pack_gqa);
    if (p.reserved3 != 0) INVALID("%s: reserved3=%d must be 0", name, p.reserved3);
    f->pack_gqa = p.pack_gqa;
    f->leftpad_k = static_cast<const int32_t*>(p.leftpad_k);

    if (entry == Entry::Fwd) {
        const struct { const char* field; const void* ptr; } cache_only[] = {
            {"cache_seqlens", p.cache_seqlens}, {"knew_ptr", p.knew_ptr},   {"vnew_ptr", p.vnew_ptr},
            {"rotary_cos_ptr", p.rotary_cos_ptr}, {"rotary_sin_ptr", p.rotary_sin_ptr},
            {"cache_batch_idx", p.cache_batch_idx}, {"block_table", p.block_table}};
        for (const auto& c : cache_only)
            if (c.ptr) INVALID("flash_fwd: %s is set but only flash_fwd_kvcache reads it", c.field);
        if (p.seqlen_knew != 0 || p.rotary_dim != 0)
            INVALID("flash_fwd: seqlen_knew=%d, rotary_dim=%d must be 0 (KV-cache fields; use flash_fwd_kvcache)",
                    p.seqlen_knew, p.rotary_dim);
    } else {
        f->kvcache = true;
        if (p.p_dropout > 0.f)
            INVALID("flash_fwd_kvcache: p_dropout=%g must be 0 (inference path)", double(p.p_dropout));
        if (p.cu_seqlens_q || p.cu_seqlens_k || p.seqused_k)
            INVALID("flash_fwd_kvcache: cu_seqlens_q/cu_seqlens_k/seqused_k must be NULL (cache_seqlens gives the "
                    "key lengths)");
        if (p.b > 0) TRY(need_ptr(name, "cache_seqlens", p.cache_seqlens));
        f->cache_seqlens = static_cast<const int32_t*>(p.cache_seqlens);
        if ((p.knew_ptr == nullptr) != (p.vnew_ptr == nullptr))
            INVALID("flash_fwd_kvcache: knew_ptr and vnew_ptr must be both set or both NULL (knew=%p vnew=%p)",
                    p.knew_ptr, p.vnew_ptr);
        if (p.knew_ptr ? p.seqlen_knew < 1 : p.seqlen_knew != 0)
            INVALID("flash_fwd_kvcache: seqlen_knew=%d must be >= 1 with knew_ptr and 0 without", p.seqlen_knew);
        TRY(check_strides(name, "knew", p.knew_batch_stride, p.knew_row_stride, p.knew_head_stride));
        TRY(check_strides(name, "vnew", p.vnew_batch_stride, p.vnew_row_stride, p.vnew_head_stride));
        f->knew = p.knew_ptr;
        f->vnew = p.vnew_ptr;
        f->sknew_ = {p.knew_batch_stride, p.knew_row_stride, p.knew_head_stride};
        f->svnew_ = {p.vnew_batch_stride, p.vnew_row_stride, p.vnew_head_stride};
        f->seqlen_knew = p.seqlen_knew;

        if (p.rotary_dim < 0 || p.rotary_dim > p.d || p.rotary_dim % 2 != 0)
            INVALID("flash_fwd_kvcache: rotary_dim=%d must be even and in 0..d=%d", p.rotary_dim, p.d);
        if (p.rotary_dim > 0) {
            TRY(need_ptr(name, "rotary_cos_ptr", p.rotary_cos_ptr));
            TRY(need_ptr(name, "rotary_sin_ptr", p.rotary_sin_ptr));
            if (p.rotary_seqlen < 1)
                INVALID("flash_fwd_kvcache: rotary_seqlen=%d must be >= 1 with rotary_dim=%d", p.rotary_seqlen,
                        p.rotary_dim);
        }
        if (p.is_rotary_interleaved != 0 && p.is_rotary_interleaved != 1)
            INVALID("flash_fwd_kvcache: is_rotary_interleaved=%d must be 0 or 1", p.is_rotary_interleaved);
        f->rotary_dim = p.rotary_dim;
        f->rotary_cos = p.rotary_dim ? p.rotary_cos_ptr : nullptr;
        f->rotary_sin = p.rotary_dim ? p.rotary_sin_ptr : nullptr;
        f->rotary_seqlen = p.rotary_seqlen;
        f->rotary_interleaved = p.is_rotary_interleaved != 0;

        f->b_k = p.b_k == 0 ? p.b : p.b_k;
        if (f->b_k < 0) INVALID("flash_fwd_kvcache: b_k=%d must be >= 0 (0 means b)", p.b_k);
        f->cache_batch_idx = static_cast<const int32_t*>(p.cache_batch_idx);
        if (p.block_table) {
            if (p.cache_batch_idx)
                INVALID("flash_fwd_kvcache: cache_batch_idx cannot be used with a paged cache (block_table)");
            if (p.page_block_size < 1)
                INVALID("flash_fwd_kvcache: page_block_size=%d must be >= 1", p.page_block_size);
            if (p.max_num_blocks_per_seq < 1 || p.num_pages < 1)
                INVALID("flash_fwd_kvcache: max_num_blocks_per_seq=%d and num_pages=%d must be >= 1 with "
                        "block_table", p.max_num_blocks_per_seq, p.num_pages);
            if (int64_t(p.max_num_blocks_per_seq) * p.page_block_size != p.seqlen_k)
                INVALID("flash_fwd_kvcache: seqlen_k=%d must equal max_num_blocks_per_seq=%d * page_block_size=%d "
                        "for a paged cache", p.seqlen_k, p.max_num_blocks_per_seq, p.page_block_size);
            if (p.b > 1 && p.block_table_batch_stride < p.max_num_blocks_per_seq)
                INVALID("flash_fwd_kvcache: block_table_batch_stride=%lld is smaller than max_num_blocks_per_seq=%d",
                        (long long)p.block_table_batch_stride, p.max_num_blocks_per_seq);
            f->block_table = static_cast<const int32_t*>(p.block_table);
            f->block_table_batch_stride = p.block_table_batch_stride;
            f->page_block_size = p.page_block_size;
            f->max_num_blocks_per_seq = p.max_num_blocks_per_seq;
            f->num_pages = p.num_pages;
        }
    }
    TRY(check_indices(name, *f, f->leftpad_k));
    const char* names[] = {"q_ptr", "k_ptr", "v_ptr", "o_ptr", "softmax_lse_ptr", "alibi_slopes_ptr", "cu_seqlens_q",
                           "cu_seqlens_k", "seqused_q", "seqused_k", "leftpad_k", "cache_seqlens", "knew_ptr",
                           "vnew_ptr", "rotary_cos_ptr", "rotary_sin_ptr", "cache_batch_idx", "block_table"};
    const void* ptrs[] = {p.q_ptr, p.k_ptr, p.v_ptr, p.o_ptr, p.softmax_lse_ptr, p.alibi_slopes_ptr, p.cu_seqlens_q,
                          p.cu_seqlens_k, p.seqused_q, p.seqused_k, p.leftpad_k, p.cache_seqlens, p.knew_ptr,
                          p.vnew_ptr, p.rotary_cos_ptr, p.rotary_sin_ptr, p.cache_batch_idx, p.block_table};
    return check_locations(*f, names, ptrs, int(sizeof ptrs / sizeof ptrs[0]));
}

int32_t load_bwd(const flash_bwd_params* in, BwdProblem* out) {
    const char* name = "flash_bwd";
    flash_bwd_params p;
    std::memset(&p, 0, sizeof p);
    TRY(copy_params(in, &p, kBwdMinSize, name));
    *out = BwdProblem{};
    FwdProblem& f = out->f;
    TRY(load_common(p, name, &f));
    if (p.reserved1 != 0) INVALID("flash_bwd: reserved1=%d must be 0", p.reserved1);
    if (p.b > 0) {
        TRY(need_ptr(name, "softmax_lse_ptr", p.softmax_lse_ptr));
        TRY(need_ptr(name, "do_ptr", p.do_ptr));
        TRY(need_ptr(name, "dq_ptr", p.dq_ptr));
        TRY(need_ptr(name, "dk_ptr", p.dk_ptr));
        TRY(need_ptr(name, "dv_ptr", p.dv_ptr));
    }
    TRY(check_strides(name, "do", p.do_batch_stride, p.do_row_stride, p.do_head_stride));
    TRY(check_strides(name, "dq", p.dq_batch_stride, p.dq_row_stride, p.dq_head_stride));
    TRY(check_strides(name, "dk", p.dk_batch_stride, p.dk_row_stride, p.dk_head_stride));
    TRY(check_strides(name, "dv", p.dv_batch_stride, p.dv_row_stride, p.dv_head_stride));
    if (p.deterministic != 0 && p.deterministic != 1)
        INVALID("flash_bwd: deterministic=%d must be 0 or 1", p.deterministic);
    out->dout = p.do_ptr;
    out->dq = p.dq_ptr;
    out->dk = p.dk_ptr;
    out->dv = p.dv_ptr;
    out->sdo_ = {p.do_batch_stride, p.do_row_stride, p.do_head_stride};
    out->sdq_ = {p.dq_batch_stride, p.dq_row_stride, p.dq_head_stride};
    out->sdk_ = {p.dk_batch_stride, p.dk_row_stride, p.dk_head_stride};
    out->sdv_ = {p.dv_batch_stride, p.dv_row_stride, p.dv_head_stride};
    out->dsoftmax_sum = static_cast<float*>(p.dsoftmax_sum);
    out->deterministic = p.deterministic != 0;
    TRY(check_indices(name, f, nullptr));
    const char* names[] = {"q_ptr", "k_ptr", "v_ptr", "o_ptr", "softmax_lse_ptr", "alibi_slopes_ptr", "cu_seqlens_q",
                           "cu_seqlens_k", "seqused_q", "seqused_k", "do_ptr", "dq_ptr", "dk_ptr", "dv_ptr",
                           "dsoftmax_sum"};
    const void* ptrs[] = {p.q_ptr, p.k_ptr, p.v_ptr, p.o_ptr, p.softmax_lse_ptr, p.alibi_slopes_ptr, p.cu_seqlens_q,
                          p.cu_seqlens_k, p.seqused_q, p.seqused_k, p.do_ptr, p.dq_ptr, p.dk_ptr, p.dv_ptr,
                          p.dsoftmax_sum};
    return check_locations(f, names, ptrs, int(sizeof ptrs / sizeof ptrs[0]));
}

} // namespace flash
