// Host side of the Hopper backward: which problems take it, the tensor maps, the instantiation switch.
// Everything this path does not cover returns *taken = false and runs on the sm80 kernel instead
// (flash_last_kernel() says which one ran).
#include "bwd_sm90.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "api/error.h"
#include "../attn_params.h"
#include "../device_info.h"
#include "bwd_sm90_config.h"
#include "sm90_env.h"
#include "tensor_map.h"

namespace flash::cuda::sm90 {

namespace {


// An integer from the environment (read each call: these are measurement knobs), `dflt` when unset.
[[maybe_unused]] int env_int(const char* name, int dflt) {
    const char* e = std::getenv(name);
    return e && *e ? std::atoi(e) : dflt;
}

// dQ by float2 atomics from registers (default: measured faster, bench/NOTES.md run 1) or, with
// FLASH_BWD90_DQ=bulk, by the copy engine's bulk reduce from shared memory (A/B measurements).
[[maybe_unused]] bool atomic_dq_by_env() {
    static const bool on = [] {
        const char* e = std::getenv("FLASH_BWD90_DQ");
        return !(e && std::strcmp(e, "bulk") == 0);
    }();
    return on;
}

} // namespace

int32_t try_bwd(const BwdProblem& bp, const BwdParams& k, int dim, cudaStream_t stream, bool* taken) {
    *taken = false;
#ifndef FLASH_HAS_SM90A
    (void)bp, (void)k, (void)dim, (void)stream;
    return FLASH_OK;
#else
    const FwdProblem& p = bp.f;
    if (disabled_by_env() || bp.deterministic || k.dq_accum == nullptr || k.acc_d != dim) return FLASH_OK;
    if (dim != 64 && dim != 128) return FLASH_OK;
#ifndef FLASH_HDIM_64
    if (dim == 64) return FLASH_OK;
#endif
#ifndef FLASH_HDIM_128
    if (dim == 128) return FLASH_OK;
#endif
    if (p.dtype != DType::F16 && p.dtype != DType::BF16) return FLASH_OK;
    if (p.dropout.p > 0.f || p.alibi != nullptr || p.softcap > 0.f) return FLASH_OK;
    // Varlen by cu_seqlens_q / cu_seqlens_k (either or both) is taken; seqused / leftpad are not: rows between a
    // sequence's used length and the next sequence (or the padding) may hold anything, and the query-side
    // blocks / the last key box read them (0 * NaN would reach dK / dV / dQ), where the sm80 kernel zero-fills.
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    if (p.seqused_q || p.seqused_k || p.leftpad_k) return FLASH_OK;
    if (k.lse_unpadded && !vq) return FLASH_OK;
    // The kernel's 32-bit LSE offsets: (b * h) * seqlen_q for the padded [b, h, sq] layout (varlen's acc_rows
    // = total_q is already < 2^31 / h, bwd.cu).
    if (!k.lse_unpadded && int64_t(p.b) * p.h * p.seqlen_q >= INT_MAX) return FLASH_OK;
    if (vq && (p.total_q <= 0 || p.total_q >= (1 << 30))) return FLASH_OK;
    if (!(k.aligned_q && k.aligned_k && k.aligned_v && k.aligned_do && k.aligned_dk && k.aligned_dv)) return FLASH_OK;
    if (p.seqlen_q >= (1 << 28) || p.seqlen_k >= (1 << 28)) return FLASH_OK; // the kernel's 32-bit tile ranges
    DevInfo di;
    if (device_info(p.device_id, &di) != FLASH_OK) {
        clear_error();
        return FLASH_OK;
    }
    if (!(di.major == 9 && di.minor == 0)) return FLASH_OK;
    const Bwd90Tile t = bwd90_tile(dim);
    if (t.d == 0 || bwd90_smem_bytes(t) > di.smem_optin) return FLASH_OK;

    Bwd90Params sp;
    std::memset(&sp, 0, sizeof sp);
    sp.b = k;
    const bool bf16 = p.dtype == DType::BF16;
    // Varlen: the batch dimension collapses (rows = total rows, a sequence's row r at cu_seqlens[bi] + r).
    // Varlen K has no host-known total length: the kernel never reads past a sequence's last key (its last
    // box ends there), so the row extent only has to be large enough (as the forward, fwd_sm90.cu).
    const uint64_t qrows = vq ? uint64_t(p.total_q) : uint64_t(p.seqlen_q);
    const uint64_t krows = vk ? uint64_t(INT_MAX) : uint64_t(p.seqlen_k);
    const TensorView qv{p.q, uint64_t(p.d), qrows, uint64_t(p.h), uint64_t(vq ? 1 : p.b),
                        p.sq_.row, p.sq_.head, p.sq_.batch};
    const TensorView dov{bp.dout, uint64_t(p.dv), qrows, uint64_t(p.h), uint64_t(vq ? 1 : p.b),
                         bp.sdo_.row, bp.sdo_.head, bp.sdo_.batch};
    const TensorView kv{p.k, uint64_t(p.d), krows, uint64_t(p.hk), uint64_t(vk ? 1 : p.b),
                        p.sk_.row, p.sk_.head, p.sk_.batch};
    const TensorView vv{p.v, uint64_t(p.dv), krows, uint64_t(p.hk), uint64_t(vk ? 1 : p.b),
                        p.sv_.row, p.sv_.head, p.sv_.batch};
    if (make_tensor_map(&sp.tm_q, qv, bf16, 64, uint32_t(t.block_m)) != FLASH_OK ||
        make_tensor_map(&sp.tm_do, dov, bf16, 64, uint32_t(t.block_m)) != FLASH_OK ||
        make_tensor_map(&sp.tm_k, kv, bf16, 64, uint32_t(t.block_n)) != FLASH_OK ||
        make_tensor_map(&sp.tm_v, vv, bf16, 64, uint32_t(t.block_n)) != FLASH_OK) {
        clear_error(); // an unusual stride the copy engine cannot describe: the sm80 kernel takes it
        return FLASH_OK;
    }
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    // Tiles (key block, KV head, batch) in groups of group_heads (KV head, batch) pairs, key block slowest inside
    // a group. Non-causal: 1 (head-major: a head's key blocks side by side share its Q / dO in L2). Causal /
    // local: enough pairs for ~2 x SMs tiles per group, so the heaviest key blocks (the first) start first
    // inside each group while the CTAs in flight still cover few heads (one head per CTA re-read Q / dO from
    // DRAM: bench/NOTES.md, run 2). FLASH_BWD90_GROUP=n overrides (measurements).
    const int64_t nblk = (p.seqlen_k + t.block_n - 1) / t.block_n;
    const int64_t hb = int64_t(p.hk) * p.b;
    if (nblk * hb > INT_MAX) return FLASH_OK;
    int64_t group = masked ? (2 * int64_t(di.sms) + nblk - 1) / nblk : 1;
    if (const int knob = env_int("FLASH_BWD90_GROUP", 0); knob > 0) group = knob;
    sp.n_blocks = int(nblk);
    sp.group_heads = int(std::max<int64_t>(1, std::min<int64_t>(group, hb)));
    sp.num_tiles = int(nblk * hb);
    // Non-causal: persistent CTAs (one per SM, each striding over the tiles: the next tile's K / V and first
    // Q / dO load under this one's tail). Causal / local: one CTA per tile, the hardware balancing the uneven
    // tiles (a static stride over them lost 20-25 % at 1k: bench/NOTES.md, run 3). FLASH_BWD90_PERSIST=0/1
    // overrides (measurements).
    const bool persistent = env_int("FLASH_BWD90_PERSIST", masked ? 0 : 1) != 0;
    const dim3 grid(unsigned(persistent ? std::min<int64_t>(sp.num_tiles, di.sms) : sp.num_tiles));
    const bool adq = atomic_dq_by_env();
    int32_t st = FLASH_ERROR_INTERNAL;
#define FLASH_BWD90_CASE(D)                                                                                \
    case D:                                                                                                \
        st = bf16 ? (masked ? run_bwd_sm90<true, D, true>(sp, grid, adq, stream)                                \
                            : run_bwd_sm90<true, D, false>(sp, grid, adq, stream))                              \
                  : (masked ? run_bwd_sm90<false, D, true>(sp, grid, adq, stream)                               \
                            : run_bwd_sm90<false, D, false>(sp, grid, adq, stream));                            \
        break;
    switch (dim) {
#ifdef FLASH_HDIM_64
        FLASH_BWD90_CASE(64)
#endif
#ifdef FLASH_HDIM_128
        FLASH_BWD90_CASE(128)
#endif
    default:
        return FLASH_OK;
    }
#undef FLASH_BWD90_CASE
    *taken = true;
    if (st == FLASH_OK) set_kernel("cuda.sm90.bwd");
    return st;
#endif
}

} // namespace flash::cuda::sm90
