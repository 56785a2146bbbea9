// Host-side construction of TMA tensor maps (CUtensorMap) for the Hopper kernels. The driver's encoder is
// reached through the runtime's driver entry point, so libflash links no libcuda at build time.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace flash::cuda::sm90 {

// A 4-D view [batches][heads][rows][dim] of 16-bit elements with strides in elements (dim contiguous; the
// strides need not grow with the dimension, so rows and heads may be swapped), tiled into boxes of box_cols x
// box_rows x box_heads (x 1) with 128-byte swizzle (box_cols * 2 <= 128). In shared memory a box is
// box_heads * box_rows rows of box_cols elements, rows fastest.
struct TensorView {
    const void* base;
    uint64_t dim, rows, heads, batches;
    int64_t row_stride, head_stride, batch_stride;
};

// FLASH_OK, or a status with the error set (the caller may fall back to another kernel instead).
int32_t make_tensor_map(CUtensorMap* map, const TensorView& v, bool bf16, uint32_t box_cols, uint32_t box_rows,
                        uint32_t box_heads = 1);

} // namespace flash::cuda::sm90
