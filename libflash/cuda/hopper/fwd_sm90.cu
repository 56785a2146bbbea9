// Host side of the Hopper forward: which problems take it, the tensor maps, the instantiation switch.
// Everything this path does not cover returns *taken = false and runs on the sm80 kernel instead, so the
// user never picks a path (flash_last_kernel() says which one ran).
#include "fwd_sm90.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <vector>

#include "api/error.h"
#include "../attn_params.h"
#include "../device_info.h"
#include "fwd_sm90_config.h"
#include "sm90_env.h"
#include "tensor_map.h"

namespace flash::cuda::sm90 {

namespace {

[[maybe_unused]] bool compiled(int dim) {
    switch (dim) {
#ifdef FLASH_HDIM_64
    case 64: return true;
#endif
#ifdef FLASH_HDIM_128
    case 128: return true;
#endif
#ifdef FLASH_HDIM_192
    case 192: return true;
#endif
#ifdef FLASH_HDIM_256
    case 256: return true;
#endif
    default: return false;
    }
}


// The Hopper instantiation p runs on, 0 when this path does not take p. Mirrors the rules of the header.
int covered_dim(const FwdProblem& p, int num_splits) {
#ifndef FLASH_HAS_SM90A
    (void)p, (void)num_splits;
    return 0;
#else
    if (disabled_by_env() || num_splits != 1 || p.dropout.p > 0.f || p.alibi != nullptr) return 0;
    const int dim = sm90_dim(std::max(p.d, p.dv));
    if (dim == 0 || !compiled(dim)) return 0;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    if (!(aligned16(p.q, p.sq_, !vq) && aligned16(p.k, p.sk_, !vk) && aligned16(p.v, p.sv_, !vk) &&
          aligned16(p.o, p.so_, !vq)))
        return 0;
    DevInfo di;
    if (device_info(p.device_id, &di) != FLASH_OK) {
        clear_error();
        return 0;
    }
    return di.major == 9 && di.minor == 0 ? dim : 0;
#endif
}

// The dynamic schedule's tile counter (one int, 256-byte slot).
constexpr uint64_t kCounterBytes = 256;

// GQA packing (params.pack_gqa; the heuristic is FA3's rule): pack a K/V head's `group` query heads into the
// tile rows when that fills the tiles clearly better, i.e. when the rows a query length leaves empty in its
// last (or only) tile are a large share. Packed tiles hold block_m / group query rows, so a group larger than
// block_m cannot pack.
bool pack_gqa(const FwdProblem& p, int bm) {
    if (p.group <= 1 || p.group > bm || p.pack_gqa < 0) return false;
    if (p.pack_gqa > 0) return true;
    const int rows = bm / p.group; // query rows per packed tile
    const double plain = double(p.seqlen_q) / (double((p.seqlen_q + bm - 1) / bm) * bm);
    const double packed = double(p.seqlen_q) * p.group / (double((p.seqlen_q + rows - 1) / rows) * bm);
    return plain < 0.9 * packed;
}

} // namespace

uint64_t workspace_bytes(const FwdProblem& p, int num_splits) {
    const int dim = covered_dim(p, num_splits);
    if (dim == 0) return 0;
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    const Sm90Tile t = sm90_tile(dim, masked, sm90_pick(dim, masked, p.seqlen_k, p.softcap > 0.f));
    return t.persistent && t.dynamic ? kCounterBytes : 0;
}

int32_t try_fwd(const FwdProblem& p, const FwdParams& k, int num_splits, void* workspace, cudaStream_t stream,
                bool* taken) {
    *taken = false;
#ifndef FLASH_HAS_SM90A
    (void)p, (void)k, (void)num_splits, (void)workspace, (void)stream;
    return FLASH_OK;
#else
    const int dim = covered_dim(p, num_splits);
    if (dim == 0) return FLASH_OK;
    DevInfo di;
    if (int32_t st = device_info(p.device_id, &di); st != FLASH_OK) return st;
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    const int alt = sm90_pick(dim, masked, p.seqlen_k, p.softcap > 0.f);
    const Sm90Tile t = sm90_tile(dim, masked, alt);
    const int bm = 64 * t.consumers;

    Sm90Params sp;
    std::memset(&sp, 0, sizeof sp);
    sp.f = k;
    const bool bf16 = p.dtype == DType::BF16;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    // Varlen K has no host-known total length: the kernel never reads past a sequence's last key (its last
    // box ends there), so the row extent only has to be large enough.
    const bool pack = pack_gqa(p, bm);
    const int q_rows = pack ? bm / p.group : bm;
    const uint64_t qrows_total = uint64_t(vq ? p.total_q : p.seqlen_q);
    // Packed: the head is the box's second dimension, so a box of group x q_rows lands in shared memory as
    // packed rows r * group + g.
    const TensorView qv = pack ? TensorView{p.q, uint64_t(p.d), uint64_t(p.h), qrows_total, uint64_t(vq ? 1 : p.b),
                                            p.sq_.head, p.sq_.row, p.sq_.batch}
                               : TensorView{p.q, uint64_t(p.d), qrows_total, uint64_t(p.h), uint64_t(vq ? 1 : p.b),
                                            p.sq_.row, p.sq_.head, p.sq_.batch};
    const uint64_t krows = vk ? uint64_t(INT_MAX) : uint64_t(p.seqlen_k);
    const TensorView kv{p.k, uint64_t(p.d), krows, uint64_t(p.hk), uint64_t(vk ? 1 : p.b), p.sk_.row, p.sk_.head,
                        p.sk_.batch};
    const TensorView vv{p.v, uint64_t(p.dv), krows, uint64_t(p.hk), uint64_t(vk ? 1 : p.b), p.sv_.row, p.sv_.head,
                        p.sv_.batch};
    if ((pack ? make_tensor_map(&sp.tm_q, qv, bf16, 64, uint32_t(p.group), uint32_t(q_rows))
              : make_tensor_map(&sp.tm_q, qv, bf16, 64, uint32_t(bm))) != FLASH_OK ||
        make_tensor_map(&sp.tm_k, kv, bf16, 64, uint32_t(t.block_n)) != FLASH_OK ||
        make_tensor_map(&sp.tm_v, vv, bf16, 64, uint32_t(t.block_n)) != FLASH_OK) {
        clear_error(); // an unusual stride the copy engine cannot describe: the sm80 kernel takes it
        return FLASH_OK;
    }
    if (t.tma_o && !pack) { // else (or an O the copy engine cannot describe) O leaves by ordinary stores
        const TensorView ov{p.o, uint64_t(p.dv), uint64_t(vq ? p.total_q : p.seqlen_q), uint64_t(p.h),
                            uint64_t(vq ? 1 : p.b), p.so_.row, p.so_.head, p.so_.batch};
        sp.tma_o = make_tensor_map(&sp.tm_o, ov, bf16, 64, 64) == FLASH_OK ? 1 : 0;
        if (!sp.tma_o) clear_error();
    }
    sp.pack = pack ? 1 : 0;
    sp.q_rows = q_rows;
    sp.tile_heads = pack ? p.hk : p.h;
    sp.q_bytes = uint32_t(dim / 64) * uint32_t(q_rows * (pack ? p.group : 1)) * 128u;
    sp.div_group = FastDiv(uint32_t(p.group));
    sp.m_blocks = (p.seqlen_q + q_rows - 1) / q_rows;
    const int64_t tiles = int64_t(sp.m_blocks) * sp.tile_heads * p.b;
    if (tiles > INT_MAX) return FLASH_OK;
    sp.div_mblocks = FastDiv(uint32_t(sp.m_blocks));
    sp.div_head_mblocks = FastDiv(uint32_t(sp.m_blocks) * uint32_t(sp.tile_heads));
    // Persistent: one CTA per SM (a CTA fills an SM's shared memory) striding over the tiles, so the next
    // tile's loads overlap this one's epilogue; otherwise one CTA per tile.
    const bool dynamic = t.persistent && t.dynamic;
    if (dynamic) {
        if (workspace == nullptr) return set_error(FLASH_ERROR_INTERNAL, "sm90 fwd: no workspace for the tile counter");
        sp.tile_counter = static_cast<int*>(workspace);
        if (const cudaError_t e = cudaMemsetAsync(workspace, 0, sizeof(int), stream); e != cudaSuccess)
            return set_cuda_error(e, cudaGetErrorString(e), "cudaMemsetAsync(sm90 tile counter)");
    }
    // A persistent-compiled kernel launched with one CTA per tile runs one tile per CTA (its next tile is
    // past the end): long tiles amortize their own prologue, and the hardware balances them best.
    const bool persist = t.persistent && (t.persist_max_n == 0 || p.seqlen_k <= int64_t(t.persist_max_n) * t.block_n);
    const dim3 grid(unsigned(persist ? std::min<int64_t>(tiles, di.sms) : tiles));
    const bool softcap = p.softcap > 0.f;
    int32_t st = FLASH_ERROR_INTERNAL;
#define FLASH_SM90_CASE(D)                                                                                 \
    case D:                                                                                                \
        st = bf16 ? (masked ? run_fwd_sm90<true, D, true>(sp, grid, softcap, alt, stream)                       \
                            : run_fwd_sm90<true, D, false>(sp, grid, softcap, alt, stream))                     \
                  : (masked ? run_fwd_sm90<false, D, true>(sp, grid, softcap, alt, stream)                      \
                            : run_fwd_sm90<false, D, false>(sp, grid, softcap, alt, stream));                   \
        break;
#ifdef FLASH_SM90_TRACE
    // Diagnostic builds only (bench/gpu/trace_fwd.py): a buffer that grows with the grid, zeroed per call.
    static long long* trace_buf = nullptr;
    static size_t trace_cap = 0;
    const size_t trace_bytes = size_t(grid.x) * 3 * 32 * 16 * sizeof(long long);
    if (trace_bytes > trace_cap) {
        if (trace_buf) cudaFree(trace_buf);
        trace_cap = 0;
        if (const cudaError_t e = cudaMalloc(&trace_buf, trace_bytes); e != cudaSuccess)
            return set_cuda_error(e, cudaGetErrorString(e), "cudaMalloc(sm90 trace)");
        trace_cap = trace_bytes;
    }
    if (const cudaError_t e = cudaMemsetAsync(trace_buf, 0, trace_bytes, stream); e != cudaSuccess)
        return set_cuda_error(e, cudaGetErrorString(e), "cudaMemsetAsync(sm90 trace)");
    sp.trace = trace_buf;
#endif
    switch (dim) {
#ifdef FLASH_HDIM_64
        FLASH_SM90_CASE(64)
#endif
#ifdef FLASH_HDIM_128
        FLASH_SM90_CASE(128)
#endif
#ifdef FLASH_HDIM_192
        FLASH_SM90_CASE(192)
#endif
#ifdef FLASH_HDIM_256
        FLASH_SM90_CASE(256)
#endif
    default:
        return FLASH_OK;
    }
#undef FLASH_SM90_CASE
#ifdef FLASH_SM90_TRACE
    if (const char* f = std::getenv("FLASH_SM90_TRACE_FILE"); f && st == FLASH_OK) {
        std::vector<long long> h(trace_bytes / sizeof(long long));
        cudaError_t e = cudaMemcpyAsync(h.data(), trace_buf, trace_bytes, cudaMemcpyDeviceToHost, stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "sm90 trace readback");
        if (FILE* fp = std::fopen(f, "wb")) {
            std::fwrite(h.data(), 1, trace_bytes, fp);
            std::fclose(fp);
        }
    }
#endif
    *taken = true;
    if (st == FLASH_OK) set_kernel(pack ? "cuda.sm90.fwd.packgqa" : "cuda.sm90.fwd");
    return st;
#endif
}

} // namespace flash::cuda::sm90
