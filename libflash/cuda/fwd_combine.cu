// Split-KV combine: O = sum_s exp(lse_s - L) * O_s with L = log sum_s exp(lse_s) (FA2's rule: an empty
// split has lse_s = -inf; a row whose splits are all empty gets O = 0 and L = +inf).
#include <cuda_runtime.h>

#include "api/error.h"
#include "fwd_launch.h"
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

// One CTA per (tail tile, 16 rows); the rows of a tile are packed (query row * group + head in the group; group 1
// when the grid is not packed). Tile i's key blocks [i nblk, (i + 1) nblk) meet the ranges of CTAs c0 .. c1.
template <bool kBf16>
__global__ void __launch_bounds__(32 * kCombineWarps)
    fwd_tail_combine_kernel(const __grid_constant__ FwdParams p, const __grid_constant__ TailCombine tc) {
    prim::griddep_wait(); // launched while the pieces ran: their partials are complete and visible after this
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int i = blockIdx.x, tile = tc.base + i;
    const int per_batch = tc.m_blocks * tc.heads;
    const int bi = tile / per_batch, hs = (tile - bi * per_batch) / tc.m_blocks;
    const int mb = tile - bi * per_batch - hs * tc.m_blocks;
    const int64_t x0 = int64_t(i) * tc.nblk;
    // The CTA whose range [c blocks / ctas, (c + 1) blocks / ctas) holds key block x.
    auto cta_of = [&](int64_t x) { return int(((x + 1) * tc.ctas + tc.blocks - 1) / tc.blocks) - 1; };
    const int c0 = cta_of(x0), c1 = cta_of(x0 + tc.nblk - 1);
    // CTA c's piece here is its first one (row c) if its range starts in this tile, else its second.
    auto slot = [&](int c) { return int64_t(c) * tc.blocks / tc.ctas < x0 ? tc.ctas + c : c; };
    uint16_t* gO = static_cast<uint16_t*>(p.o) + int64_t(bi) * p.o_batch;

    for (int rr = 0; rr < kCombineRowsPerWarp; ++rr) {
        const int pm = blockIdx.y * kCombineRows + warp * kCombineRowsPerWarp + rr;
        if (pm >= tc.block_m) break;
        const int qr = pm / p.group, qi = mb * tc.q_rows + qr, qh = hs * p.group + pm - qr * p.group;
        if (qr >= tc.q_rows || qi >= p.seqlen_q) continue;
        float mx = -INFINITY;
        for (int c = c0 + lane; c <= c1; c += 32) mx = fmaxf(mx, tc.lse_acc[slot(c) * tc.block_m + pm]);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        float sum = 0.f;
        if (mx != -INFINITY)
            for (int c = c0 + lane; c <= c1; c += 32) sum += __expf(tc.lse_acc[slot(c) * tc.block_m + pm] - mx);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const bool any = mx != -INFINITY && sum > 0.f && sum == sum;
        const float L = any ? mx + __logf(sum) : INFINITY;

        uint16_t* orow = gO + int64_t(qi) * p.o_row + int64_t(qh) * p.o_head;
        for (int col = lane * 4; col < p.dv; col += 128) {
            float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
            if (any) {
                for (int c = c0; c <= c1; ++c) {
                    const int64_t r = slot(c) * tc.block_m + pm;
                    const float w = __expf(tc.lse_acc[r] - L);
                    if (w == 0.f) continue;
                    const float4 v = *reinterpret_cast<const float4*>(tc.o_acc + r * tc.acc_d + col);
                    acc.x += w * v.x;
                    acc.y += w * v.y;
                    acc.z += w * v.z;
                    acc.w += w * v.w;
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
}

} // namespace

int32_t run_fwd_tail_combine(const FwdParams& p, const TailCombine& tc, bool bf16, bool pdl, cudaStream_t stream) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(unsigned(tc.tiles), unsigned((tc.block_m + kCombineRows - 1) / kCombineRows));
    cfg.blockDim = dim3(32 * kCombineWarps);
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    const cudaError_t e = bf16 ? cudaLaunchKernelEx(&cfg, fwd_tail_combine_kernel<true>, p, tc)
                               : cudaLaunchKernelEx(&cfg, fwd_tail_combine_kernel<false>, p, tc);
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
