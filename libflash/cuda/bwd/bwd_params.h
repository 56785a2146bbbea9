// The device-side parameter block of the backward kernels: the shared attention fields (../attn_params.h;
// lse is required and read, P = exp2(t - lse * log2(e))) plus dO and the gradients. Built on the host by
// bwd.cu. Geometry follows the same per-sequence rules of api/seqinfo.h.
#pragma once

#include <cstdint>

#include "../attn_params.h"

namespace flash::cuda {

struct BwdParams : AttnParams {
    // *_ptr: the base's d / dv are the head dims.
    const void* dout;
    void* dq_ptr;
    void* dk_ptr;
    void* dv_ptr;
    int64_t do_batch, do_row, do_head;
    int64_t dq_batch, dq_row, dq_head;
    int64_t dk_batch, dk_row, dk_head;
    int64_t dv_batch, dv_row, dv_head;

    float* dsoftmax_sum; // optional, LSE layout
    float scale;         // the softmax scale (dQ and dK are multiplied by it at the end)

    int32_t aligned_do, aligned_dq, aligned_dk, aligned_dv;

    // Workspace: dsum [h][acc_rows] (D = rowsum(dO * O)); dq_accum [h][acc_rows][acc_d] fp32 (null in
    // deterministic mode). A sequence's row r is acc_row0 + r (acc_row0 = bi * seqlen_q dense, cu_seqlens_q[bi]).
    int32_t acc_rows;
    int32_t acc_d;
    float* dsum;
    float* dq_accum;
};

} // namespace flash::cuda
