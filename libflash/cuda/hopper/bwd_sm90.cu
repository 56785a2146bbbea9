// Host side of the Hopper backward: which problems take it, the tensor maps, the instantiation switch.
// Everything this path does not cover returns *taken = false and runs on the sm80 kernel instead
// (flash_last_kernel() says which one ran).
#include "bwd_sm90.h"

#include <climits>
#include <cstdlib>
#include <cstring>

#include "api/error.h"
#include "../attn_params.h"
#include "../device_info.h"
#include "bwd_sm90_config.h"
#include "tensor_map.h"

namespace flash::cuda::sm90 {

namespace {

// FLASH_SM90=0 in the environment keeps every backward on the sm80 kernel (as the forward).
bool disabled_by_env() {
    static const bool off = [] {
        const char* e = std::getenv("FLASH_SM90");
        return e && std::strcmp(e, "0") == 0;
    }();
    return off;
}

// dQ by float2 atomics from registers (default: measured faster, bench/NOTES.md run 1) or, with
// FLASH_BWD90_DQ=bulk, by the copy engine's bulk reduce from shared memory (A/B measurements).
bool atomic_dq_by_env() {
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
    if (p.cu_seqlens_q || p.cu_seqlens_k || p.seqused_q || p.seqused_k || p.leftpad_k || k.lse_unpadded)
        return FLASH_OK;
    if (!(k.aligned_q && k.aligned_k && k.aligned_v && k.aligned_do && k.aligned_dk && k.aligned_dv)) return FLASH_OK;
    if (p.b > 65535 || p.hk > 65535) return FLASH_OK;
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
    const TensorView qv{p.q, uint64_t(p.d), uint64_t(p.seqlen_q), uint64_t(p.h), uint64_t(p.b),
                        p.sq_.row, p.sq_.head, p.sq_.batch};
    const TensorView dov{bp.dout, uint64_t(p.dv), uint64_t(p.seqlen_q), uint64_t(p.h), uint64_t(p.b),
                         bp.sdo_.row, bp.sdo_.head, bp.sdo_.batch};
    const TensorView kv{p.k, uint64_t(p.d), uint64_t(p.seqlen_k), uint64_t(p.hk), uint64_t(p.b),
                        p.sk_.row, p.sk_.head, p.sk_.batch};
    const TensorView vv{p.v, uint64_t(p.dv), uint64_t(p.seqlen_k), uint64_t(p.hk), uint64_t(p.b),
                        p.sv_.row, p.sv_.head, p.sv_.batch};
    if (make_tensor_map(&sp.tm_q, qv, bf16, 64, uint32_t(t.block_m)) != FLASH_OK ||
        make_tensor_map(&sp.tm_do, dov, bf16, 64, uint32_t(t.block_m)) != FLASH_OK ||
        make_tensor_map(&sp.tm_k, kv, bf16, 64, uint32_t(t.block_n)) != FLASH_OK ||
        make_tensor_map(&sp.tm_v, vv, bf16, 64, uint32_t(t.block_n)) != FLASH_OK) {
        clear_error(); // an unusual stride the copy engine cannot describe: the sm80 kernel takes it
        return FLASH_OK;
    }
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    // Non-causal: (key block, KV head, batch), the CTAs of one head side by side (they share its Q / dO in L2).
    // Causal / local: one dimension numbered key block slowest, so the heaviest CTAs (the first key blocks see
    // the most query blocks) start first and the light ones fill the tail.
    const int64_t nblk = (p.seqlen_k + t.block_n - 1) / t.block_n;
    if (masked && nblk * p.hk * p.b > INT_MAX) return FLASH_OK;
    const dim3 grid = masked ? dim3(unsigned(nblk * p.hk * p.b)) : dim3(unsigned(nblk), unsigned(p.hk), unsigned(p.b));
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
