// MSE loss with its metric sums and gradient, from one read of prediction p and target t (rows, cols):
//   sums[c]        += sum over rows of (p - t)^2     (the loss and R^2 come from these)
//   sums[cols + c] += sum over rows of |p - t|       (the MAE)
//   gradient        = 2 (p - t) / (rows * cols)      (d MSE / d p; skipped when null)
//
// A deterministic column reduction in two passes (the same inputs give the same bits, no float
// atomics): block (x, y) covers a group of column lanes by a chunk of rows. Its threads are column
// lanes by row lanes, as many column lanes as the matrix is wide up to 32, so that a one-column
// matrix uses every thread and each warp reads contiguous memory; the row lanes stride down the
// chunk and are then added in a fixed tree. Each chunk's sums go to the scratch, and one thread per
// column adds the chunks in order; with one chunk the first pass adds into sums directly. The grid
// depends on the shape only, so the order of every addition is fixed.
#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

constexpr int kLossThreads = 256;

__global__ void __launch_bounds__(kLossThreads)
    mse_partial_kernel(const float* __restrict__ p, const float* __restrict__ t, long long rows, long long cols,
                       int column_lanes, long long chunk, float gradient_scale, float* __restrict__ gradient,
                       float* __restrict__ out, bool accumulate) {
  __shared__ float squared[kLossThreads], absolute[kLossThreads];
  const int lane = static_cast<int>(threadIdx.x) % column_lanes,
            row_lane = static_cast<int>(threadIdx.x) / column_lanes;
  const int row_lanes = kLossThreads / column_lanes;
  const long long col = blockIdx.x * static_cast<long long>(column_lanes) + lane;
  const long long begin = blockIdx.y * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  float sq = 0.0f, ab = 0.0f;
  if (col < cols)
    for (long long r = begin + row_lane; r < end; r += row_lanes) {
      const long long i = r * cols + col;
      const float e = p[i] - t[i];
      if (gradient != nullptr) gradient[i] = gradient_scale * e;
      sq = fmaf(e, e, sq);
      ab += fabsf(e);
    }
  squared[threadIdx.x] = sq;
  absolute[threadIdx.x] = ab;
  __syncthreads();
  // Row lanes r and r + half hold the same column: halve until row lane 0 holds the sum.
  for (int half = row_lanes / 2; half > 0; half /= 2) {
    if (row_lane < half) {
      squared[threadIdx.x] += squared[threadIdx.x + half * column_lanes];
      absolute[threadIdx.x] += absolute[threadIdx.x + half * column_lanes];
    }
    __syncthreads();
  }
  if (row_lane != 0 || col >= cols) return;
  if (accumulate) {
    out[col] += squared[lane];
    out[cols + col] += absolute[lane];
  } else {
    out[blockIdx.y * 2 * cols + col] = squared[lane];
    out[blockIdx.y * 2 * cols + cols + col] = absolute[lane];
  }
}

/// Pass two: sums[j] += partials[0][j] + partials[1][j] + ..., in chunk order, for j < 2 cols.
__global__ void mse_sum_chunks_kernel(const float* __restrict__ partials, long long chunks, long long width,
                                      float* __restrict__ sums) {
  for (long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; j < width;
       j += static_cast<long long>(gridDim.x) * blockDim.x) {
    float total = 0.0f;
    for (long long c = 0; c < chunks; ++c) total += partials[c * width + j];
    sums[j] += total;
  }
}

}  // namespace

void launch_mse_loss_and_gradient(const float* prediction, const float* target, std::int64_t rows, std::int64_t cols,
                                  float* sums, float* gradient, float* scratch, cudaStream_t stream) {
  if (rows * cols == 0) return;
  int column_lanes = 1;
  while (column_lanes < cols && column_lanes < 32) column_lanes *= 2;
  const std::int64_t column_blocks = (cols + column_lanes - 1) / column_lanes;
  // Row chunks: about 1024 blocks in all, at least 256 rows each, partials within the scratch.
  std::int64_t chunks = std::max<std::int64_t>(1, 1024 / column_blocks);
  chunks = std::min<std::int64_t>({chunks, (rows + 255) / 256, kReductionScratchFloats / (2 * cols), 65535});
  chunks = std::max<std::int64_t>(chunks, 1);
  const std::int64_t chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + chunk - 1) / chunk;
  const float gradient_scale = static_cast<float>(2.0 / static_cast<double>(rows * cols));
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(chunks));
  launch(mse_partial_kernel, grid, kLossThreads, 0, stream, prediction, target, rows, cols, column_lanes, chunk,
         gradient_scale, gradient, chunks == 1 ? sums : scratch, chunks == 1);
  check_launch("mse_partial_kernel", [&] { return shape_text("prediction", rows, cols); });
  if (chunks == 1) return;
  launch(mse_sum_chunks_kernel, grid_for(2 * cols, 256), 256, 0, stream, scratch, chunks, 2 * cols, sums);
  check_launch("mse_sum_chunks_kernel", [&] { return shape_text("prediction", rows, cols); });
}

}  // namespace ember::kernels
