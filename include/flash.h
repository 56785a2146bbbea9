/*
 * libflash — FlashAttention as a C ABI.
 *
 * This header is the whole public API of libflash.so. It is plain C (usable from C and C++), uses only
 * fixed-width types, passes every struct by pointer, and returns a status code from every function that can
 * fail. Nothing crosses the ABI as a C++ exception, abort or assert.
 *
 * Conventions
 *  - Tensors are described by a base pointer plus strides counted in ELEMENTS (not bytes), exactly as in
 *    FlashAttention-2's Flash_fwd_params. The last (head-dim) dimension must be contiguous (stride 1).
 *  - Where the data lives is named by (device_type, device_id). With FLASH_DEVICE_CPU every pointer is host
 *    memory; with FLASH_DEVICE_CUDA every pointer is device (or managed) memory of CUDA device `device_id`.
 *  - Index arrays (cu_seqlens_*, seqused_*, leftpad_k, cache_seqlens, cache_batch_idx, block_table) are int32
 *    and live where the tensors live.
 *  - Shapes below use FlashAttention's names: b = batch, sq = seqlen_q, sk = seqlen_k, h = query heads,
 *    h_k = key/value heads, d = Q/K head dim, dv = V/O head dim.
 *  - A failed call writes no output. The thread-local flash_last_error() names the field and the values.
 *  - Index VALUES (lengths, page-table entries, batch indices) are checked on the host when the host can read
 *    them: always on the CPU backend. On CUDA they live in device memory and are trusted (reading them would
 *    synchronize the stream); set FLASH_CHECK_INDICES=1 in the environment to have every call copy them to the
 *    host and check them first (a debugging aid: it synchronizes). FLASH_CHECK_POINTERS=1 additionally checks
 *    that every pointer lives on the device the params name.
 *
 * Versioning and compatible change (struct_size rule)
 *  - Every params struct starts with `uint64_t struct_size`, which the caller sets to sizeof() of the struct
 *    as it was compiled (flash_*_params_init does it). The library accepts any struct_size from the first
 *    released size up to its own; fields past the caller's struct_size take their documented defaults.
 *  - Fields are only ever APPENDED. No field is removed, reordered, resized or given a new meaning; a new
 *    behaviour gets a new field whose default (zero or as documented) keeps the old behaviour.
 *  - FLASH_ABI_VERSION changes only on an incompatible change; bindings must refuse a library whose
 *    flash_abi_version() differs from the one they were written for.
 *  - flash_params_layout() describes every field (name, offset, size, kind) so bindings can verify their
 *    packer at load time.
 *
 * Dropout mask (bit-exact across every backend, tile size, thread count and num_splits)
 *  - Counter-based Philox-4x32-10 with key = (seed_lo, seed_hi) where seed = philox_seed.
 *  - For batch index `bi` (the sequence index for varlen), query head `hi`, query row `r` (0-based inside the
 *    sequence) and key column `c` (0-based key position inside the sequence):
 *        n       = philox_offset + (uint64)bi * h + hi               (64-bit, wraps)
 *        counter = { c >> 3, r, (uint32)n, (uint32)(n >> 32) }
 *        x[0..3] = Philox4x32_10(counter, key)
 *        u16     = (x[(c & 7) >> 1] >> (16 * (c & 1))) & 0xFFFF
 *        dropped = u16 < threshold,  threshold = min(65535, (uint32)floor(p_dropout * 65536 + 0.5))
 *    Kept probabilities are multiplied by 1 / (1 - p_dropout) (the float value the user gave, unquantized).
 *    The threshold quantizes p_dropout to a multiple of 1/65536 (FA2 quantizes to 1/255).
 *  - Philox-4x32-10 rounds: with M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85, each round
 *      (hi0,lo0) = mulhilo(M0, c0); (hi1,lo1) = mulhilo(M1, c2);
 *      c = { hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0 };  k0 += W0; k1 += W1;   (10 rounds; no bump after the last)
 *  - One call consumes counters n in [philox_offset, philox_offset + b*h). To get an independent mask on the
 *    next call, advance philox_offset by at least b*h (the backward of a forward must reuse its seed/offset).
 */
#ifndef FLASH_H
#define FLASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(FLASH_BUILDING_LIBRARY)
#    define FLASH_API __declspec(dllexport)
#  else
#    define FLASH_API __declspec(dllimport)
#  endif
#else
#  define FLASH_API __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------------------------------ */
/* Versions                                                                                               */

#define FLASH_VERSION_MAJOR 0
#define FLASH_VERSION_MINOR 1
#define FLASH_VERSION_PATCH 0
/* major*10000 + minor*100 + patch */
#define FLASH_VERSION (FLASH_VERSION_MAJOR * 10000 + FLASH_VERSION_MINOR * 100 + FLASH_VERSION_PATCH)
/* Bumped only by incompatible ABI changes (see the struct_size rule above). */
#define FLASH_ABI_VERSION 1

FLASH_API int32_t flash_version(void);     /* FLASH_VERSION of the library actually loaded */
FLASH_API int32_t flash_abi_version(void); /* FLASH_ABI_VERSION of the library actually loaded */

/* ------------------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                               */

typedef enum flash_status {
    FLASH_OK = 0,
    FLASH_ERROR_INVALID_ARGUMENT = 1, /* a field or argument breaks a documented rule */
    FLASH_ERROR_UNSUPPORTED = 2,      /* valid, but this build / GPU cannot run it (names GPU and config) */
    FLASH_ERROR_NOT_IMPLEMENTED = 3,  /* valid, and planned, but not implemented yet on this backend */
    FLASH_ERROR_CUDA = 4,             /* a CUDA runtime call failed; the message has the CUDA error */
    FLASH_ERROR_OUT_OF_MEMORY = 5,    /* an allocation failed (flash_malloc, or a host allocation) */
    FLASH_ERROR_ABI = 6,              /* struct_size or a version does not match */
    FLASH_ERROR_NOT_READY = 7,        /* flash_event_query: the work is still running (not an error) */
    FLASH_ERROR_INTERNAL = 8          /* a bug in libflash: please report the message */
} flash_status;

/* Static, never NULL: "FLASH_ERROR_INVALID_ARGUMENT" etc. Unknown codes give "FLASH_ERROR_UNKNOWN". */
FLASH_API const char* flash_status_string(int32_t status);
/* The message of the last failing call on this thread ("" after success). Valid until the next call on the
 * same thread. Names the field and the values, e.g. "h_k=5 does not divide h=32". */
FLASH_API const char* flash_last_error(void);
/* When the last failure was FLASH_ERROR_CUDA: the cudaError_t value, else 0. */
FLASH_API int32_t flash_last_cuda_error(void);
/* The kernel path the last call on this thread took, "" when it failed or ran nothing. Static, never NULL.
 * For tests and benchmarks that must know which path ran; the names are informative, not a stable ABI:
 * "cpu", "cuda.sm80.fwd" (mma.sync), "cuda.sm90.fwd" (wgmma + TMA, sm_90a), "cuda.sm90.fwd.packgqa" (the same with
 * a K/V head's query heads packed into the tiles: GQA with short queries), "cuda.sm90.fwd.split" and
 * "cuda.sm90.fwd.packgqa.split" (split-KV on the sm90 kernel), "cuda.sm90.fwd.tail" and "cuda.sm90.fwd.packgqa.tail"
 * (a dense unmasked grid whose last partial wave of tiles ran as key-range pieces on every SM, then a merge; the
 * workspace holds their fp32 partials; FLASH_SM90_TAIL=0 in the environment turns it off), each sm80 and sm90
 * forward name with ".dv128" after "cuda.sm80.fwd" / "cuda.sm90.fwd" when a narrow-V kernel ran (in builds with head
 * dim 192: max(d, dv) in 129..192 with dv <= 128, MLA's 192 / 128; a build without 128 also sends smaller dims
 * there), "cuda.fwd_kvcache",
 * "cuda.sm80.bwd", "cuda.sm80.bwd.dv128" (the backward's narrow-V kernel, for the same (d, dv) as the forward's),
 * "cuda.sm90.bwd".
 * flash_fwd takes the KV-cache decode kernel ("cuda.fwd_kvcache") for decode-shaped calls on any GPU: no
 * cu_seqlens (seqused and leftpad_k may be set), no dropout, head dims <= 128, seqlen_q * h / h_k <= 32, and
 * pack_gqa not -1 with GQA (FLASH_FWD_DECODE=0 in the environment turns this off). Otherwise it takes the sm90
 * kernel on an sm_90 GPU when the build has sm_90a code and the call has no dropout or ALiBi and 16-byte-aligned
 * tensors (a split also needs h / h_k <= its tile rows and pack_gqa not -1). flash_bwd takes the sm90 kernel
 * for fp16/bf16 at head dims <= 128 (instantiations 64 and 128), dense layouts, no dropout / ALiBi / softcap,
 * deterministic = 0 and 16-byte-aligned tensors. FLASH_SM90=0 in the environment keeps both on the sm80 kernels. */
FLASH_API const char* flash_last_kernel(void);

/* ------------------------------------------------------------------------------------------------------ */
/* Enumerations                                                                                           */

typedef enum flash_dtype {
    FLASH_DTYPE_FP16 = 1, /* IEEE half */
    FLASH_DTYPE_BF16 = 2, /* bfloat16 */
    FLASH_DTYPE_FP32 = 3  /* float; CPU backend only */
} flash_dtype;

typedef enum flash_device_type {
    FLASH_DEVICE_CPU = 1, /* same numbers as DLPack's kDLCPU / kDLCUDA */
    FLASH_DEVICE_CUDA = 2
} flash_device_type;

/* ------------------------------------------------------------------------------------------------------ */
/* Forward parameters (flash_fwd and flash_fwd_kvcache)                                                  */

typedef struct flash_fwd_params {
    /* sizeof(flash_fwd_params) as the caller compiled it. Set by flash_fwd_params_init. */
    uint64_t struct_size;

    /* --- Where and what --------------------------------------------------------------------------- */
    /* FLASH_DEVICE_CPU or FLASH_DEVICE_CUDA. Default FLASH_DEVICE_CUDA. (FA2: implied by the tensors.) */
    int32_t device_type;
    /* CUDA device index (ignored for the CPU). Default 0. The call runs on this device whatever the
     * calling thread's current device is, and restores the current device afterwards. */
    int32_t device_id;
    /* flash_dtype of q, k, v, o, knew, vnew, rotary cos/sin. Default FLASH_DTYPE_BF16. (FA2: is_bf16.) */
    int32_t dtype;
    int32_t reserved0; /* keep 0 */

    /* --- Qkv part --------------------------------------------------------------------------------- */
    /* q: [b, sq, h, d] (dense) or [total_q, h, d] (varlen, cu_seqlens_q set).
     * k: [b_k, sk, h_k, d] dense; [total_k, h_k, d] varlen; [num_pages, page_block_size, h_k, d] paged.
     * v: like k with dv in place of d.  o: like q with dv in place of d; written by the call. */
    void* q_ptr;
    void* k_ptr;
    void* v_ptr;
    void* o_ptr;
    /* Strides in elements. *_batch_stride is ignored for varlen q/o (cu_seqlens_q) and varlen k/v
     * (cu_seqlens_k); for a paged cache k/v_batch_stride is the stride between pages. */
    int64_t q_batch_stride;
    int64_t k_batch_stride;
    int64_t v_batch_stride;
    int64_t o_batch_stride;
    int64_t q_row_stride;
    int64_t k_row_stride;
    int64_t v_row_stride;
    int64_t o_row_stride;
    int64_t q_head_stride;
    int64_t k_head_stride;
    int64_t v_head_stride;
    int64_t o_head_stride;

    /* b >= 1 (0 is allowed: nothing to do). For varlen, the number of sequences. */
    int32_t b;
    /* Query length; for varlen the maximum over sequences (max_seqlen_q). >= 0. */
    int32_t seqlen_q;
    /* Key length; varlen: max_seqlen_k. flash_fwd_kvcache: the cache capacity per sequence (dense cache), or
     * max_num_blocks_per_seq * page_block_size (paged; set it so, it is checked). >= 0. */
    int32_t seqlen_k;
    /* Q/K head dim, 1..256 (FA2 demands a multiple of 8; libflash does not). */
    int32_t d;
    /* V/O head dim, 1..256. 0 (default) means dv = d. (FA3 field; FA2 has dv == d.) */
    int32_t dv;
    /* Query heads. >= 1. */
    int32_t h;
    /* Key/value heads; must divide h (MQA: 1, GQA: h/group). 0 (default) means h_k = h. */
    int32_t h_k;
    /* Varlen only: total query rows = cu_seqlens_q[b] (also the LSE row stride). Must be set with
     * cu_seqlens_q; ignored otherwise. */
    int32_t total_q;

    /* --- Forward part ------------------------------------------------------------------------------ */
    /* Optional (NULL = not returned). fp32 log-sum-exp of each query row in the NATURAL log:
     * [b, h, sq] dense, [h, total_q] varlen. A row with no visible key gets +inf. */
    void* softmax_lse_ptr;
    /* The softmax scale applied to q·k. 0 (default) means 1/sqrt(d). Must be finite and > 0 when set.
     * (FA2 stores derived values here; libflash keeps the user's value and derives inside.) */
    float scale_softmax;
    /* Tanh soft-capping of the scaled scores: s -> softcap * tanh(s / softcap). 0 = off (default), else > 0.
     * (FA2 stores scale/softcap here; libflash keeps the cap.) Not with dropout. */
    float softcap;
    /* Probability of DROPPING an attention weight, 0 <= p < 1. Default 0. (FA2 stores the keep
     * probability.) See "Dropout mask" above. Not supported by flash_fwd_kvcache. */
    float p_dropout;
    /* 1 = causal mask aligned to the bottom-right corner: query row i sees keys j <= i + sk - sq.
     * Equivalent to window (-1, 0). Default 0. */
    int32_t is_causal;
    /* Local (sliding window) attention: query i sees keys in [i + sk - sq - left, i + sk - sq + right].
     * A negative value means unbounded on that side. Default (-1, -1) = no window. */
    int32_t window_size_left;
    int32_t window_size_right;
    int32_t reserved1; /* keep 0 */
    /* Optional fp32 ALiBi slopes [h] (alibi_slopes_batch_stride = 0) or [b, h]. Adds
     * -slope * |i + sk - sq - j| to the scaled score (bottom-right aligned, as FA2). */
    void* alibi_slopes_ptr;
    int64_t alibi_slopes_batch_stride;
    /* Dropout random stream: see "Dropout mask". Ignored when p_dropout == 0. */
    uint64_t philox_seed;
    uint64_t philox_offset;

    /* --- Variable length --------------------------------------------------------------------------- */
    /* int32 [b+1] cumulative row offsets of the packed q (and o) / k (and v). NULL = dense. */
    void* cu_seqlens_q;
    void* cu_seqlens_k;
    /* Optional int32 [b]: only the first seqused_q[i] / seqused_k[i] rows of sequence i are used (the rest is
     * padding: their O rows are left untouched and their LSE is not written). (seqused_q: FA3.) */
    void* seqused_q;
    void* seqused_k;
    /* Optional int32 [b]: keys of sequence i start at row leftpad_k[i] of its (dense or paged) K/V rows; the
     * rows before are ignored. With cache_seqlens the valid keys are [leftpad_k[i], cache_seqlens[i] + knew). */
    void* leftpad_k;

    /* --- KV cache (flash_fwd_kvcache only) -------------------------------------------------------------- */
    /* int32 [b]: rows already in the cache per sequence (FA2: seqlens_k / cu_seqlens_k non-cumulative).
     * Required by flash_fwd_kvcache. */
    void* cache_seqlens;
    /* Optional new keys/values [b, seqlen_knew, h_k, d] / [.., dv], written into the cache at rows
     * cache_seqlens[i] .. cache_seqlens[i] + seqlen_knew - 1 before attending (k rotated on the way in). */
    void* knew_ptr;
    void* vnew_ptr;
    int64_t knew_batch_stride;
    int64_t vnew_batch_stride;
    int64_t knew_row_stride;
    int64_t vnew_row_stride;
    int64_t knew_head_stride;
    int64_t vnew_head_stride;
    int32_t seqlen_knew;
    /* Rotary embedding of q and knew: even, 0 (default: none) .. d. */
    int32_t rotary_dim;
    /* cos/sin [seqlen_ro, rotary_dim / 2] in dtype, contiguous; seqlen_ro >= rotary positions used. */
    void* rotary_cos_ptr;
    void* rotary_sin_ptr;
    /* Rows available in rotary_cos/sin (seqlen_ro). Required when rotary_dim > 0 (checked bound). */
    int32_t rotary_seqlen;
    /* 1: pairs (2j, 2j+1) (GPT-J). 0 (default): pairs (j, j + rotary_dim/2) (GPT-NeoX). Note: flash_attn's
     * Python default is interleaved=True; this C default follows the zero-initialised FA2 struct. */
    int32_t is_rotary_interleaved;
    /* Optional int32 [b]: sequence i uses cache batch row cache_batch_idx[i] (dense cache only). */
    void* cache_batch_idx;
    /* Number of batch rows in a dense cache (b_k, FA3 name). Required with cache_batch_idx (range check);
     * 0 (default) means b. */
    int32_t b_k;
    /* Tokens per page, >= 1 (any size; FA2 demands multiples of 256). Used when block_table is set. */
    int32_t page_block_size;
    /* Optional int32 [b, max_num_blocks_per_seq] page table: token t of sequence i lives in page
     * block_table[i * block_table_batch_stride + t / page_block_size], row t % page_block_size. */
    void* block_table;
    int64_t block_table_batch_stride;
    /* Columns of block_table (max_num_blocks_per_seq) and pages in the pool (num_pages). Required when paged:
     * entries must lie in [0, num_pages). */
    int32_t max_num_blocks_per_seq;
    int32_t num_pages;

    /* --- Scheduling (never changes the answer beyond rounding) ------------------------------------------ */
    /* Split-KV count: 0 (default) = heuristic, 1 = no split, 2..256 = forced. */
    int32_t num_splits;
    int32_t reserved2; /* keep 0 */

    /* --- Appended after the first release (a caller with the older struct_size gets the defaults) ------- */
    /* GQA packing (FA3's pack_gqa): the Hopper forward puts a K/V head's h / h_k query heads into the rows of
     * one tile, so each K/V block it loads serves all of them; it pays when seqlen_q leaves most of a tile's
     * rows empty (decode-like and short-chunk shapes). 0 (default) = heuristic, 1 = pack whenever the kernel
     * can (h / h_k <= its tile rows), -1 = never. Scheduling only: the answer changes by rounding at most.
     * flash_fwd_kvcache ignores it (its decode kernel always packs). */
    int32_t pack_gqa;
    int32_t reserved3; /* keep 0 */
} flash_fwd_params;

/* ------------------------------------------------------------------------------------------------------ */
/* Backward parameters (flash_bwd)                                                                       */

typedef struct flash_bwd_params {
    uint64_t struct_size;

    int32_t device_type; /* as in flash_fwd_params */
    int32_t device_id;
    int32_t dtype;
    int32_t reserved0;

    /* q, k, v, o exactly as passed to the forward (o = its output). */
    void* q_ptr;
    void* k_ptr;
    void* v_ptr;
    void* o_ptr;
    int64_t q_batch_stride;
    int64_t k_batch_stride;
    int64_t v_batch_stride;
    int64_t o_batch_stride;
    int64_t q_row_stride;
    int64_t k_row_stride;
    int64_t v_row_stride;
    int64_t o_row_stride;
    int64_t q_head_stride;
    int64_t k_head_stride;
    int64_t v_head_stride;
    int64_t o_head_stride;

    int32_t b;
    int32_t seqlen_q;
    int32_t seqlen_k;
    int32_t d;
    int32_t dv;
    int32_t h;
    int32_t h_k;
    int32_t total_q;

    /* Required: the forward's LSE, fp32 [b, h, sq] or [h, total_q] (varlen). (FA2 does not check it.) */
    void* softmax_lse_ptr;
    float scale_softmax;
    float softcap;
    float p_dropout;
    int32_t is_causal;
    int32_t window_size_left;
    int32_t window_size_right;
    void* alibi_slopes_ptr;
    int64_t alibi_slopes_batch_stride;
    uint64_t philox_seed;
    uint64_t philox_offset;
    void* cu_seqlens_q;
    void* cu_seqlens_k;
    void* seqused_q;
    void* seqused_k;

    /* --- Backward part ---------------------------------------------------------------------------- */
    /* dO [like o], read. dQ [like q], dK [like k], dV [like v], written (for GQA/MQA dK/dV are the sums
     * over the query heads of each KV head, in the h_k-head layout). */
    void* do_ptr;
    void* dq_ptr;
    void* dk_ptr;
    void* dv_ptr;
    int64_t do_batch_stride;
    int64_t dq_batch_stride;
    int64_t dk_batch_stride;
    int64_t dv_batch_stride;
    int64_t do_row_stride;
    int64_t dq_row_stride;
    int64_t dk_row_stride;
    int64_t dv_row_stride;
    int64_t do_head_stride;
    int64_t dq_head_stride;
    int64_t dk_head_stride;
    int64_t dv_head_stride;
    /* Optional fp32 output softmax_d = rowsum(dO * O) (FA2's dsoftmax_sum), [b, h, sq] or [h, total_q]. */
    void* dsoftmax_sum;
    /* 1: dQ/dK/dV bitwise repeatable run to run (may cost speed). Default 0. */
    int32_t deterministic;
    int32_t reserved1;
} flash_bwd_params;

/* Fill defaults: zeroes everything, then struct_size, device_type = FLASH_DEVICE_CUDA, dtype = BF16,
 * window_size_left/right = -1. Returns FLASH_ERROR_INVALID_ARGUMENT for NULL. */
FLASH_API int32_t flash_fwd_params_init(flash_fwd_params* params);
FLASH_API int32_t flash_bwd_params_init(flash_bwd_params* params);

/* ------------------------------------------------------------------------------------------------------ */
/* Entry points                                                                                          */
/*
 * workspace: caller-owned scratch on the params' device (host memory for the CPU) of at least the size the
 * matching *_workspace_size() reports for the same params, 16-byte aligned on CUDA (cudaMalloc's pointers are;
 * a misaligned one is refused with FLASH_ERROR_INVALID_ARGUMENT); may be NULL when that size is 0. The library
 * allocates nothing on these paths. stream: a cudaStream_t (NULL = the legacy default stream); ignored by the
 * CPU backend, which runs synchronously on the calling thread plus its worker threads.
 * GPU calls are asynchronous: a FLASH_OK means validated and enqueued.
 */
FLASH_API int32_t flash_fwd_workspace_size(const flash_fwd_params* params, uint64_t* bytes);
FLASH_API int32_t flash_fwd(const flash_fwd_params* params, void* workspace, uint64_t workspace_bytes, void* stream);

FLASH_API int32_t flash_fwd_kvcache_workspace_size(const flash_fwd_params* params, uint64_t* bytes);
FLASH_API int32_t flash_fwd_kvcache(const flash_fwd_params* params, void* workspace, uint64_t workspace_bytes,
                                    void* stream);

FLASH_API int32_t flash_bwd_workspace_size(const flash_bwd_params* params, uint64_t* bytes);
FLASH_API int32_t flash_bwd(const flash_bwd_params* params, void* workspace, uint64_t workspace_bytes, void* stream);

/* ------------------------------------------------------------------------------------------------------ */
/* Self-description                                                                                       */

typedef enum flash_field_kind {
    FLASH_FIELD_U64 = 1,
    FLASH_FIELD_I64 = 2,
    FLASH_FIELD_I32 = 3,
    FLASH_FIELD_F32 = 4,
    FLASH_FIELD_PTR = 5
} flash_field_kind;

typedef struct flash_field_info {
    const char* name; /* the C field name */
    uint32_t offset;  /* offsetof in bytes */
    uint32_t size;    /* sizeof in bytes */
    uint32_t kind;    /* flash_field_kind */
    uint32_t reserved;
} flash_field_info;

typedef enum flash_params_kind { FLASH_PARAMS_FWD = 1, FLASH_PARAMS_BWD = 2 } flash_params_kind;

/* Table of every field of the struct named by `which` (flash_params_kind), in declaration order; writes the
 * count to *count. NULL (and *count = 0) for an unknown kind. */
FLASH_API const flash_field_info* flash_params_layout(int32_t which, uint32_t* count);
/* sizeof the struct named by `which`, 0 for an unknown kind. */
FLASH_API uint64_t flash_params_sizeof(int32_t which);
/* A static JSON object describing the build: {"version", "abi", "backends": ["cpu", "cuda"?],
 * "cuda_archs": [80, 90, ...], "cuda_runtime": 13000, "head_dims": [...], "dtypes": [...],
 * "features": {"fwd": [...], "bwd": [...], "kvcache": [...]}, "cpu_simd": "avx2"|...}. */
FLASH_API const char* flash_build_info(void);

/* ------------------------------------------------------------------------------------------------------ */
/* Device utilities (thin, checked wrappers of the CUDA runtime, so a binding needs nothing else).         */
/* On a build or machine without CUDA, flash_device_count reports 0 and the others return                  */
/* FLASH_ERROR_UNSUPPORTED.                                                                                */

typedef struct flash_device_properties {
    uint64_t struct_size;       /* set by the caller to sizeof(flash_device_properties) */
    char name[256];             /* NUL-terminated */
    int32_t major;              /* compute capability */
    int32_t minor;
    int32_t multiprocessor_count;
    int32_t max_shared_memory_per_block_optin; /* bytes */
    uint64_t total_global_mem;  /* bytes */
    int32_t l2_cache_size;      /* bytes */
    int32_t memory_bus_width;   /* bits */
    int32_t memory_clock_khz;   /* kHz, 0 where the runtime no longer reports it */
    int32_t reserved;
} flash_device_properties;

typedef enum flash_memcpy_kind {
    FLASH_MEMCPY_HOST_TO_HOST = 0,
    FLASH_MEMCPY_HOST_TO_DEVICE = 1,
    FLASH_MEMCPY_DEVICE_TO_HOST = 2,
    FLASH_MEMCPY_DEVICE_TO_DEVICE = 3,
    FLASH_MEMCPY_DEFAULT = 4 /* inferred from the pointers (unified addressing) */
} flash_memcpy_kind;

FLASH_API int32_t flash_device_count(int32_t* count);
FLASH_API int32_t flash_device_get_properties(int32_t device, flash_device_properties* props);
FLASH_API int32_t flash_set_device(int32_t device);
FLASH_API int32_t flash_get_device(int32_t* device);
FLASH_API int32_t flash_device_synchronize(void);
FLASH_API int32_t flash_malloc(void** ptr, uint64_t bytes);
FLASH_API int32_t flash_free(void* ptr);
FLASH_API int32_t flash_memcpy(void* dst, const void* src, uint64_t bytes, int32_t kind);
FLASH_API int32_t flash_memcpy_async(void* dst, const void* src, uint64_t bytes, int32_t kind, void* stream);
FLASH_API int32_t flash_memset(void* ptr, int32_t value, uint64_t bytes);
FLASH_API int32_t flash_memset_async(void* ptr, int32_t value, uint64_t bytes, void* stream);
FLASH_API int32_t flash_stream_create(void** stream);
FLASH_API int32_t flash_stream_destroy(void* stream);
FLASH_API int32_t flash_stream_synchronize(void* stream);
FLASH_API int32_t flash_event_create(void** event);
FLASH_API int32_t flash_event_destroy(void* event);
FLASH_API int32_t flash_event_record(void* event, void* stream);
/* FLASH_OK when complete, FLASH_ERROR_NOT_READY while pending (flash_last_error is not set for that). */
FLASH_API int32_t flash_event_query(void* event);
FLASH_API int32_t flash_event_synchronize(void* event);
FLASH_API int32_t flash_event_elapsed_ms(float* ms, void* start, void* end);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLASH_H */
