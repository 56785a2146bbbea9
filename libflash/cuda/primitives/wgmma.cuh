// wgmma.mma_async m64nNk16 (sm_90a), f16/bf16 inputs, fp32 accumulators: D (64 x N) = A (64 x 16) * B (16 x N)
// [+ D], issued by one warpgroup (4 consecutive warps starting at a warp index divisible by 4).
//
// Layout contract (w = warp index within the warpgroup, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4):
//   D (fp32, d[N/2] per thread): d[4j + 0..1] = D[16w + g][8j + 2q .. +1], d[4j + 2..3] = D[16w + g + 8][8j + 2q .. +1]
//       for j = 0 .. N/8 - 1 (mma.sync's m16n8 C layout, warp w owning rows 16w .. 16w + 15).
//   A from registers (rs): a[4] per thread = mma.sync's m16n8k16 A fragment of rows 16w .. 16w + 15, so an
//       accumulator of 16 columns converts to an A operand in place (fragment.cuh's acc_to_a).
//   A / B from shared memory: a 64-bit matrix descriptor (below), 128-byte swizzle only.
//       K-major (A = Q[m][k], B = K[n][k]: k contiguous, kTransB = 0): rows of 64 16-bit elements (128 B),
//       8-row atoms of 1024 B, atoms stacked along M/N at 1024 B; the k16 slice s of a 64-element column
//       block starts 32*s bytes into it. desc_kmajor_sw128(base + 32*s).
//       MN-major B (B = V[k][n]: n contiguous, kTransB = 1): rows are k (keys), 128 B = 64 elements of n
//       each; 8-row atoms of 1024 B stacked along k; 64-wide column blocks of n `chunk_stride` bytes apart.
//       The k16 slice s starts 16*128*s bytes in. desc_mnmajor_sw128(base + 2048*s, chunk_stride).
//       MN-major A (kTransA = 1, ss only; A = dS[m][k] stored as dS^T[k][m]: m contiguous): the same layout as
//       MN-major B with m for n: rows are k, 128 B = 64 elements of m, 8-row atoms of 1024 B stacked along k;
//       an instruction's M = 64 is one 64-wide column block. desc_mnmajor_sw128(base + 2048*s, chunk_stride).
//   Tiles are 1024-byte aligned (the swizzle XORs address bits 4-6 with bits 7-9), which is also what TMA's
//   128-byte swizzle writes (tma.cuh), so TMA tiles feed wgmma directly.
// Ordering: wgmma_fence() before the first wgmma of a batch whose accumulator / A registers were written by
// other instructions; wgmma_commit() closes a group; wgmma_wait<N>() waits until at most N groups are
// pending. Accumulator registers must not be touched between issue and wait: fence_operand() pins them
// (it makes the compiler treat each register as read and written at that point, so no use is moved across).
#pragma once

#include "arch.cuh"
#include "wgmma_ops.gen.cuh"

namespace flash::cuda::prim {

namespace detail {
FLASH_DEVICE uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(lbo >> 4) << 16) | (uint64_t(sbo >> 4) << 32) |
           (uint64_t(1) << 62); // layout type 1 = 128-byte swizzle, base offset 0
}
} // namespace detail

FLASH_DEVICE uint64_t desc_kmajor_sw128(uint32_t addr) { return detail::smem_desc(addr, 16, 1024); }

FLASH_DEVICE uint64_t desc_mnmajor_sw128(uint32_t addr, uint32_t chunk_stride) {
    return detail::smem_desc(addr, chunk_stride, 1024);
}

FLASH_DEVICE void wgmma_fence() {
#if FLASH_SM90A
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

FLASH_DEVICE void wgmma_commit() {
#if FLASH_SM90A
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

template <int N>
FLASH_DEVICE void wgmma_wait() {
#if FLASH_SM90A
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#else
    FLASH_ARCH_TRAP();
#endif
}

template <int N>
FLASH_DEVICE void fence_operand(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

template <int N>
FLASH_DEVICE void fence_operand(uint32_t (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

// D (+)= A * B with A and B in shared memory. scale_d = 0 ignores D's old value (first k slice).
// kTransA = 1: A is MN-major (contract above).
template <int N, bool kBf16, int kTransB, int kTransA = 0>
FLASH_DEVICE void wgmma_ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, uint32_t scale_d) {
    detail::Wgmma<N, kBf16>::template ss<kTransB, kTransA>(d, desc_a, desc_b, scale_d);
}

// D (+)= A * B with A in registers.
template <int N, bool kBf16, int kTransB>
FLASH_DEVICE void wgmma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, uint32_t scale_d) {
    detail::Wgmma<N, kBf16>::template rs<kTransB>(d, a, desc_b, scale_d);
}

} // namespace flash::cuda::prim
