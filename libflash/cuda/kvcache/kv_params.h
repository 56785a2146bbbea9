// Device-side parameter block of the KV-cache kernels (append + decode attention): FwdProblem with
// kvcache == true, flattened on the host by kvcache.cu: the shared attention fields (../attn_params.h; k and
// v are the cache, dense [b_k, cap, hk, d] or page pool [num_pages, page, hk, d], and k_batch/v_batch the
// batch-row or page stride; lse is [b, h, seqlen_q]) plus the cache, append and rotary fields.
// Every per-sequence rule mirrors api/seqinfo.h:
//   sq_i      = seqused_q ? seqused_q[i] : seqlen_q
//   leftpad_i = leftpad_k ? leftpad_k[i] : 0
//   kv_batch  = cache_batch_idx ? cache_batch_idx[i] : i            (dense cache only)
//   sk_i      = cache_seqlens[i] + seqlen_knew - leftpad_i           (keys after leftpad, appended rows included)
//   key j (0-based, after leftpad) lives at buffer position t = leftpad_i + j:
//     dense: row t of cache batch row kv_batch; paged: page block_table[i][t / page_size], row t % page_size.
#pragma once

#include <cstdint>

#include "../attn_params.h"

namespace flash::cuda {

struct KVParams : AttnParams {
    const void* knew; // [b, seqlen_knew, hk, d] (nullable)
    const void* vnew;
    int64_t kn_batch, kn_row, kn_head;
    int64_t vn_batch, vn_row, vn_head;
    int32_t seqlen_knew;
    int32_t aligned_kn, aligned_vn; // knew / vnew rows 16-byte aligned (cp.async path)

    // Scores as in AttnParams; `full` (softcap or ALiBi) takes the feature path.
    int32_t full;

    const int32_t* cache_seqlens;
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

    // GQA packing: packed row pm = r * group + gi (query row r, head hk_i * group + gi); 16 packed rows per CTA.
    int32_t m_blocks;
    // Split-KV: num_splits > 1 writes fp32 partials in fwd_combine.cu's layout o_accum[split][h][acc_row][acc_d],
    // lse_accum[split][h][acc_row] (acc_row = i * seqlen_q + r).
    int32_t acc_rows;
    int32_t acc_d;
    float* o_accum;
    float* lse_accum;
};

} // namespace flash::cuda
