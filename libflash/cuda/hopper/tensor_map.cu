#include "tensor_map.h"

#include <cuda_runtime.h>

#include <mutex>

#include "api/error.h"

namespace flash::cuda::sm90 {

namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encoder() {
    static EncodeTiled fn = nullptr;
    static std::once_flag once;
    std::call_once(once, [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        // 12000: the ABI of cuTensorMapEncodeTiled since CUDA 12.0 (unchanged since).
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) ==
                cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = reinterpret_cast<EncodeTiled>(f);
    });
    return fn;
}

} // namespace

int32_t make_tensor_map(CUtensorMap* map, const TensorView& v, bool bf16, uint32_t box_cols, uint32_t box_rows,
                        uint32_t box_heads) {
    const EncodeTiled enc = encoder();
    if (!enc) return set_error(FLASH_ERROR_UNSUPPORTED, "cuTensorMapEncodeTiled is not available from the driver");
    auto bytes = [](int64_t elems) { return cuuint64_t(elems) * 2u; };
    const cuuint64_t dims[4] = {v.dim, v.rows, v.heads, v.batches};
    // A dimension of extent 1 is never stepped; give it a legal stride when the caller's is 0.
    const cuuint64_t strides[3] = {bytes(v.row_stride), bytes(v.head_stride),
                                   v.batches == 1 && v.batch_stride == 0 ? 16u : bytes(v.batch_stride)};
    const cuuint32_t box[4] = {box_cols, box_rows, box_heads, 1};
    const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
    const CUresult r = enc(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
                           const_cast<void*>(v.base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                           CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                           CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return set_error(FLASH_ERROR_UNSUPPORTED,
                         "cuTensorMapEncodeTiled failed (%d) for dims [%llu, %llu, %llu, %llu] strides [%lld, %lld, %lld]",
                         int(r), (unsigned long long)v.dim, (unsigned long long)v.rows, (unsigned long long)v.heads,
                         (unsigned long long)v.batches, (long long)v.row_stride, (long long)v.head_stride,
                         (long long)v.batch_stride);
    return FLASH_OK;
}

} // namespace flash::cuda::sm90
