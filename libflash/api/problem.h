// The validated, normalized description of one attention call: the contract between the API layer
// (which fills it from the public params after every check has passed) and the backends (CPU, CUDA),
// which may assume every rule below holds and never re-validate.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flash {

enum class DType : int32_t { F16 = 1, BF16 = 2, F32 = 3 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

// A strided 3-D view [rows, heads, dim] of one sequence's tensor is base + row*row + head*head + dim;
// the batch (or page) stride moves base between sequences (pages).
struct Strides {
    int64_t batch = 0, row = 0, head = 0;
};

// Mask rule shared by every backend. For query row i (0-based, inside its sequence) and key column j
// (0-based, after leftpad), with the sequence's actual lengths sq_i and sk_i, let a = i + sk_i - sq_i:
//   visible(i, j) = j < sk_i && (left < 0 || j >= a - left) && (right < 0 || j <= a + right)
// causal is right = 0 (left as given). A row with no visible key has O = 0 and LSE = +inf.
struct Mask {
    int32_t left = -1;
    int32_t right = -1;
    bool causal = false; // right == 0; kept so kernels can pick the causal instantiation
    bool local = false;  // any side bounded and not plain causal
};

struct Dropout {
    float p = 0.f;              // drop probability, 0 = off
    float rp_keep = 1.f;        // 1 / (1 - p)
    uint32_t threshold16 = 0;   // dropped iff u16 < threshold16 (see include/flash.h)
    uint64_t seed = 0, offset = 0;
};

// Everything the forward kernels need (flash_fwd and flash_fwd_kvcache share it).
struct FwdProblem {
    DType dtype = DType::BF16;
    int32_t device_type = 0; // FLASH_DEVICE_*
    int32_t device_id = 0;

    const void* q = nullptr;
    const void* k = nullptr; // dense [b_k, sk, hk, d], varlen [total_k, hk, d] or page pool
    const void* v = nullptr;
    void* o = nullptr;
    Strides sq_, sk_, sv_, so_; // named with a trailing _ to keep them apart from the lengths below
    float* lse = nullptr;       // optional
    bool lse_unpadded = false;  // [h, total_q] (varlen) instead of [b, h, sq]

    int32_t b = 0, seqlen_q = 0, seqlen_k = 0;
    int32_t d = 0, dv = 0, h = 0, hk = 0, group = 1; // group = h / hk
    int32_t total_q = 0;

    float scale = 0.f;      // softmax scale (user's value or 1/sqrt(d))
    float scale_log2 = 0.f; // scale * log2(e)
    float softcap = 0.f;    // the cap, 0 = off: s' = softcap * tanh(scale * s / softcap)
    Mask mask;
    const float* alibi = nullptr;
    int64_t alibi_batch_stride = 0;
    Dropout dropout;

    // Per-sequence lengths (int32, on the params' device). Each may be null.
    const int32_t* cu_seqlens_q = nullptr; // varlen q: rows of seq i are [cu[i], cu[i+1])
    const int32_t* cu_seqlens_k = nullptr; // varlen k
    const int32_t* seqused_q = nullptr;
    const int32_t* seqused_k = nullptr;
    const int32_t* leftpad_k = nullptr;

    // KV cache (kvcache == true only for flash_fwd_kvcache).
    bool kvcache = false;
    const int32_t* cache_seqlens = nullptr; // required for kvcache
    const void* knew = nullptr;             // optional
    const void* vnew = nullptr;
    Strides sknew_, svnew_;
    int32_t seqlen_knew = 0;
    const void* rotary_cos = nullptr; // [rotary_seqlen, rotary_dim/2]
    const void* rotary_sin = nullptr;
    int32_t rotary_dim = 0;
    int32_t rotary_seqlen = 0;
    bool rotary_interleaved = false;
    const int32_t* cache_batch_idx = nullptr;
    int32_t b_k = 0;
    const int32_t* block_table = nullptr; // paged when non-null; k/v batch stride = page stride
    int64_t block_table_batch_stride = 0;
    int32_t page_block_size = 1;
    int32_t max_num_blocks_per_seq = 0;
    int32_t num_pages = 0;

    int32_t num_splits = 0; // 0 heuristic, else forced (1..256)
    int32_t pack_gqa = 0;   // 0 heuristic, 1 whenever possible, -1 never (the Hopper forward)
};

// Backward adds dO/dQ/dK/dV to the forward description (kvcache fields unused).
struct BwdProblem {
    FwdProblem f;           // q, k, v, o (o is read), lse (required), masks, dropout, varlen
    const void* dout = nullptr;
    void* dq = nullptr;
    void* dk = nullptr;
    void* dv = nullptr;
    Strides sdo_, sdq_, sdk_, sdv_;
    float* dsoftmax_sum = nullptr; // optional output, same layout as lse
    bool deterministic = false;
};

// Per-sequence geometry, resolved from the index arrays (host-readable on the CPU backend; the CUDA
// kernels resolve the same values on the device with the same rules).
struct SeqInfo {
    int64_t q_row0 = 0;   // first row of this sequence in q/o (varlen: cu_seqlens_q[i], dense: 0)
    int64_t k_row0 = 0;   // first key row in k/v (varlen: cu_seqlens_k[i]; + leftpad)
    int32_t sq = 0;       // actual query rows
    int32_t sk = 0;       // actual keys (after leftpad, including appended knew rows for kvcache)
    int32_t leftpad = 0;
    int32_t kv_batch = 0; // batch row of the (dense) cache (cache_batch_idx) or i
};

} // namespace flash
