// Per-sequence geometry from the (host-readable) index arrays: the one place that spells out how
// cu_seqlens, seqused, leftpad, cache_seqlens and cache_batch_idx combine. Kernels that resolve the same
// values on the device must follow these rules line for line.
#pragma once

#include "problem.h"

namespace flash {

inline SeqInfo seq_info(const FwdProblem& p, int32_t i) {
    SeqInfo s;
    if (p.cu_seqlens_q) {
        s.q_row0 = p.cu_seqlens_q[i];
        s.sq = p.cu_seqlens_q[i + 1] - p.cu_seqlens_q[i];
    } else {
        s.sq = p.seqlen_q;
    }
    if (p.seqused_q) s.sq = p.seqused_q[i];

    s.leftpad = p.leftpad_k ? p.leftpad_k[i] : 0;
    s.kv_batch = p.cache_batch_idx ? p.cache_batch_idx[i] : i;
    int32_t end; // one past the last valid key row, counted from the sequence's first K row
    if (p.kvcache) {
        end = p.cache_seqlens[i] + p.seqlen_knew;
    } else if (p.cu_seqlens_k) {
        s.k_row0 = p.cu_seqlens_k[i];
        end = p.cu_seqlens_k[i + 1] - p.cu_seqlens_k[i];
    } else {
        end = p.seqlen_k;
    }
    if (p.seqused_k) end = p.seqused_k[i];
    s.k_row0 += s.leftpad;
    s.sk = end - s.leftpad;
    return s;
}

// The mask rule of problem.h, for one (row, col) of a sequence with lengths (sq, sk).
inline bool mask_visible(const Mask& m, int32_t row, int32_t col, int32_t sq, int32_t sk) {
    if (col >= sk) return false;
    const int64_t a = int64_t(row) + sk - sq;
    if (m.left >= 0 && col < a - m.left) return false;
    if (m.right >= 0 && col > a + m.right) return false;
    return true;
}

} // namespace flash
