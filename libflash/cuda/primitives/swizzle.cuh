// Shared-memory tile addressing with bank-conflict-free 16-byte chunks.
//
// A tile holds kRows rows of kChunks 16-byte chunks (8 16-bit elements each). Chunk (row, c) lives at
// chunk index row * kPitch + (c ^ swz(row)). Contract: for any 8 consecutive rows r0..r0+7 with r0 % 8 == 0
// and a fixed logical chunk c, the 8 physical chunks fall into 8 distinct 16-byte bank groups (the
// access pattern of one ldmatrix 8x8 matrix and of one cp.async row sweep), so ldmatrix is conflict free:
//   kChunks % 8 == 0: pitch kChunks, swz(row) = row & 7        (XOR on the low 3 chunk bits; stays in row)
//   kChunks == 4:     pitch 4,       swz(row) = (row >> 1) & 3 (two rows per 128 bytes)
//   kChunks == 2:     pitch 2,       swz(row) = (row >> 2) & 1 (four rows per 128 bytes)
//   otherwise:        pitch kChunks | 1 (odd, one padding chunk when even), no XOR (odd pitch rotates banks)
// The XOR never leaves the row (c ^ swz < kChunks), so a row's chunks are a permutation of themselves.
// The pitch rule is mirrored in plain C++ by fwd_config.h's fwd_row_bytes (FwdCfg asserts fwd_smem_bytes agrees).
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

template <int kChunks_>
struct SwizzledRows {
    static constexpr int kChunks = kChunks_;
    static constexpr bool kXor = (kChunks % 8 == 0) || kChunks == 4 || kChunks == 2;
    static constexpr int kPitch = kXor ? kChunks : (kChunks | 1);

    static __host__ __device__ constexpr int swz(int row) {
        return kChunks % 8 == 0 ? (row & 7) : kChunks == 4 ? ((row >> 1) & 3) : kChunks == 2 ? ((row >> 2) & 1) : 0;
    }
    // Chunk index (units of 16 bytes) of logical chunk `c` of row `row`.
    static __host__ __device__ constexpr int chunk(int row, int c) { return row * kPitch + (c ^ swz(row)); }
    // Byte offset of 16-bit element `col` of row `row`.
    static __host__ __device__ constexpr int byte_offset(int row, int col) {
        return chunk(row, col >> 3) * 16 + (col & 7) * 2;
    }
    // Bytes of a tile of `rows` rows.
    static __host__ __device__ constexpr int bytes(int rows) { return rows * kPitch * 16; }
};

} // namespace flash::cuda::prim
