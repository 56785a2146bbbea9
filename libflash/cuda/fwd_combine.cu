// Split-KV combine: O = sum_s exp(lse_s - L) * O_s with L = log sum_s exp(lse_s) (FA2's rule: an empty
// split has lse_s = -inf; a row whose splits are all empty gets O = 0 and L = +inf).
#include <cuda_runtime.h>

#include "api/error.h"
#include "fwd_launch.h"
#include "launch_ex.h"
#include "primitives/fragment.cuh"
#include "primitives/griddep.cuh"

namespace flash::cuda {

namespace {

constexpr int kCombineRowsPerWarp = 4;
constexpr int kCombineWarps = 4;
constexpr int kCombineRows = kCombineRowsPerWarp * kCombineWarps;

template <bool kBf16>
__global__ void __launch_bounds__(32 * kCombineWarps) fwd_combine_kernel(const __grid_constant__ FwdParams p, int acc_d) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int hi = blockIdx.y, bi = blockIdx.z;
    int64_t q_row0 = 0;
    int sq = p.seqlen_q;
    if (p.cu_seqlens_q) {
        q_row0 = p.cu_seqlens_q[bi];
        sq = p.cu_seqlens_q[bi + 1] - p.cu_seqlens_q[bi];
    }
    if (p.seqused_q) sq = p.seqused_q[bi];
    const int ns = p.num_splits;
    const int64_t acc_row0 = p.cu_seqlens_q ? q_row0 : int64_t(bi) * p.seqlen_q;
    uint16_t* gO = static_cast<uint16_t*>(p.o) + (p.cu_seqlens_q ? 0 : int64_t(bi) * p.o_batch) +
                   q_row0 * p.o_row + int64_t(hi) * p.o_head;

    for (int rr = 0; rr < kCombineRowsPerWarp; ++rr) {
        const int i = blockIdx.x * kCombineRows + warp * kCombineRowsPerWarp + rr;
        if (i >= sq) break;
        const int64_t arow = acc_row0 + i;
        float mx = -INFINITY;
        for (int s = lane; s < ns; s += 32) mx = fmaxf(mx, p.lse_accum[(int64_t(s) * p.h + hi) * p.acc_rows + arow]);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        float sum = 0.f;
        if (mx != -INFINITY)
            for (int s = lane; s < ns; s += 32) sum += __expf(p.lse_accum[(int64_t(s) * p.h + hi) * p.acc_rows + arow] - mx);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const bool any = mx != -INFINITY && sum > 0.f && sum == sum;
        const float L = any ? mx + __logf(sum) : INFINITY;

        uint16_t* orow = gO + int64_t(i) * p.o_row;
        for (int c = lane * 4; c < p.dv; c += 128) {
            float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
            if (any) {
                for (int s = 0; s < ns; ++s) {
                    const int64_t r = (int64_t(s) * p.h + hi) * p.acc_rows + arow;
                    const float w = __expf(p.lse_accum[r] - L);
                    if (w == 0.f) continue;
                    const float4 v = *reinterpret_cast<const float4*>(p.o_accum + r * acc_d + c);
                    acc.x += w * v.x;
                    acc.y += w * v.y;
                    acc.z += w * v.z;
                    acc.w += w * v.w;
                }
            }
            const float vals[4] = {acc.x, acc.y, acc.z, acc.w};
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (c + k < p.dv) orow[c + k] = prim::from_float<kBf16>(vals[k]);
        }
        if (p.lse && lane == 0) {
            const int64_t idx = p.lse_unpadded ? int64_t(hi) * p.total_q + q_row0 + i
                                               : (int64_t(bi) * p.h + hi) * p.seqlen_q + i;
            p.lse[idx] = L;
        }
    }
}

// One warp per row, four rows per CTA: grid (tail tile, block_m / 4). The rows of a tile are packed (query row *
// group + head in the group; group 1 when the grid is not packed). Tile i's key blocks [i nblk, (i + 1) nblk)
// meet the ranges of CTAs c0 .. c1: usually 2-3 pieces, whose LSEs and O chunks are all loaded before any is
// used (a row is two dependent rounds of loads, not one per piece: latency, not bandwidth, bounds this kernel).
constexpr int kTailRowsPerCta = 4;
constexpr int kTailPieces = 4; // pieces held in registers; a tile with more (ranges much shorter than a tile) loops
template <bool kBf16>
__global__ void __launch_bounds__(32 * kTailRowsPerCta)
    fwd_tail_combine_kernel(const __grid_constant__ FwdParams p, const __grid_constant__ TailCombine tc) {
    prim::griddep_wait(); // launched while the pieces ran: their partials are complete and visible after this
    const int lane = threadIdx.x & 31;
    const int pm = blockIdx.y * kTailRowsPerCta + (threadIdx.x >> 5);
    if (pm >= tc.block_m) return;
    const int i = blockIdx.x, tile = tc.base + i;
    const int per_batch = tc.m_blocks * tc.heads;
    const int bi = tile / per_batch, hs = (tile - bi * per_batch) / tc.m_blocks;
    const int mb = tile - bi * per_batch - hs * tc.m_blocks;
    const int qr = pm / p.group, qi = mb * tc.q_rows + qr, qh = hs * p.group + pm - qr * p.group;
    if (qr >= tc.q_rows || qi >= p.seqlen_q) return;
    const int64_t x0 = int64_t(i) * tc.nblk;
    // The CTA whose range [c blocks / ctas, (c + 1) blocks / ctas) holds key block x.
    auto cta_of = [&](int64_t x) { return int(((x + 1) * tc.ctas + tc.blocks - 1) / tc.blocks) - 1; };
    const int c0 = cta_of(x0), n = cta_of(x0 + tc.nblk - 1) - c0 + 1;
    // CTA c's piece here is its first one (partial row c) if its range starts in this tile, else its second; only
    // c0's range can start before the tile.
    const int64_t first = int64_t(c0) * tc.blocks / tc.ctas < x0 ? tc.ctas + c0 : c0;
    auto row_of = [&](int j) { return ((j == 0 ? first : c0 + j)) * tc.block_m + pm; };

    float lse[kTailPieces];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kTailPieces; ++j) {
        lse[j] = j < n ? tc.lse_acc[row_of(j)] : -INFINITY;
        mx = fmaxf(mx, lse[j]);
    }
    for (int j = kTailPieces; j < n; ++j) mx = fmaxf(mx, tc.lse_acc[row_of(j)]);
    float sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
        for (int j = 0; j < kTailPieces; ++j) sum += j < n ? __expf(lse[j] - mx) : 0.f;
        for (int j = kTailPieces; j < n; ++j) sum += __expf(tc.lse_acc[row_of(j)] - mx);
    }
    const bool any = mx != -INFINITY && sum > 0.f && sum == sum;
    const float L = any ? mx + __logf(sum) : INFINITY;
    float w[kTailPieces];
#pragma unroll
    for (int j = 0; j < kTailPieces; ++j) w[j] = any && j < n ? __expf(lse[j] - L) : 0.f;

    uint16_t* orow = static_cast<uint16_t*>(p.o) + int64_t(bi) * p.o_batch + int64_t(qi) * p.o_row + int64_t(qh) * p.o_head;
    for (int col = lane * 4; col < p.dv; col += 128) {
        float4 v[kTailPieces];
#pragma unroll
        for (int j = 0; j < kTailPieces; ++j)
            v[j] = j < n ? *reinterpret_cast<const float4*>(tc.o_acc + row_of(j) * tc.acc_d + col)
                         : make_float4(0.f, 0.f, 0.f, 0.f);
        float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int j = 0; j < kTailPieces; ++j) {
            acc.x += w[j] * v[j].x;
            acc.y += w[j] * v[j].y;
            acc.z += w[j] * v[j].z;
            acc.w += w[j] * v[j].w;
        }
        for (int j = kTailPieces; j < n && any; ++j) {
            const int64_t r = row_of(j);
            const float wj = __expf(tc.lse_acc[r] - L);
            const float4 vj = *reinterpret_cast<const float4*>(tc.o_acc + r * tc.acc_d + col);
            acc.x += wj * vj.x;
            acc.y += wj * vj.y;
            acc.z += wj * vj.z;
            acc.w += wj * vj.w;
        }
        if (col + 4 <= p.dv) { // 8-byte store when the row allows it
            const uint32_t lo = prim::pack2<kBf16>(acc.x, acc.y), hi = prim::pack2<kBf16>(acc.z, acc.w);
            if ((reinterpret_cast<uintptr_t>(orow + col) & 7u) == 0) {
                *reinterpret_cast<uint2*>(orow + col) = make_uint2(lo, hi);
                continue;
            }
        }
        const float vals[4] = {acc.x, acc.y, acc.z, acc.w};
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (col + k < p.dv) orow[col + k] = prim::from_float<kBf16>(vals[k]);
    }
    if (p.lse && lane == 0) {
        const int64_t idx = p.lse_unpadded ? int64_t(qh) * p.total_q + qi : (int64_t(bi) * p.h + qh) * p.seqlen_q + qi;
        p.lse[idx] = L;
    }
}

} // namespace

int32_t run_fwd_tail_combine(const FwdParams& p, const TailCombine& tc, bool bf16, bool pdl, cudaStream_t stream) {
    const dim3 grid(unsigned(tc.tiles), unsigned((tc.block_m + kTailRowsPerCta - 1) / kTailRowsPerCta));
    const dim3 block(32 * kTailRowsPerCta);
    const cudaError_t e = bf16 ? launch_ex(fwd_tail_combine_kernel<true>, grid, block, 0, stream, pdl, p, tc)
                               : launch_ex(fwd_tail_combine_kernel<false>, grid, block, 0, stream, pdl, p, tc);
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "fwd tail combine launch");
    return FLASH_OK;
}

int32_t run_fwd_combine(const FwdParams& p, int acc_d, bool bf16, cudaStream_t stream) {
    const dim3 grid((p.seqlen_q + kCombineRows - 1) / kCombineRows, p.h, p.b);
    if (bf16) fwd_combine_kernel<true><<<grid, 32 * kCombineWarps, 0, stream>>>(p, acc_d);
    else fwd_combine_kernel<false><<<grid, 32 * kCombineWarps, 0, stream>>>(p, acc_d);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "fwd combine launch");
    return FLASH_OK;
}

} // namespace flash::cuda
