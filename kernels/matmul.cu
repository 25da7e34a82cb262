// Matmul: c (m, n) = alpha * op(a) @ op(b) + beta * c, row-major, op = identity or transpose.
//
// Tiled through shared memory with register blocking: a block of 256 threads computes a 64 x 64
// tile of c, stepping over k in slices of 16. Each slice of op(a) (64 x 16) and op(b) (16 x 64) is
// loaded so that consecutive threads read consecutive addresses of the source (whichever dimension
// is contiguous), stored k-major, and each thread accumulates a 4 x 4 block of c in registers from
// rows ty + 16 i and columns tx + 16 j (so shared-memory reads are conflict-free). Edges are
// zero-filled, so any m, n, k works.
#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::kernels {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kThreads = 256, kPerThread = 4;

template <bool TransposeA, bool TransposeB>
__global__ void __launch_bounds__(kThreads) matmul_tiled_kernel(int m, int n, int k, float alpha, const float* __restrict__ a,
                                                                int lda, const float* __restrict__ b, int ldb, float beta,
                                                                float* __restrict__ c, int ldc) {
  __shared__ float tile_a[kTileK][kTileM];  // tile_a[p][i] = op(a)[row0 + i][k0 + p]
  __shared__ float tile_b[kTileK][kTileN];  // tile_b[p][j] = op(b)[k0 + p][col0 + j]
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int row0 = blockIdx.y * kTileM, col0 = blockIdx.x * kTileN;
  float acc[kPerThread][kPerThread] = {};

  for (int k0 = 0; k0 < k; k0 += kTileK) {
    // 64 x 16 = 1024 elements per tile, 4 per thread.
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int e = tid + l * kThreads;
      // op(a)[i][p]: a[i][p] (contiguous in p) or a[p][i] (contiguous in i).
      const int ai = TransposeA ? e % kTileM : e / kTileK;
      const int ap = TransposeA ? e / kTileM : e % kTileK;
      const int gi = row0 + ai, gp = k0 + ap;
      float va = 0.0f;
      if (gi < m && gp < k) va = TransposeA ? a[static_cast<long long>(gp) * lda + gi] : a[static_cast<long long>(gi) * lda + gp];
      tile_a[ap][ai] = va;
      // op(b)[p][j]: b[p][j] (contiguous in j) or b[j][p] (contiguous in p).
      const int bj = TransposeB ? e / kTileK : e % kTileN;
      const int bp = TransposeB ? e % kTileK : e / kTileN;
      const int gj = col0 + bj, gq = k0 + bp;
      float vb = 0.0f;
      if (gj < n && gq < k) vb = TransposeB ? b[static_cast<long long>(gj) * ldb + gq] : b[static_cast<long long>(gq) * ldb + gj];
      tile_b[bp][bj] = vb;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kTileK; ++p) {
      float ra[kPerThread], rb[kPerThread];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) ra[i] = tile_a[p][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) rb[j] = tile_b[p][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int row = row0 + ty + 16 * i;
    if (row >= m) continue;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int col = col0 + tx + 16 * j;
      if (col >= n) continue;
      float& out = c[static_cast<long long>(row) * ldc + col];
      out = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * out;  // beta == 0: c is not read
    }
  }
}

}  // namespace

void launch_matmul(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                   const float* b, int ldb, float beta, float* c, int ldc, cudaStream_t stream) {
  const dim3 grid((n + kTileN - 1) / kTileN, (m + kTileM - 1) / kTileM);
  const auto args = [&] { return matmul_text(m, n, k, transpose_a, transpose_b); };
  if (grid.y > 65535) throw_launch_error(cudaErrorInvalidConfiguration, "matmul_tiled_kernel", args());
  if (!transpose_a && !transpose_b)
    matmul_tiled_kernel<false, false><<<grid, kThreads, 0, stream>>>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else if (!transpose_a && transpose_b)
    matmul_tiled_kernel<false, true><<<grid, kThreads, 0, stream>>>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else if (transpose_a && !transpose_b)
    matmul_tiled_kernel<true, false><<<grid, kThreads, 0, stream>>>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    matmul_tiled_kernel<true, true><<<grid, kThreads, 0, stream>>>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  check_launch("matmul_tiled_kernel", args);
}

}  // namespace ember::kernels
