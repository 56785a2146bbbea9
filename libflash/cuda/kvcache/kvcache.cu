// Host side of flash_fwd_kvcache on CUDA: FwdProblem (kvcache == true) -> KVParams, the split-KV plan and
// workspace, the append kernel (knew/vnew -> cache, K rotated) and the launches: append, attention (GQA
// packed, kv_kernel.cuh) and the split combine (kv_combine_kernel below).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "../../api/error.h"
#include "../cuda_backend.h"
#include "../device_info.h"
#include "../launch_ex.h"
#include "../primitives/griddep.cuh"
#include "kv_kernel.cuh"
#include "kv_launch.h"

#ifndef FLASH_HEAD_DIMS_JSON
#define FLASH_HEAD_DIMS_JSON "[]"
#endif

namespace flash::cuda {

namespace kv {

int block_n(int dim) {
    switch (dim) {
    case 32: return KVCfg<32>::kBN;
    case 64: return KVCfg<64>::kBN;
    case 96: return KVCfg<96>::kBN;
    case 128: return KVCfg<128>::kBN;
    case 192: return KVCfg<192>::kBN;
    case 256: return KVCfg<256>::kBN;
    default: return 64;
    }
}

namespace {

// Append only (seqlen_q == 0; otherwise the attention kernel appends, with append_rows in kv_kernel.cuh):
// writes knew/vnew rows into the cache at buffer positions cache_seqlens[i] + r (K rotated at that position).
// grid = (seqlen_knew * hk, b); one CTA per (row, KV head). (The kernel every decode step used before the
// append moved into the attention kernel, checked on the GPU then; kept as it was for this rare path.)
template <bool kBf16>
__global__ void __launch_bounds__(128) kv_append_kernel(const __grid_constant__ KVParams p) {
    const int bi = blockIdx.y;
    const int r = blockIdx.x / p.hk, hki = blockIdx.x % p.hk;
    const int leftpad = p.leftpad_k ? p.leftpad_k[bi] : 0;
    const int kv_batch = p.cache_batch_idx ? p.cache_batch_idx[bi] : bi;
    const int pos = p.cache_seqlens[bi] + r; // buffer position
    KVRowMap map;
    map.bt = p.block_table ? p.block_table + int64_t(bi) * p.bt_stride : nullptr;
    map.page_size = p.page_size;
    map.page_shift = p.page_shift;
    map.leftpad = leftpad;
    int64_t ko, vo;
    map.locate(pos - leftpad, p.k_batch, p.k_row, ko);
    map.locate(pos - leftpad, p.v_batch, p.v_row, vo);
    uint16_t* kd = static_cast<uint16_t*>(const_cast<void*>(p.k)) + int64_t(hki) * p.k_head + ko;
    uint16_t* vd = static_cast<uint16_t*>(const_cast<void*>(p.v)) + int64_t(hki) * p.v_head + vo;
    if (!map.bt) {
        kd += int64_t(kv_batch) * p.k_batch;
        vd += int64_t(kv_batch) * p.v_batch;
    }
    const uint16_t* ks = static_cast<const uint16_t*>(p.knew) + int64_t(bi) * p.kn_batch + int64_t(r) * p.kn_row +
                         int64_t(hki) * p.kn_head;
    const uint16_t* vs = static_cast<const uint16_t*>(p.vnew) + int64_t(bi) * p.vn_batch + int64_t(r) * p.vn_row +
                         int64_t(hki) * p.vn_head;
    const int half = p.rotary_dim >> 1;
    const uint16_t* cs = static_cast<const uint16_t*>(p.rot_cos) + int64_t(pos) * half;
    const uint16_t* sn = static_cast<const uint16_t*>(p.rot_sin) + int64_t(pos) * half;
    // Read everything first, then write: knew may alias nothing in the cache, but keep reads before writes.
    for (int c = threadIdx.x; c < p.d; c += blockDim.x) {
        const uint16_t x = c < p.rotary_dim ? rotary_elem<kBf16>(ks, c, cs, sn, p.rotary_dim, p.rot_interleaved != 0) : ks[c];
        kd[c] = x;
    }
    for (int c = threadIdx.x; c < p.dv; c += blockDim.x) vd[c] = vs[c];
}

// Split combine for the decode path: one CTA of 128 threads per (sequence, head, query row). Phase 1: the
// lse of every split (<= 256: two per thread), a block-wide max and sum -> L and the split weights
// exp(lse_s - L) in shared memory. Phase 2: thread t owns 4 columns (t % nch, nch = acc_d / 4) of the splits
// s = t / nch, t / nch + G, ... (G = 128 / nch groups), with its loads unrolled so a batch of splits costs one
// memory latency; the G group sums are added in shared memory. So a row costs about two latencies whatever
// num_splits is (the previous one-warp-per-row combine walked the splits in dependent batches: 7 us of the
// 59 us of a b=1 sk=32k decode on H100, bench/NOTES.md). O = sum_s w_s O_s; a row whose splits are all empty
// gets O = 0, L = +inf (fwd_combine.cu's rule). On sm90 it is launched as a programmatic dependent of the
// attention grid and waits for it with griddepcontrol.wait.
template <bool kBf16>
__global__ void __launch_bounds__(128) kv_combine_kernel(const __grid_constant__ KVParams p) {
    prim::griddep_wait();
    __shared__ float s_w[256];
    __shared__ float s_red[4];
    __shared__ float4 s_part[128];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t row = blockIdx.x; // (bi, hi, r) with r fastest
    const int r = int(row % p.seqlen_q);
    const int hi = int((row / p.seqlen_q) % p.h);
    const int bi = int(row / (int64_t(p.seqlen_q) * p.h));
    const int sq = p.seqused_q ? p.seqused_q[bi] : p.seqlen_q;
    if (r >= sq) return; // uniform over the CTA
    const int ns = p.num_splits;
    const int64_t sstride = int64_t(p.h) * p.acc_rows;
    const int64_t base = int64_t(hi) * p.acc_rows + int64_t(bi) * p.seqlen_q + r;

    // ---- phase 1: L = log sum_s exp(lse_s), weights ----
    const float l0 = tid < ns ? p.lse_accum[base + tid * sstride] : -INFINITY;
    const float l1 = tid + 128 < ns ? p.lse_accum[base + (tid + 128) * sstride] : -INFINITY;
    float mx = fmaxf(l0, l1);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) s_red[warp] = mx;
    __syncthreads();
    mx = fmaxf(fmaxf(s_red[0], s_red[1]), fmaxf(s_red[2], s_red[3]));
    float sum = mx == -INFINITY ? 0.f : __expf(l0 - mx) + __expf(l1 - mx);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    __syncthreads(); // everyone has read s_red's maxima
    if (lane == 0) s_red[warp] = sum;
    __syncthreads();
    sum = s_red[0] + s_red[1] + s_red[2] + s_red[3];
    const bool any = mx != -INFINITY && sum > 0.f;
    const float L = any ? mx + __logf(sum) : INFINITY;
    if (tid < ns) s_w[tid] = any ? __expf(l0 - L) : 0.f;
    if (tid + 128 < ns) s_w[tid + 128] = any ? __expf(l1 - L) : 0.f;
    __syncthreads();

    // ---- phase 2: weighted sum of the partial rows ----
    const int nch = p.acc_d >> 2, groups = 128 / nch;
    const int c4 = tid % nch, sg = tid / nch;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (sg < groups) {
        const float* ob = p.o_accum + base * p.acc_d + c4 * 4;
        const int64_t step = sstride * p.acc_d;
#pragma unroll 8
        for (int s = sg; s < ns; s += groups) {
            const float w = s_w[s];
            const float4 v = __ldcg(reinterpret_cast<const float4*>(ob + s * step));
            acc.x += w * v.x;
            acc.y += w * v.y;
            acc.z += w * v.z;
            acc.w += w * v.w;
        }
    }
    s_part[tid] = acc;
    __syncthreads();
    if (tid < nch && tid * 4 < p.dv) {
        for (int g = 1; g < groups; ++g) {
            const float4 v = s_part[g * nch + tid];
            acc.x += v.x;
            acc.y += v.y;
            acc.z += v.z;
            acc.w += v.w;
        }
        const int c = tid * 4;
        uint16_t* orow = static_cast<uint16_t*>(p.o) + int64_t(bi) * p.o_batch + int64_t(r) * p.o_row +
                         int64_t(hi) * p.o_head;
        const uint16_t e0 = prim::from_float<kBf16>(acc.x), e1 = prim::from_float<kBf16>(acc.y),
                       e2 = prim::from_float<kBf16>(acc.z), e3 = prim::from_float<kBf16>(acc.w);
        if (p.aligned_o && c + 4 <= p.dv) {
            *reinterpret_cast<uint2*>(orow + c) = make_uint2(e0 | (uint32_t(e1) << 16), e2 | (uint32_t(e3) << 16));
        } else {
            const uint16_t es[4] = {e0, e1, e2, e3};
            for (int k = 0; k < 4 && c + k < p.dv; ++k) orow[c + k] = es[k];
        }
    }
    if (tid == 0 && p.lse) p.lse[(int64_t(bi) * p.h + hi) * p.seqlen_q + r] = L;
}

template <int D>
int32_t occupancy_of(bool bf16, int* n) {
    return bf16 ? attn_occupancy<D, true>(n) : attn_occupancy<D, false>(n);
}

// SMs and resident CTAs per SM of the instantiation (dim, dtype) on device `dev`, cached.
int32_t slots_of(int dev, int dim, bool bf16, int* slots) {
    static std::mutex mu;
    static int cache[64][6][2] = {};
    const int di = dim == 32 ? 0 : dim == 64 ? 1 : dim == 96 ? 2 : dim == 128 ? 3 : dim == 192 ? 4 : 5;
    if (dev >= 0 && dev < 64) {
        std::lock_guard<std::mutex> lk(mu);
        if (cache[dev][di][bf16]) {
            *slots = cache[dev][di][bf16];
            return FLASH_OK;
        }
    }
    int sms = 0;
    cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "cudaDeviceGetAttribute");
    int per = 1;
    int32_t st = FLASH_ERROR_INTERNAL;
    switch (dim) {
#ifdef FLASH_HDIM_32
    case 32: st = occupancy_of<32>(bf16, &per); break;
#endif
#ifdef FLASH_HDIM_64
    case 64: st = occupancy_of<64>(bf16, &per); break;
#endif
#ifdef FLASH_HDIM_96
    case 96: st = occupancy_of<96>(bf16, &per); break;
#endif
#ifdef FLASH_HDIM_128
    case 128: st = occupancy_of<128>(bf16, &per); break;
#endif
#ifdef FLASH_HDIM_192
    case 192: st = occupancy_of<192>(bf16, &per); break;
#endif
#ifdef FLASH_HDIM_256
    case 256: st = occupancy_of<256>(bf16, &per); break;
#endif
    default: return set_error(FLASH_ERROR_INTERNAL, "no kvcache instantiation for head dim %d", dim);
    }
    if (st != FLASH_OK) return st;
    *slots = std::max(1, sms * per);
    if (dev >= 0 && dev < 64) {
        std::lock_guard<std::mutex> lk(mu);
        cache[dev][di][bf16] = *slots;
    }
    return FLASH_OK;
}

// Splits for a memory-bound grid of `ctas` CTAs (each streaming up to n_blocks key blocks) on `slots`
// resident CTA slots: none once the grid fills 80% of the slots; else the fewest splits whose wave
// efficiency (ctas*s / slots over its ceiling) is within 5% of the best, keeping >= 2 blocks per split
// where the cache is long enough. (FA2's num_splits_heuristic with a tighter tolerance: a decode kernel
// wants every slot streaming.)
int splits_heuristic(int64_t ctas, int slots, int n_blocks) {
    if (ctas >= int64_t(0.8 * slots)) return 1;
    const int max_s = std::max(1, std::min({256, n_blocks / 2, int((2 * int64_t(slots) + ctas - 1) / ctas)}));
    float best = 0.f;
    float eff[257] = {};
    for (int s = 1; s <= max_s; ++s) {
        const float waves = float(ctas * s) / float(slots);
        eff[s] = waves / std::ceil(waves);
        best = std::max(best, eff[s]);
    }
    for (int s = 1; s <= max_s; ++s)
        if (eff[s] >= 0.95f * best) return s;
    return 1;
}

struct Plan {
    int dim = 0;
    int m_blocks = 0;
    int num_splits = 1;
    int64_t acc_rows = 0;
    uint64_t lse_offset = 0;
    uint64_t ws_bytes = 0;
};

int32_t make_plan(const FwdProblem& p, Plan* plan) {
    plan->dim = pick_dim(p.d, p.dv);
    if (plan->dim == 0)
        return set_error(FLASH_ERROR_UNSUPPORTED,
                         "head dims d=%d dv=%d: this build's largest CUDA kvcache instantiation is smaller "
                         "(compiled head dims %s)", p.d, p.dv, FLASH_HEAD_DIMS_JSON);
    const int64_t packed = int64_t(p.seqlen_q) * p.group;
    const int64_t mbl = (packed + 15) / 16;
    if (mbl * p.hk > INT32_MAX / 256)
        return set_error(FLASH_ERROR_UNSUPPORTED, "seqlen_q=%d x h=%d: the kvcache grid is too large", p.seqlen_q, p.h);
    plan->m_blocks = int(mbl);
    const int bn = block_n(plan->dim);
    const int n_blocks = int((int64_t(p.seqlen_k) + bn - 1) / bn);
    int ns = 1;
    if (p.num_splits >= 1) {
        ns = p.num_splits;
    } else if (p.seqlen_q > 0 && n_blocks > 1 && p.b > 0) {
        int slots = 0;
        if (int32_t st = slots_of(p.device_id, plan->dim, p.dtype == DType::BF16, &slots); st != FLASH_OK) return st;
        ns = splits_heuristic(int64_t(p.b) * p.hk * plan->m_blocks, slots, n_blocks);
    }
    ns = std::max(1, std::min({ns, std::max(1, n_blocks), 256}));
    plan->num_splits = ns;
    plan->acc_rows = int64_t(p.b) * p.seqlen_q;
    if (ns > 1) {
        const uint64_t o_bytes = uint64_t(ns) * p.h * plan->acc_rows * plan->dim * sizeof(float);
        plan->lse_offset = (o_bytes + 255) & ~uint64_t(255);
        plan->ws_bytes = plan->lse_offset + uint64_t(ns) * p.h * plan->acc_rows * sizeof(float);
    }
    return FLASH_OK;
}

} // namespace
} // namespace kv

uint64_t fwd_kvcache_workspace_size(const FwdProblem& p) {
    kv::Plan plan;
    if (kv::make_plan(p, &plan) != FLASH_OK) {
        clear_error();
        return 0;
    }
    return plan.ws_bytes;
}

int32_t fwd_kvcache(const FwdProblem& p, void* workspace, uint64_t workspace_bytes, void* stream_ptr) {
    if (p.b == 0 || p.h == 0) return FLASH_OK;
    if (p.dtype != DType::F16 && p.dtype != DType::BF16)
        return set_error(FLASH_ERROR_UNSUPPORTED, "dtype=%d: the CUDA kvcache path supports fp16 and bf16", int(p.dtype));
    if (p.b > 65535) return set_error(FLASH_ERROR_UNSUPPORTED, "b=%d: the CUDA kvcache grid allows at most 65535", p.b);
    kv::Plan plan;
    if (int32_t st = kv::make_plan(p, &plan); st != FLASH_OK) return st;
    if (plan.ws_bytes > 0 && (workspace == nullptr || workspace_bytes < plan.ws_bytes))
        return set_error(FLASH_ERROR_INVALID_ARGUMENT,
                         "workspace_bytes=%llu: this call needs %llu bytes (num_splits=%d; ask "
                         "flash_fwd_kvcache_workspace_size)",
                         (unsigned long long)workspace_bytes, (unsigned long long)plan.ws_bytes, plan.num_splits);
    if (plan.acc_rows * p.h > INT32_MAX)
        return set_error(FLASH_ERROR_UNSUPPORTED, "b*seqlen_q*h=%lld exceeds 2^31", (long long)(plan.acc_rows * p.h));
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    const bool bf16 = p.dtype == DType::BF16;

    KVParams k{};
    fill_attn_params(p, &k);
    k.knew = p.knew;
    k.vnew = p.vnew;
    k.kn_batch = p.sknew_.batch, k.kn_row = p.sknew_.row, k.kn_head = p.sknew_.head;
    k.vn_batch = p.svnew_.batch, k.vn_row = p.svnew_.row, k.vn_head = p.svnew_.head;
    k.seqlen_knew = p.knew ? p.seqlen_knew : 0;
    k.aligned_kn = p.knew ? aligned16(p.knew, p.sknew_, true) : 0;
    k.aligned_vn = p.vnew ? aligned16(p.vnew, p.svnew_, true) : 0;
    k.full = (p.softcap > 0.f || p.alibi != nullptr) ? 1 : 0;
    k.cache_seqlens = p.cache_seqlens;
    k.cache_batch_idx = p.cache_batch_idx;
    k.block_table = p.block_table;
    k.bt_stride = p.block_table_batch_stride;
    k.page_size = p.block_table ? p.page_block_size : 1;
    k.page_shift = -1;
    if (p.block_table && (p.page_block_size & (p.page_block_size - 1)) == 0) {
        int s = 0;
        while ((1 << s) < p.page_block_size) ++s;
        k.page_shift = s;
    }
    k.rot_cos = p.rotary_cos;
    k.rot_sin = p.rotary_sin;
    k.rotary_dim = p.rotary_dim;
    k.rot_interleaved = p.rotary_interleaved ? 1 : 0;
    k.rot_per_row = (p.mask.causal || p.mask.local) ? 1 : 0;
    k.m_blocks = plan.m_blocks;
    k.num_splits = plan.num_splits;
    k.acc_rows = int32_t(plan.acc_rows);
    k.acc_d = plan.dim;
    if (plan.num_splits > 1) {
        k.o_accum = static_cast<float*>(workspace);
        k.lse_accum = reinterpret_cast<float*>(static_cast<char*>(workspace) + plan.lse_offset);
    }

    DevInfo di;
    if (int32_t st = device_info(p.device_id, &di); st != FLASH_OK) return st;
    const bool pdl = di.major >= 9; // programmatic dependent launches: sm90+

    // 1. Without query rows, only the append (with them, the attention kernel appends: one launch less).
    if (p.seqlen_q == 0) {
        if (k.seqlen_knew == 0) return FLASH_OK;
        const int64_t gx = int64_t(k.seqlen_knew) * p.hk;
        if (gx > INT32_MAX) return set_error(FLASH_ERROR_UNSUPPORTED, "seqlen_knew=%d: append grid too large", k.seqlen_knew);
        const dim3 grid(unsigned(gx), unsigned(p.b));
        if (bf16) kv::kv_append_kernel<true><<<grid, 128, 0, stream>>>(k);
        else kv::kv_append_kernel<false><<<grid, 128, 0, stream>>>(k);
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "kvcache append launch");
        return FLASH_OK;
    }

    // 2. Attention.
    const int64_t gx = int64_t(plan.num_splits) * p.hk * plan.m_blocks;
    if (gx > INT32_MAX) return set_error(FLASH_ERROR_UNSUPPORTED, "kvcache grid too large (%lld CTAs)", (long long)gx);
    const dim3 grid(unsigned(gx), unsigned(p.b));
    int32_t st = FLASH_ERROR_INTERNAL;
#define FLASH_KV_CASE(D)                                                                                   \
    case D:                                                                                                \
        st = bf16 ? kv::launch_attn<D, true>(k, grid, stream) : kv::launch_attn<D, false>(k, grid, stream); \
        break;
    switch (plan.dim) {
#ifdef FLASH_HDIM_32
        FLASH_KV_CASE(32)
#endif
#ifdef FLASH_HDIM_64
        FLASH_KV_CASE(64)
#endif
#ifdef FLASH_HDIM_96
        FLASH_KV_CASE(96)
#endif
#ifdef FLASH_HDIM_128
        FLASH_KV_CASE(128)
#endif
#ifdef FLASH_HDIM_192
        FLASH_KV_CASE(192)
#endif
#ifdef FLASH_HDIM_256
        FLASH_KV_CASE(256)
#endif
    default:
        return set_error(FLASH_ERROR_INTERNAL, "no CUDA kvcache instantiation for head dim %d", plan.dim);
    }
#undef FLASH_KV_CASE
    if (st != FLASH_OK || plan.num_splits == 1) return st;

    // 3. Split combine: one CTA per output row; a programmatic dependent launch on sm90+ (hides the launch).
    const int64_t rows = int64_t(p.b) * p.h * p.seqlen_q;
    if (rows > INT32_MAX) return set_error(FLASH_ERROR_UNSUPPORTED, "b*h*seqlen_q=%lld: combine grid too large", (long long)rows);
    const dim3 cgrid{unsigned(rows)}, cblock{128};
    const cudaError_t e = bf16 ? launch_ex(kv::kv_combine_kernel<true>, cgrid, cblock, 0, stream, pdl, k)
                               : launch_ex(kv::kv_combine_kernel<false>, cgrid, cblock, 0, stream, pdl, k);
    if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "kvcache combine launch");
    return FLASH_OK;
}

} // namespace flash::cuda
