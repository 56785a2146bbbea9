// Host side of the CUDA backward (issue 6): BwdProblem -> BwdParams, plan and workspace, the D = rowsum(dO*O)
// preprocessing kernel, the main kernels (bwd_launch.cuh via the generated files) and the dQ conversion.
//
// Workspace (everything the backward needs; the library allocates nothing):
//   [0]            dsum      fp32 [h][acc_rows]            D = rowsum(dO * O) per query row
//   [dq_offset]    dq_accum  fp32 [h][acc_rows][dim]       dQ accumulated with atomics (not deterministic)
// acc_rows = b * seqlen_q (dense) or total_q (varlen); dim = the instantiated head dim.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "api/error.h"
#include "bwd_config.h"
#include "bwd_launch.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_info.h"
#include "cuda/hopper/bwd_sm90.h"
#include "../primitives/fragment.cuh"

#ifndef FLASH_HEAD_DIMS_JSON
#define FLASH_HEAD_DIMS_JSON "[]"
#endif

namespace flash::cuda {

namespace {

struct Plan {
    int dim = 0;
    int dim_v = 0; // the V / dO / dV width of the instantiation: dim, or bwd_dim_v's narrow V
    BwdTile tile{};
    int64_t acc_rows = 0;
    uint64_t dq_offset = 0;
    uint64_t ws_bytes = 0;
};

int32_t make_plan(const BwdProblem& bp, Plan* plan) {
    const FwdProblem& p = bp.f;
    plan->dim = pick_dim(p.d, p.dv);
    if (plan->dim == 0)
        return set_error(FLASH_ERROR_UNSUPPORTED,
                         "head dims d=%d dv=%d: this build's largest CUDA backward instantiation is smaller "
                         "(compiled head dims %s)",
                         p.d, p.dv, FLASH_HEAD_DIMS_JSON);
    plan->dim_v = bwd_dim_v(plan->dim, p.dv);
#ifdef FLASH_BWD_NO_NARROW_V // A/B builds only: MLA's shapes on the V-padded d192 kernel
    plan->dim_v = plan->dim;
#endif
    plan->tile = bwd_tile(plan->dim);
    plan->acc_rows = p.cu_seqlens_q ? int64_t(p.total_q) : int64_t(p.b) * p.seqlen_q;
    const uint64_t dsum_bytes = uint64_t(p.h) * plan->acc_rows * sizeof(float);
    plan->dq_offset = (dsum_bytes + 255) & ~uint64_t(255);
    plan->ws_bytes = plan->dq_offset;
    if (!bp.deterministic) plan->ws_bytes += uint64_t(p.h) * plan->acc_rows * plan->dim * sizeof(float);
    return FLASH_OK;
}

// FLASH_SMEM_LIMIT_BYTES=N (a test knob, read once per process; unset or <= 0: no cap): the backward plans as if
// the GPU had at most N bytes of opt-in shared memory per block, so that the 99 KB tiles of sm86/89/120
// (bwd_config.h kBwdTilesSmall) run and are checked on a larger GPU (bench/gpu/check_bwd.py --smem-limit).
int smem_limit_knob() {
    static const int v = [] {
        const char* s = std::getenv("FLASH_SMEM_LIMIT_BYTES");
        return s ? std::atoi(s) : 0;
    }();
    return v;
}

// One query row (i, head hi, batch bi) of the pre/post-processing kernels: its place in O / dO / dQ (batch
// strides unless varlen packs the rows, api/seqinfo.h) and in the fp32 row-major workspaces (dsum, dq_accum:
// [h][acc_rows] with the batch's rows at bi * seqlen_q, or at the packed row0 when varlen).
struct QRow {
    int hi, bi, i, sq;
    int64_t row0;
    bool varlen;

    __device__ __forceinline__ QRow(const BwdParams& p, int hi_, int bi_, int i_) : hi(hi_), bi(bi_), i(i_) {
        varlen = p.cu_seqlens_q != nullptr;
        row0 = varlen ? p.cu_seqlens_q[bi] : 0;
        sq = varlen ? p.cu_seqlens_q[bi + 1] - p.cu_seqlens_q[bi] : p.seqlen_q;
        if (p.seqused_q) sq = p.seqused_q[bi];
    }
    __device__ __forceinline__ bool valid() const { return i < sq; }
    // A [b, s, h, d] tensor's row (batch stride ignored when varlen).
    template <typename T>
    __device__ __forceinline__ T* at(T* base, int64_t batch, int64_t row, int64_t head) const {
        return base + (varlen ? 0 : int64_t(bi) * batch) + (row0 + i) * row + int64_t(hi) * head;
    }
    __device__ __forceinline__ int64_t acc_row(const BwdParams& p) const {
        return int64_t(hi) * p.acc_rows + (varlen ? row0 : int64_t(bi) * p.seqlen_q) + i;
    }
    // D into dsum, and into the user's dsoftmax_sum (the LSE layout) when given.
    __device__ __forceinline__ void store_dsum(const BwdParams& p, float d) const {
        p.dsum[acc_row(p)] = d;
        if (p.dsoftmax_sum) {
            const int64_t li = p.lse_unpadded ? int64_t(hi) * p.total_q + row0 + i
                                              : (int64_t(bi) * p.h + hi) * p.seqlen_q + i;
            p.dsoftmax_sum[li] = d;
        }
    }
};

constexpr int kRowsPerCta = 8; // one warp per query row

// D = rowsum(dO * O) in fp32 -> dsum (and dsoftmax_sum in the LSE layout). Grid: row groups x h x b.
template <bool kBf16>
__global__ void __launch_bounds__(32 * kRowsPerCta) bwd_dot_do_o_kernel(const __grid_constant__ BwdParams p) {
    const int lane = threadIdx.x & 31;
    const QRow r(p, blockIdx.y, blockIdx.z, blockIdx.x * kRowsPerCta + (threadIdx.x >> 5));
    if (!r.valid()) return;
    const uint16_t* o = r.at(static_cast<const uint16_t*>(p.o), p.o_batch, p.o_row, p.o_head);
    const uint16_t* g = r.at(static_cast<const uint16_t*>(p.dout), p.do_batch, p.do_row, p.do_head);
    float acc = 0.f;
    for (int x = lane; x < p.dv; x += 32) acc += prim::to_float<kBf16>(o[x]) * prim::to_float<kBf16>(g[x]);
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, m);
    if (lane == 0) r.store_dsum(p, acc);
}

// dq_accum * scale -> dQ in the dtype. Grid: row groups x h x b.
template <bool kBf16>
__global__ void __launch_bounds__(32 * kRowsPerCta) bwd_convert_dq_kernel(const __grid_constant__ BwdParams p) {
    const int lane = threadIdx.x & 31;
    const QRow r(p, blockIdx.y, blockIdx.z, blockIdx.x * kRowsPerCta + (threadIdx.x >> 5));
    if (!r.valid()) return;
    const float* src = p.dq_accum + r.acc_row(p) * p.acc_d;
    uint16_t* dst = r.at(static_cast<uint16_t*>(p.dq_ptr), p.dq_batch, p.dq_row, p.dq_head);
    for (int x = 2 * lane; x < p.d; x += 64) {
        const float2 v = *reinterpret_cast<const float2*>(src + x);
        dst[x] = prim::from_float<kBf16>(v.x * p.scale);
        if (x + 1 < p.d) dst[x + 1] = prim::from_float<kBf16>(v.y * p.scale);
    }
}

// 8 products of two 16-byte vectors of 16-bit values, summed in fp32.
template <bool kBf16>
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b) {
    const uint32_t x[4] = {a.x, a.y, a.z, a.w}, y[4] = {b.x, b.y, b.z, b.w};
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        float2 u, v;
        if constexpr (kBf16) {
            u = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&x[k]));
            v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&y[k]));
        } else {
            u = __half22float2(*reinterpret_cast<const __half2*>(&x[k]));
            v = __half22float2(*reinterpret_cast<const __half2*>(&y[k]));
        }
        acc = fmaf(u.x, v.x, acc);
        acc = fmaf(u.y, v.y, acc);
    }
    return acc;
}

// The vector forms of the two kernels above (16-byte rows: aligned tensors, dv resp. d a multiple of 8): L lanes
// per row (L = 8, 16, 32 for head dims up to 64, 128, 256), 8 elements per lane and step, 256 / L rows per CTA.
template <int L>
constexpr int vec_rows() { return 256 / L; }

template <bool kBf16, int L>
__global__ void __launch_bounds__(256) bwd_dot_do_o_vec_kernel(const __grid_constant__ BwdParams p) {
    const int sub = threadIdx.x % L;
    const QRow r(p, blockIdx.y, blockIdx.z, blockIdx.x * vec_rows<L>() + threadIdx.x / L);
    float acc = 0.f;
    if (r.valid()) {
        const uint16_t* o = r.at(static_cast<const uint16_t*>(p.o), p.o_batch, p.o_row, p.o_head);
        const uint16_t* g = r.at(static_cast<const uint16_t*>(p.dout), p.do_batch, p.do_row, p.do_head);
        for (int c = sub; c < p.dv / 8; c += L)
            acc += dot8<kBf16>(*reinterpret_cast<const uint4*>(o + 8 * c), *reinterpret_cast<const uint4*>(g + 8 * c));
    }
    // every lane of the warp joins the shuffles, so invalid rows return only after them
#pragma unroll
    for (int m = L / 2; m >= 1; m >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, m);
    if (r.valid() && sub == 0) r.store_dsum(p, acc);
}

template <bool kBf16, int L>
__global__ void __launch_bounds__(256) bwd_convert_dq_vec_kernel(const __grid_constant__ BwdParams p) {
    const int sub = threadIdx.x % L;
    const QRow r(p, blockIdx.y, blockIdx.z, blockIdx.x * vec_rows<L>() + threadIdx.x / L);
    if (!r.valid()) return;
    const float* src = p.dq_accum + r.acc_row(p) * p.acc_d;
    uint16_t* dst = r.at(static_cast<uint16_t*>(p.dq_ptr), p.dq_batch, p.dq_row, p.dq_head);
    for (int c = sub; c < p.d / 8; c += L) {
        const float4 a = *reinterpret_cast<const float4*>(src + 8 * c);
        const float4 b = *reinterpret_cast<const float4*>(src + 8 * c + 4);
        uint4 u;
        u.x = prim::pack2<kBf16>(a.x * p.scale, a.y * p.scale);
        u.y = prim::pack2<kBf16>(a.z * p.scale, a.w * p.scale);
        u.z = prim::pack2<kBf16>(b.x * p.scale, b.y * p.scale);
        u.w = prim::pack2<kBf16>(b.z * p.scale, b.w * p.scale);
        *reinterpret_cast<uint4*>(dst + 8 * c) = u;
    }
}

#define FLASH_VEC_KERNEL(NAME)                                                                             \
    template <bool kBf16, int L>                                                                           \
    struct NAME##_t {                                                                                      \
        static void launch(const BwdParams& k, int h, int b, cudaStream_t s) {                             \
            const dim3 grid(unsigned((k.seqlen_q + vec_rows<L>() - 1) / vec_rows<L>()), unsigned(h), unsigned(b)); \
            NAME<kBf16, L><<<grid, 256, 0, s>>>(k);                                                        \
        }                                                                                                  \
    };
FLASH_VEC_KERNEL(bwd_dot_do_o_vec_kernel)
FLASH_VEC_KERNEL(bwd_convert_dq_vec_kernel)
#undef FLASH_VEC_KERNEL

// Launches K<kBf16, L>::launch (a vector kernel, L lanes per row for head dim `dim`; rows of seqlen_q x h x b).
template <template <bool, int> class K>
void launch_vec(bool bf16, int dim, const BwdParams& k, int h, int b, cudaStream_t s) {
    if (dim <= 64) bf16 ? K<true, 8>::launch(k, h, b, s) : K<false, 8>::launch(k, h, b, s);
    else if (dim <= 128) bf16 ? K<true, 16>::launch(k, h, b, s) : K<false, 16>::launch(k, h, b, s);
    else bf16 ? K<true, 32>::launch(k, h, b, s) : K<false, 32>::launch(k, h, b, s);
}

// run_bwd of head dim kD (V width kDV): masked or not, large or small tile (bwd_has_small dims only).
template <bool kBf16, int kD, int kDV>
int32_t run_dim(const BwdParams& k, bool masked, bool full, bool det, bool small, cudaStream_t stream) {
    if constexpr (bwd_has_small(kD)) {
        if (small)
            return masked ? run_bwd<kBf16, kD, true, true, kDV>(k, full, det, stream)
                          : run_bwd<kBf16, kD, false, true, kDV>(k, full, det, stream);
    }
    return masked ? run_bwd<kBf16, kD, true, false, kDV>(k, full, det, stream)
                  : run_bwd<kBf16, kD, false, false, kDV>(k, full, det, stream);
}

} // namespace

uint64_t bwd_workspace_size(const BwdProblem& bp) {
    Plan plan;
    if (make_plan(bp, &plan) != FLASH_OK) {
        clear_error();
        return 0;
    }
    return plan.ws_bytes;
}

int32_t bwd(const BwdProblem& bp, void* workspace, uint64_t workspace_bytes, void* stream_ptr) {
    const FwdProblem& p = bp.f;
    if (p.b == 0 || p.h == 0) return FLASH_OK;
    if (p.dtype != DType::F16 && p.dtype != DType::BF16)
        return set_error(FLASH_ERROR_UNSUPPORTED, "dtype=%d: the CUDA backward supports fp16 and bf16", int(p.dtype));
    if (p.b > 65535 || p.h > 65535)
        return set_error(FLASH_ERROR_UNSUPPORTED, "b=%d h=%d: the CUDA backward grid allows at most 65535 of each",
                         p.b, p.h);
    Plan plan;
    if (int32_t st = make_plan(bp, &plan); st != FLASH_OK) return st;
    if (workspace == nullptr || workspace_bytes < plan.ws_bytes)
        return set_error(FLASH_ERROR_INVALID_ARGUMENT,
                         "workspace_bytes=%llu: this call needs %llu bytes (ask flash_bwd_workspace_size)",
                         (unsigned long long)workspace_bytes, (unsigned long long)plan.ws_bytes);
    if (plan.acc_rows * p.h > INT32_MAX)
        return set_error(FLASH_ERROR_UNSUPPORTED, "h * rows = %lld exceeds 2^31", (long long)(plan.acc_rows * p.h));

    // The tile class this GPU's shared memory holds (bwd_config.h): the large tile, else the small one, else say
    // so naming the GPU and the tile instead of launching nothing.
    DevInfo di;
    if (int32_t st = device_info(p.device_id, &di); st != FLASH_OK) return st;
    const int cap = smem_limit_knob();
    const int have = cap > 0 && cap < di.smem_optin ? cap : di.smem_optin;
    auto need_of = [&](const BwdTile& t) {
        return std::max(bwd_smem_bytes(t, plan.dim_v), bp.deterministic ? bwd_dq_smem_bytes(t, plan.dim_v) : 0);
    };
    bool small = false;
    if (need_of(plan.tile) > have && bwd_has_small(plan.dim)) {
        small = true;
        plan.tile = bwd_tile(plan.dim, true);
    }
    const BwdTile& t = plan.tile;
    if (const int need = need_of(t); need > have) {
        cudaDeviceProp prop;
        std::memset(&prop, 0, sizeof prop);
        if (cudaGetDeviceProperties(&prop, p.device_id) != cudaSuccess) std::strcpy(prop.name, "?");
        return set_error(FLASH_ERROR_UNSUPPORTED,
                         "flash_bwd on %s (sm%d%d, %d bytes of shared memory per block%s): the smallest backward "
                         "tile for head dim %d / %d (d=%d dv=%d, block_m=%d block_n=%d warps=%d%s) needs %d bytes",
                         prop.name, prop.major, prop.minor, have,
                         have < di.smem_optin ? ", capped by FLASH_SMEM_LIMIT_BYTES" : "", plan.dim, plan.dim_v, p.d,
                         p.dv, t.block_m, t.block_n, t.warps, bp.deterministic ? ", deterministic" : "", need);
    }
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

    BwdParams k{};
    fill_attn_params(p, &k);
    k.dout = bp.dout;
    k.dq_ptr = bp.dq, k.dk_ptr = bp.dk, k.dv_ptr = bp.dv;
    k.do_batch = bp.sdo_.batch, k.do_row = bp.sdo_.row, k.do_head = bp.sdo_.head;
    k.dq_batch = bp.sdq_.batch, k.dq_row = bp.sdq_.row, k.dq_head = bp.sdq_.head;
    k.dk_batch = bp.sdk_.batch, k.dk_row = bp.sdk_.row, k.dk_head = bp.sdk_.head;
    k.dv_batch = bp.sdv_.batch, k.dv_row = bp.sdv_.row, k.dv_head = bp.sdv_.head;
    k.dsoftmax_sum = bp.dsoftmax_sum;
    k.scale = p.scale;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    k.aligned_do = aligned16(bp.dout, bp.sdo_, !vq);
    k.aligned_dq = aligned16(bp.dq, bp.sdq_, !vq);
    k.aligned_dk = aligned16(bp.dk, bp.sdk_, !vk);
    k.aligned_dv = aligned16(bp.dv, bp.sdv_, !vk);
    k.acc_rows = int32_t(plan.acc_rows);
    k.acc_d = plan.dim;
    k.dsum = static_cast<float*>(workspace);
    k.dq_accum = bp.deterministic ? nullptr
                                  : reinterpret_cast<float*>(static_cast<char*>(workspace) + plan.dq_offset);

    const bool bf16 = p.dtype == DType::BF16;
    const unsigned row_groups = unsigned((p.seqlen_q + kRowsPerCta - 1) / kRowsPerCta);
    const dim3 rgrid(row_groups, unsigned(p.h), unsigned(p.b));
    if (k.dq_accum) {
        const cudaError_t e = cudaMemsetAsync(k.dq_accum, 0, plan.ws_bytes - plan.dq_offset, stream);
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "cudaMemsetAsync(dq_accum)");
    }
    // 16-byte rows of O / dO (resp. dQ): the vector kernels, else one warp per row with scalar accesses.
    const bool vec_o = k.aligned_o && k.aligned_do && p.dv % 8 == 0;
    const bool vec_dq = k.aligned_dq && p.d % 8 == 0;
    if (row_groups > 0) {
        if (vec_o) launch_vec<bwd_dot_do_o_vec_kernel_t>(bf16, p.dv, k, p.h, p.b, stream);
        else if (bf16) bwd_dot_do_o_kernel<true><<<rgrid, 32 * kRowsPerCta, 0, stream>>>(k);
        else bwd_dot_do_o_kernel<false><<<rgrid, 32 * kRowsPerCta, 0, stream>>>(k);
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "bwd preprocess launch");
    }
    const bool full = p.softcap > 0.f || p.alibi != nullptr || p.dropout.p > 0.f;
    const bool masked = p.mask.left >= 0 || p.mask.right >= 0;
    int32_t st = FLASH_ERROR_INTERNAL;
    // The Hopper path (hopper/bwd_sm90.cu) takes what it covers (same workspace: dsum above, dq_accum, the dQ
    // conversion below); the rest runs on the sm80 kernels. A FLASH_SMEM_LIMIT_BYTES cap (a test of the small
    // tiles) keeps everything on sm80.
    bool taken = false;
    if (cap <= 0) {
        st = sm90::try_bwd(bp, k, plan.dim, stream, &taken);
        if (st != FLASH_OK) return st;
    }
    if (!taken) {
#define FLASH_BWD_RUN(D, DV)                                                                               \
    st = bf16 ? run_dim<true, D, DV>(k, masked, full, bp.deterministic, small, stream)                     \
              : run_dim<false, D, DV>(k, masked, full, bp.deterministic, small, stream)
#define FLASH_BWD_CASE(D)                                                                                  \
    case D:                                                                                                \
        if (plan.dim_v != D) break; /* a narrow-V call: below */                                           \
        FLASH_BWD_RUN(D, D);                                                                               \
        break;
        switch (plan.dim) {
#ifdef FLASH_HDIM_32
            FLASH_BWD_CASE(32)
#endif
#ifdef FLASH_HDIM_64
            FLASH_BWD_CASE(64)
#endif
#ifdef FLASH_HDIM_96
            FLASH_BWD_CASE(96)
#endif
#ifdef FLASH_HDIM_128
            FLASH_BWD_CASE(128)
#endif
#ifdef FLASH_HDIM_192
            FLASH_BWD_CASE(192)
#endif
#ifdef FLASH_HDIM_256
            FLASH_BWD_CASE(256)
#endif
        default:
            return set_error(FLASH_ERROR_INTERNAL, "no CUDA backward instantiation for head dim %d", plan.dim);
        }
#ifdef FLASH_HDIM_192
        if (plan.dim == 192 && plan.dim_v == 128) FLASH_BWD_RUN(192, 128);
#endif
#undef FLASH_BWD_CASE
#undef FLASH_BWD_RUN
        if (st != FLASH_OK) return st;
        set_kernel(plan.dim_v != plan.dim ? "cuda.sm80.bwd.dv128" : "cuda.sm80.bwd");
    }
    if (k.dq_accum && row_groups > 0) {
        if (vec_dq) launch_vec<bwd_convert_dq_vec_kernel_t>(bf16, p.d, k, p.h, p.b, stream);
        else if (bf16) bwd_convert_dq_kernel<true><<<rgrid, 32 * kRowsPerCta, 0, stream>>>(k);
        else bwd_convert_dq_kernel<false><<<rgrid, 32 * kRowsPerCta, 0, stream>>>(k);
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return set_cuda_error(e, cudaGetErrorString(e), "bwd dq convert launch");
    }
    return FLASH_OK;
}

} // namespace flash::cuda
