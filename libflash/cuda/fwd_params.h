// The device-side parameter block of the forward kernels: FwdProblem (api/problem.h) flattened into
// plain values the kernel reads from its parameter space. Built on the host by fwd.cu.
#pragma once

#include <cstdint>

namespace flash::cuda {

struct FwdParams {
    const void* q;
    const void* k;
    const void* v;
    void* o;
    int64_t q_batch, q_row, q_head;
    int64_t k_batch, k_row, k_head;
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
    int32_t win_left, win_right; // < 0 = unbounded (mask rule of api/problem.h)

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

    float* lse;         // optional
    int32_t lse_unpadded;

    // 1: every pointer, batch/row/head stride is 16-byte / 8-element aligned (cp.async path); 0: scalar loads.
    int32_t aligned_q, aligned_k, aligned_v, aligned_o;

    // Split-KV: num_splits > 1 writes partials to o_accum [ns][h][acc_rows][D] and lse_accum [ns][h][acc_rows]
    // (acc_rows = b * seqlen_q dense, total_q varlen; a sequence's row r is acc_row0 + r).
    int32_t num_splits;
    int32_t acc_rows;
    float* o_accum;
    float* lse_accum;
};

} // namespace flash::cuda
