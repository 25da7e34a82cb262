// TF32 tensor-core matmul (opt-in: `--precision tf32`), for compute capability 8.0 and newer.
//
// 256 threads (8 warps) compute a 128 x 128 tile of c, stepping over k in slices of 16 that are
// double-buffered in shared memory exactly as in the FP32 128 x 128 kernel (the same loader: one
// float4 per thread per 8 k, along whichever dimension of the source is contiguous). The warps
// form a 2 x 4 grid; each owns a 64 x 32 block of c as 4 x 2 WMMA accumulators (m16 n16 k8,
// FP32 accumulation), whose operands are read straight from the k-major tiles: op(a) as a
// column-major fragment, op(b) as a row-major one, each value rounded to TF32 after loading.
// The epilogue goes through a 16 x 16 staging tile per warp, so that each value meets the same
// epilogue function (bias, ReLU, mask) as in the FP32 kernels.
#include <mma.h>

#include "matmul_tiles.cuh"

namespace ember::kernels {
namespace {

constexpr int kSliceK = 16;  // two loader slices of kBigK = 8
constexpr int kWarpM = 64, kWarpN = 32;
constexpr int kFragment = 16;  // m16 n16 k8 fragments
static_assert(kSliceK == 2 * kBigK, "each slice is two loader slices");

template <bool TransposeA, bool TransposeB, bool Vector, EpilogueKind Kind>
// One block per SM is the floor (registers up to 255): the accumulators alone take 64 registers.
__global__ void __launch_bounds__(kBigThreads, 1)
    matmul_tf32_kernel(int m, int n, int k, const float* __restrict__ a, int lda, const float* __restrict__ b, int ldb,
                       float* __restrict__ c, int ldc, MatmulEpilogue epilogue) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  // WMMA pointers must be 32-byte aligned: every fragment origin below is (even row, multiple of 16 column).
  __shared__ __align__(32) float tile_a[2][kSliceK][kBigM + kPad];  // tile_a[s][p][i] = op(a)[row0 + i][k0 + p]
  __shared__ __align__(32) float tile_b[2][kSliceK][kBigN + kPad];  // tile_b[s][p][j] = op(b)[k0 + p][col0 + j]
  __shared__ __align__(32) float staging[kBigThreads / 32][kFragment * kFragment];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row0 = blockIdx.y * kBigM, col0 = blockIdx.x * kBigN;
  const int warp_row = (warp / 4) * kWarpM, warp_col = (warp % 4) * kWarpN;
  const SliceLoader<!TransposeA, Vector> load_a(tid);
  const SliceLoader<TransposeB, Vector> load_b(tid);

  wmma::fragment<wmma::accumulator, kFragment, kFragment, 8, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  float4 next_a[2], next_b[2];
  const auto load_slice = [&](int k0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      next_a[h] = load_a.load(a, lda, row0, m, k0 + h * kBigK, k);
      next_b[h] = load_b.load(b, ldb, col0, n, k0 + h * kBigK, k);
    }
  };
  const auto store_slice = [&](int buffer) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      load_a.store(tile_a[buffer] + h * kBigK, next_a[h]);
      load_b.store(tile_b[buffer] + h * kBigK, next_b[h]);
    }
  };
  load_slice(0);
  store_slice(0);
  __syncthreads();

  const int slices = (k + kSliceK - 1) / kSliceK;
  for (int s = 0; s < slices; ++s) {
    const int current = s & 1;
    const bool more = s + 1 < slices;
    if (more) load_slice((s + 1) * kSliceK);  // in flight while the tensor cores run
#pragma unroll
    for (int p = 0; p < kSliceK; p += 8) {
      wmma::fragment<wmma::matrix_a, kFragment, kFragment, 8, wmma::precision::tf32, wmma::col_major> fa[4];
      wmma::fragment<wmma::matrix_b, kFragment, kFragment, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        wmma::load_matrix_sync(fa[i], &tile_a[current][p][warp_row + kFragment * i], kBigM + kPad);
#pragma unroll
        for (int e = 0; e < fa[i].num_elements; ++e) fa[i].x[e] = wmma::__float_to_tf32(fa[i].x[e]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(fb[j], &tile_b[current][p][warp_col + kFragment * j], kBigN + kPad);
#pragma unroll
        for (int e = 0; e < fb[j].num_elements; ++e) fb[j].x[e] = wmma::__float_to_tf32(fb[j].x[e]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    if (more) store_slice(current ^ 1);  // the other buffer was last read before the previous barrier
    __syncthreads();
  }

  // Epilogue: each 16 x 16 accumulator through the warp's staging tile; lane l writes 8 values.
  float* stage = staging[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(stage, acc[i][j], kFragment, wmma::mem_row_major);
      __syncwarp();
#pragma unroll
      for (int e = lane * 8; e < lane * 8 + 8; ++e) {
        const int row = row0 + warp_row + kFragment * i + e / kFragment;
        const int col = col0 + warp_col + kFragment * j + e % kFragment;
        if (row < m && col < n) {
          float* out = c + static_cast<long long>(row) * ldc + col;
          *out = epilogue_value<Kind>(epilogue, stage[e], out, row, col, ldc);
        }
      }
      __syncwarp();
    }
#else
  __trap();  // launch_matmul refuses TF32 below compute capability 8.0
#endif
}

}  // namespace

template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_matmul_tf32(const MatmulArgs& x, cudaStream_t stream) {
  const dim3 grid((x.n + kBigN - 1) / kBigN, (x.m + kBigM - 1) / kBigM);
  const bool vector = operands_vectorizable(x);
  if (vector)
    matmul_tf32_kernel<TransposeA, TransposeB, true, Kind>
        <<<grid, kBigThreads, 0, stream>>>(x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  else
    matmul_tf32_kernel<TransposeA, TransposeB, false, Kind>
        <<<grid, kBigThreads, 0, stream>>>(x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  return "matmul_tf32_kernel";
}

template const char* launch_matmul_tf32<false, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<true, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<true, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, true, EpilogueKind::bias>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, true, EpilogueKind::bias_relu>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, false, EpilogueKind::relu_mask>(const MatmulArgs&, cudaStream_t);

}  // namespace ember::kernels
