// The attention fields every CUDA kernel family reads (forward, backward, KV cache): FwdProblem
// (api/problem.h) flattened into plain values for the kernel parameter space. FwdParams, BwdParams and
// KVParams derive from it so the kernels keep reading p.q, p.scale_log2, ... and one host function fills it.
#pragma once

#include <cstdint>

#include "api/problem.h"

namespace flash::cuda {

struct AttnParams {
    // k and v are const for the attention kernels; the KV-cache append writes them (kvcache.cu casts).
    const void* q;
    const void* k;
    const void* v;
    void* o;
    int64_t q_batch, q_row, q_head;
    int64_t k_batch, k_row, k_head; // KV cache: k_batch is the batch-row stride (dense) or page stride (paged)
    int64_t v_batch, v_row, v_head;
    int64_t o_batch, o_row, o_head;

    int32_t b, h, hk, group;
    int32_t seqlen_q, seqlen_k, d, dv;
    int32_t total_q;

    // Scores: fast path p = exp2(s * scale_log2 - m * scale_log2). Feature path (softcap / ALiBi / dropout)
    // first maps s to log2 units: t = softcap ? softcap_log2 * tanh(s * scale_over_softcap) : s * scale_log2,
    // then t -= alibi_slope * log2(e) * |i + sk - sq - j|.
    float scale_log2;
    float softcap_log2;       // softcap * log2(e), 0 = off
    float scale_over_softcap; // scale / softcap
    int32_t win_left, win_right; // < 0 = unbounded (mask rule of api/problem.h; causal = right 0)

    const float* alibi;
    int64_t alibi_batch_stride;

    float rp_keep;         // 1 / (1 - p_dropout), 1 without dropout
    uint32_t threshold16;  // dropped iff u16 < threshold16; 0 = no dropout
    uint64_t philox_seed, philox_offset;

    const int32_t* cu_seqlens_q;
    const int32_t* cu_seqlens_k;
    const int32_t* seqused_q;
    const int32_t* seqused_k;
    const int32_t* leftpad_k;

    float* lse; // natural log, [b, h, sq] or (lse_unpadded) [h, total_q]; optional except for the backward
    int32_t lse_unpadded;

    // 1: every pointer, batch/row/head stride is 16-byte / 8-element aligned (cp.async path); 0: scalar loads.
    int32_t aligned_q, aligned_k, aligned_v, aligned_o;

    // Split-KV count of the host's plan (1 from the fill; the backward never splits). Kept last in the base so
    // FwdParams' layout is unchanged: the forward kernels' register allocation is sensitive to it.
    int32_t num_splits;
};

// A varlen tensor has no batch stride (its sequences are rows of one buffer), so only a dense one's counts;
// the KV cache's (batch row, or page when paged) always does.
bool aligned16(const void* ptr, const Strides& s, bool use_batch);

// Everything of AttnParams from the validated problem. The KV-cache path relies on validation having
// rejected cu_seqlens and dropout, so the same rules give its values.
void fill_attn_params(const FwdProblem& p, AttnParams* k);

} // namespace flash::cuda
