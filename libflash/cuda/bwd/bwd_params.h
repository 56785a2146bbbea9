// The device-side parameter block of the backward kernels: BwdProblem (api/problem.h) flattened. Built on
// the host by bwd.cu. Geometry fields follow fwd_params.h (the same per-sequence rules of api/seqinfo.h).
#pragma once

#include <cstdint>

namespace flash::cuda {

struct BwdParams {
    const void* q;
    const void* k;
    const void* v;
    const void* o;
    const void* dout;
    void* dq;
    void* dk;
    void* dv;
    int64_t q_batch, q_row, q_head;
    int64_t k_batch, k_row, k_head;
    int64_t v_batch, v_row, v_head;
    int64_t o_batch, o_row, o_head;
    int64_t do_batch, do_row, do_head;
    int64_t dq_batch, dq_row, dq_head;
    int64_t dk_batch, dk_row, dk_head;
    int64_t dv_batch, dv_row, dv_head;

    int32_t b, h, hk, group;
    int32_t seqlen_q, seqlen_k, d, dv_dim;
    int32_t total_q;

    // As the forward: t = softcap ? softcap_log2 * tanh(s * scale_over_softcap) : s * scale_log2 (log2 units),
    // minus alibi_slope * log2(e) * |i + sk - sq - j|; P = exp2(t - lse * log2(e)).
    float scale;              // the softmax scale (dQ and dK are multiplied by it at the end)
    float scale_log2;
    float softcap_log2;       // 0 = off
    float scale_over_softcap;
    int32_t win_left, win_right;

    const float* alibi;
    int64_t alibi_batch_stride;

    float rp_keep;
    uint32_t threshold16; // 0 = no dropout
    uint64_t philox_seed, philox_offset;

    const int32_t* cu_seqlens_q;
    const int32_t* cu_seqlens_k;
    const int32_t* seqused_q;
    const int32_t* seqused_k;
    const int32_t* leftpad_k;

    const float* lse; // natural log, [b, h, sq] or [h, total_q]
    int32_t lse_unpadded;
    float* dsoftmax_sum; // optional, LSE layout

    int32_t aligned_q, aligned_k, aligned_v, aligned_o, aligned_do, aligned_dq, aligned_dk, aligned_dv;

    // Workspace: dsum [h][acc_rows] (D = rowsum(dO * O)); dq_accum [h][acc_rows][acc_d] fp32 (null in
    // deterministic mode). A sequence's row r is acc_row0 + r (acc_row0 = bi * seqlen_q dense, cu_seqlens_q[bi]).
    int32_t acc_rows;
    int32_t acc_d;
    float* dsum;
    float* dq_accum;
};

} // namespace flash::cuda
