// Device-side parameter block of the KV-cache kernels (append + decode attention): FwdProblem with
// kvcache == true, flattened on the host by kvcache.cu. Every per-sequence rule mirrors api/seqinfo.h:
//   sq_i      = seqused_q ? seqused_q[i] : seqlen_q
//   leftpad_i = leftpad_k ? leftpad_k[i] : 0
//   kv_batch  = cache_batch_idx ? cache_batch_idx[i] : i            (dense cache only)
//   sk_i      = cache_seqlens[i] + seqlen_knew - leftpad_i           (keys after leftpad, appended rows included)
//   key j (0-based, after leftpad) lives at buffer position t = leftpad_i + j:
//     dense: row t of cache batch row kv_batch; paged: page block_table[i][t / page_size], row t % page_size.
#pragma once

#include <cstdint>

namespace flash::cuda {

struct KVParams {
    const void* q;
    void* k; // cache (dense [b_k, cap, hk, d] or page pool [num_pages, page, hk, d]); written by the append
    void* v;
    void* o;
    int64_t q_batch, q_row, q_head;
    int64_t k_batch, k_row, k_head; // k_batch: batch-row stride (dense) or page stride (paged)
    int64_t v_batch, v_row, v_head;
    int64_t o_batch, o_row, o_head;

    const void* knew; // [b, seqlen_knew, hk, d] (nullable)
    const void* vnew;
    int64_t kn_batch, kn_row, kn_head;
    int64_t vn_batch, vn_row, vn_head;
    int32_t seqlen_knew;

    int32_t b, h, hk, group;
    int32_t seqlen_q, d, dv;

    // Scores as in FwdParams: fast path exp2(s * scale_log2 - m * scale_log2); `full` (softcap or ALiBi) maps
    // s to log2 units first: t = softcap ? softcap_log2 * tanh(s * scale_over_softcap) : s * scale_log2,
    // t -= slope * log2(e) * |i + sk - sq - j|.
    float scale_log2;
    float softcap_log2;
    float scale_over_softcap;
    int32_t full;
    int32_t win_left, win_right; // < 0 = unbounded (api/problem.h mask rule; causal = right 0)
    const float* alibi;
    int64_t alibi_batch_stride;

    const int32_t* cache_seqlens;
    const int32_t* leftpad_k;
    const int32_t* seqused_q;
    const int32_t* cache_batch_idx;
    const int32_t* block_table; // paged when non-null
    int64_t bt_stride;
    int32_t page_size;
    int32_t page_shift; // log2(page_size) when a power of two, else -1

    // Rotary (rotary_dim == 0: none). q rows rotate at cache_seqlens[i] + (rot_per_row ? r : 0).
    const void* rot_cos; // [rotary_seqlen, rotary_dim / 2]
    const void* rot_sin;
    int32_t rotary_dim;
    int32_t rot_interleaved;
    int32_t rot_per_row; // causal or local

    float* lse; // optional [b, h, seqlen_q]

    int32_t aligned_q, aligned_k, aligned_v, aligned_o; // 16-byte loads / cp.async allowed; 8-byte O stores allowed

    // GQA packing: packed row pm = r * group + gi (query row r, head hk_i * group + gi); 16 packed rows per CTA.
    int32_t m_blocks;
    // Split-KV: num_splits > 1 writes fp32 partials in fwd_combine.cu's layout o_accum[split][h][acc_row][acc_d],
    // lse_accum[split][h][acc_row] (acc_row = i * seqlen_q + r).
    int32_t num_splits;
    int32_t acc_rows;
    int32_t acc_d;
    float* o_accum;
    float* lse_accum;
};

} // namespace flash::cuda
