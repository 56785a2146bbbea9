// Host side of the Hopper forward: which problems take it, the tensor maps, the instantiation switch.
// Everything this path does not cover returns *taken = false and runs on the sm80 kernel instead, so the
// user never picks a path (flash_last_kernel() says which one ran).
#include "fwd_sm90.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <vector>

#include "api/error.h"
#include "../attn_params.h"
#include "../device_info.h"
#include "../fwd_launch.h"
#include "../split_heuristic.h"
#include "../tile_order.h"
#include "fwd_sm90_config.h"
#include "sm90_env.h"
#include "tensor_map.h"

namespace flash::cuda::sm90 {

// The narrow-V instantiation (192 / 128, sm90_dim_v) comes with d192's files; FLASH_SM90_NO_MLA (A/B builds only)
// leaves it out, so that dv <= 128 runs on the d192 kernel with V padded.
#if defined(FLASH_HDIM_192) && !defined(FLASH_SM90_NO_MLA)
#define FLASH_SM90_MLA 1
#else
#define FLASH_SM90_MLA 0
#endif

namespace {

// Whether the instantiation (dim, dim_v) is in this build (dim_v: its V/O width, sm90_dim_v).
[[maybe_unused]] bool compiled(int dim, int dim_v) {
    if (dim_v != dim) return FLASH_SM90_MLA && dim == 192 && dim_v == 128;
    switch (dim) {
#ifdef FLASH_HDIM_64
    case 64: return true;
#endif
#if defined(FLASH_HDIM_96) && !defined(FLASH_SM90_NO96) // NO96: A/B builds only (65..96 on the d128 kernel)
    case 96: return true;
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


// The Hopper instantiation for p's head dims when this path covers p apart from splitting, else 0; *dim_v its
// V/O width. Mirrors the rules of the header.
int covered_dim(const FwdProblem& p, DevInfo* di, int* dim_v) {
#ifndef FLASH_HAS_SM90A
    (void)p, (void)di, (void)dim_v;
    return 0;
#else
    if (disabled_by_env() || p.dropout.p > 0.f || p.alibi != nullptr) return 0;
    // The smallest compiled instantiation holding max(d, dv): sm90_dim's choice, or a larger one in a build with
    // fewer head dims (FLASH_HEAD_DIMS), as the sm80 path does.
    int dim = sm90_dim(std::max(p.d, p.dv));
    while (dim != 0 && !compiled(dim, dim)) dim = sm90_dim(dim + 1);
    if (dim == 0) return 0;
    const int narrow = sm90_dim_v(dim, p.dv);
    *dim_v = compiled(dim, narrow) ? narrow : dim;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    if (!(aligned16(p.q, p.sq_, !vq) && aligned16(p.k, p.sk_, !vk) && aligned16(p.v, p.sv_, !vk) &&
          aligned16(p.o, p.so_, !vq)))
        return 0;
    if (device_info(p.device_id, di) != FLASH_OK) {
        clear_error();
        return 0;
    }
    return di->major == 9 && di->minor == 0 ? dim : 0;
#endif
}

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

// Tail split threshold (FLASH_SM90_TAIL: 0 turns it off, N sets it): the work the partial last wave leaves
// idle, nblk * (ctas - tail) / ctas key blocks of one tile, counted in d128 blocks (128 x 128 x (128 + 128)
// multiply-adds, ~1.7 us on an H200 SM), must reach it. The split costs about 10-20 us whatever the size (the
// pieces' prologues, the combine after them): measured 0.94-0.97x at 4 such blocks, ~0.97-1.0 at 8,
// 1.01-1.02 at 16, up to 1.03 at 62 (bench/NOTES.md "Hopper forward" step 28).
#ifndef FLASH_SM90_TAIL_DEFAULT
#define FLASH_SM90_TAIL_DEFAULT 12
#endif
int tail_min_blocks() {
    static const int v = [] {
        const char* e = std::getenv("FLASH_SM90_TAIL");
        return e && *e ? std::atoi(e) : FLASH_SM90_TAIL_DEFAULT;
    }();
    return v;
}

// The tail split (Choice::tail_tiles) for an unmasked dense problem on a persistent static row.
void choose_tail(const FwdProblem& p, const Sm90Tile& t, int sms, Choice* c) {
    const bool dense = p.cu_seqlens_q == nullptr && p.cu_seqlens_k == nullptr && p.seqused_q == nullptr &&
                       p.seqused_k == nullptr && p.leftpad_k == nullptr;
    const int min_blocks = tail_min_blocks();
    if (min_blocks <= 0 || c->splits != 1 || !dense || !(c->pack || p.group == 1) || !t.persistent || t.dynamic)
        return;
    const int64_t nblk = (int64_t(p.seqlen_k) + t.block_n - 1) / t.block_n;
    if (t.persist_max_n > 0 && nblk > t.persist_max_n) return; // launched one CTA per tile: no partial wave
    const int q_rows = c->pack ? c->block_m / p.group : c->block_m;
    const int64_t tiles = int64_t(p.b) * (c->pack ? p.hk : p.h) * ((int64_t(p.seqlen_q) + q_rows - 1) / q_rows);
    const int64_t tail = tiles % sms;
    if (tiles <= sms || tail == 0 || tiles > INT_MAX || tail * nblk < sms) return;
    const double block = double(c->block_m) * t.block_n * (t.d + t.dv) / (128.0 * 128.0 * 256.0);
    if (double(nblk) * double(sms - tail) / sms * block < min_blocks) return;
    c->tail_tiles = int(tail);
    c->tail_ctas = sms;
}

} // namespace

int32_t choose(const FwdProblem& p, Choice* c) {
    *c = Choice{};
    DevInfo di;
    int dv = 0;
    const int dim = covered_dim(p, &di, &dv);
    if (dim == 0) return FLASH_OK;
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0, softcap = p.softcap > 0.f;
    // A split runs packed (group 1 packs trivially), so it needs packing allowed and (checked below, once the
    // row is known) a group that fits the row's tile.
    const bool can_split = p.group == 1 || p.pack_gqa >= 0;
    int ns = p.num_splits;
    if (ns == 0) {
        const Sm90Tile t = sm90_tile(dim, dv, masked, sm90_pick(dim, dv, masked, p.seqlen_k, softcap));
        const int bm = 64 * t.consumers;
        const bool pk = pack_gqa(p, bm);
        const int64_t rows = pk ? int64_t(p.seqlen_q) * p.group : p.seqlen_q;
        const int64_t tiles = int64_t(p.b) * (pk ? p.hk : p.h) * ((rows + bm - 1) / bm);
        ns = 1;
        if (tiles > 0 && tiles < int64_t(0.8 * di.sms)) {
            // Splits run packed: count the packed tiles.
            const int64_t split_tiles =
                can_split ? int64_t(p.b) * p.hk * ((int64_t(p.seqlen_q) * p.group + bm - 1) / bm) : tiles;
            ns = num_splits_heuristic(split_tiles, di.sms, int((p.seqlen_k + t.block_n - 1) / t.block_n), 128);
        }
    }
    if (ns > 1 && !can_split) return FLASH_OK; // a split the packed kernel cannot take: the sm80 kernel splits it
    // The row follows the keys one tile sees; the count is capped at the key blocks there are.
    int alt = sm90_pick(dim, dv, masked, (int64_t(p.seqlen_k) + ns - 1) / ns, softcap);
    const int bn = sm90_tile(dim, dv, masked, alt).block_n;
    ns = std::max(1, std::min(ns, int((p.seqlen_k + bn - 1) / bn)));
    if (ns > 1) alt = sm90_pick(dim, dv, masked, (int64_t(p.seqlen_k) + ns - 1) / ns, softcap);
    const Sm90Tile t = sm90_tile(dim, dv, masked, alt);
    if (ns > 1 && p.group > 64 * t.consumers) return FLASH_OK; // the split's row cannot pack this group: sm80 splits
    c->dim = dim;
    c->dim_v = dv;
    c->alt = alt;
    c->splits = ns;
    c->pack = ns > 1 || pack_gqa(p, 64 * t.consumers);
    c->counter = t.persistent && t.dynamic;
    c->block_m = 64 * t.consumers;
    if (!masked) choose_tail(p, t, di.sms, c);
    return FLASH_OK;
}

int32_t run(const FwdProblem& p, const FwdParams& k, const Choice& c, int acc_d, int* counter, void* tail_ws,
            cudaStream_t stream, bool* taken) {
    *taken = false;
#ifndef FLASH_HAS_SM90A
    (void)p, (void)k, (void)c, (void)acc_d, (void)counter, (void)tail_ws, (void)stream;
    return FLASH_OK;
#else
    DevInfo di;
    if (int32_t st = device_info(p.device_id, &di); st != FLASH_OK) return st;
    const int dim = c.dim, dim_v = c.dim_v, alt = c.alt;
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    const Sm90Tile t = sm90_tile(dim, dim_v, masked, alt);
    const int bm = 64 * t.consumers;
    const bool split = c.splits > 1, pack = c.pack;

    Sm90Params sp{}; // value-initialized (FastDiv has member initializers: a memset drew -Wclass-memaccess)
    sp.f = k;
    const bool bf16 = p.dtype == DType::BF16;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    // Varlen K has no host-known total length: the kernel never reads past a sequence's last key (its last
    // box ends there), so the row extent only has to be large enough.
    const int q_rows = pack ? bm / p.group : bm;
    const uint64_t qrows_total = uint64_t(vq ? p.total_q : p.seqlen_q);
    // Packed: the head is the box's second dimension, so a box of group x q_rows lands in shared memory as
    // packed rows r * group + g.
    const TensorView qv_packed{p.q, uint64_t(p.d), uint64_t(p.h), qrows_total, uint64_t(vq ? 1 : p.b),
                               p.sq_.head, p.sq_.row, p.sq_.batch};
    const TensorView qv = pack ? qv_packed
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
    if (t.tma_o && !pack && !split) { // else (or an O the copy engine cannot describe) O leaves by ordinary stores
        const TensorView ov{p.o, uint64_t(p.dv), uint64_t(vq ? p.total_q : p.seqlen_q), uint64_t(p.h),
                            uint64_t(vq ? 1 : p.b), p.so_.row, p.so_.head, p.so_.batch};
        sp.tma_o = make_tensor_map(&sp.tm_o, ov, bf16, 64, 64) == FLASH_OK ? 1 : 0;
        if (!sp.tma_o) clear_error();
    }
    const bool dense = t.dense && !vq && !vk && p.seqused_q == nullptr && p.seqused_k == nullptr &&
                       p.leftpad_k == nullptr && p.softcap == 0.f;
    sp.variant = split ? kVarSplit : pack ? kVarPack : dense ? kVarDense : kVarPlain;
    sp.q_rows = q_rows;
    sp.acc_d = acc_d;
    sp.div_group = FastDiv(uint32_t(p.group));
    sp.div_splits = FastDiv(uint32_t(c.splits));
    sp.m_blocks = (p.seqlen_q + q_rows - 1) / q_rows;
    const int64_t tile_heads = pack ? p.hk : p.h;
    const int64_t tiles = int64_t(sp.m_blocks) * tile_heads * c.splits * p.b;
    if (tiles > INT_MAX) return FLASH_OK;
    sp.n_tiles = int(tiles);
    sp.div_mblocks = FastDiv(uint32_t(sp.m_blocks));
    sp.div_head_mblocks = FastDiv(uint32_t(sp.m_blocks * tile_heads * c.splits));
    { // L2 sections for masked tiles (tile_order.h; a packed pair is one K/V head, an unpacked one shares its
      // K/V head with the group's other query heads)
        const int64_t pairs = int64_t(p.b) * tile_heads;
        const int64_t sec =
            l2_section_pairs(pairs, p.seqlen_k, p.d, p.dv, pack ? 1 : p.group, sp.m_blocks, di.sms, /*rule=*/true);
        sp.n_sec = int((pairs + sec - 1) / sec);
        sp.div_sec = FastDiv(uint32_t(sec));
        sp.div_sec_last = FastDiv(uint32_t(pairs - (sp.n_sec - 1) * sec));
        sp.div_sec_tiles = FastDiv(uint32_t(sec * sp.m_blocks));
        sp.div_heads = FastDiv(uint32_t(tile_heads));
    }
    // Persistent: one CTA per SM (a CTA fills an SM's shared memory) striding over the tiles, so the next
    // tile's loads overlap this one's epilogue; otherwise one CTA per tile.
    const bool dynamic = t.persistent && t.dynamic;
    if (dynamic) {
        if (counter == nullptr) return set_error(FLASH_ERROR_INTERNAL, "sm90 fwd: no workspace for the tile counter");
        sp.tile_counter = counter;
        if (const cudaError_t e = cudaMemsetAsync(counter, 0, sizeof(int), stream); e != cudaSuccess)
            return set_cuda_error(e, cudaGetErrorString(e), "cudaMemsetAsync(sm90 tile counter)");
    }
    // A persistent-compiled kernel launched with one CTA per tile runs one tile per CTA (its next tile is
    // past the end): long tiles amortize their own prologue, and the hardware balances them best.
    const int64_t tile_keys = (int64_t(p.seqlen_k) + c.splits - 1) / c.splits;
    const bool persist = t.persistent && (t.persist_max_n == 0 || tile_keys <= int64_t(t.persist_max_n) * t.block_n);
    const dim3 grid(unsigned(persist ? std::min<int64_t>(tiles, di.sms) : tiles));
    const bool softcap = p.softcap > 0.f;
    // Tail split (choose_tail): the main launch stops before the last tail_tiles tiles, a second launch runs them
    // as key-range pieces on every SM, a third merges the pieces. Both follow as programmatic dependents, so
    // the pieces take the SMs the main grid's CTAs leave.
#ifdef FLASH_SM90_TRACE
    tail_ws = nullptr; // the trace buffer covers one launch
#endif
    bool tail = c.tail_tiles > 0 && tail_ws != nullptr && persist && !split && !dynamic;
    Sm90Params tp{};
    TailCombine tc{};
    if (tail) {
        tp = sp;
        // The pieces run on the packed kernel: without packing (group 1) its Q map has the head as the box's
        // second dimension.
        if (!pack && make_tensor_map(&tp.tm_q, qv_packed, bf16, 64, 1u, uint32_t(q_rows)) != FLASH_OK) {
            clear_error();
            tail = false;
        }
    }
    if (tail) {
        tp.tma_o = 0;
        tp.variant = kVarSplit;
        tp.acc_d = acc_d;
        tp.f.o_accum = static_cast<float*>(tail_ws);
        tp.f.lse_accum = reinterpret_cast<float*>(static_cast<char*>(tail_ws) +
                                                  ((tail_o_bytes(c, acc_d) + 255) & ~uint64_t(255)));
        tp.tail_ctas = c.tail_ctas;
        tp.tail_tiles = c.tail_tiles;
        tp.tail_base = int(tiles) - c.tail_tiles;
        tp.tail_nblk = (p.seqlen_k + t.block_n - 1) / t.block_n;
        tp.tail_blocks = int64_t(tp.tail_nblk) * c.tail_tiles;
        tp.n_tiles = 2 * c.tail_ctas;
        sp.n_tiles = tp.tail_base;
        tc = TailCombine{tp.tail_base, c.tail_tiles, tp.tail_nblk, c.tail_ctas, tp.tail_blocks, sp.m_blocks,
                         int(tile_heads), q_rows, bm, acc_d, tp.f.o_accum, tp.f.lse_accum};
    }
    int32_t st = FLASH_ERROR_INTERNAL;
    auto launch = [&](const Sm90Params& lp, dim3 g, bool pdl) {
#define FLASH_SM90_VAR(B, D, DV, M)                                                                        \
    (lp.variant == kVarSplit   ? run_fwd_sm90<B, D, DV, M, kVarSplit>(lp, g, softcap, alt, pdl, stream)    \
     : lp.variant == kVarPack  ? run_fwd_sm90<B, D, DV, M, kVarPack>(lp, g, softcap, alt, pdl, stream)     \
     : lp.variant == kVarDense ? run_fwd_sm90<B, D, DV, M, kVarDense>(lp, g, softcap, alt, pdl, stream)    \
                               : run_fwd_sm90<B, D, DV, M, kVarPlain>(lp, g, softcap, alt, pdl, stream))
#define FLASH_SM90_CASE_V(D, DV)                                                                           \
    return bf16 ? (masked ? FLASH_SM90_VAR(true, D, DV, true) : FLASH_SM90_VAR(true, D, DV, false))        \
                : (masked ? FLASH_SM90_VAR(false, D, DV, true) : FLASH_SM90_VAR(false, D, DV, false));
#define FLASH_SM90_CASE(D)                                                                                 \
    case D:                                                                                                \
        FLASH_SM90_CASE_V(D, D)
#if FLASH_SM90_MLA
        if (dim == 192 && dim_v == 128) FLASH_SM90_CASE_V(192, 128)
#endif
        if (dim_v != dim) return set_error(FLASH_ERROR_INTERNAL, "sm90 fwd: d%d / dv%d not compiled", dim, dim_v);
        switch (dim) {
#ifdef FLASH_HDIM_64
            FLASH_SM90_CASE(64)
#endif
#if defined(FLASH_HDIM_96) && !defined(FLASH_SM90_NO96)
            FLASH_SM90_CASE(96)
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
            return set_error(FLASH_ERROR_INTERNAL, "sm90 fwd: head dim %d not compiled", dim);
        }
#undef FLASH_SM90_CASE
#undef FLASH_SM90_CASE_V
#undef FLASH_SM90_VAR
    };
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
    st = launch(sp, grid, false);
    if (st == FLASH_OK && tail) {
        st = launch(tp, dim3(unsigned(c.tail_ctas)), true);
        if (st == FLASH_OK) st = run_fwd_tail_combine(tp.f, tc, bf16, true, stream);
    }
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
    if (st == FLASH_OK) {
        // ".dv128": the narrow-V instantiation (sm90_dim_v) ran.
        static const char* const kNames[2][6] = {
            {"cuda.sm90.fwd.packgqa.split", "cuda.sm90.fwd.split", "cuda.sm90.fwd.packgqa.tail",
             "cuda.sm90.fwd.packgqa", "cuda.sm90.fwd.tail", "cuda.sm90.fwd"},
            {"cuda.sm90.fwd.dv128.packgqa.split", "cuda.sm90.fwd.dv128.split", "cuda.sm90.fwd.dv128.packgqa.tail",
             "cuda.sm90.fwd.dv128.packgqa", "cuda.sm90.fwd.dv128.tail", "cuda.sm90.fwd.dv128"}};
        const int i = split ? (p.group > 1 ? 0 : 1) : pack ? (tail ? 2 : 3) : (tail ? 4 : 5);
        set_kernel(kNames[dim_v != dim ? 1 : 0][i]);
    }
    return st;
#endif
}

} // namespace flash::cuda::sm90
