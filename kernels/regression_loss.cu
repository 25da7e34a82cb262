// Regression losses with their metric sums and gradient, from one read of prediction p and target t
// (rows, cols), e = p - t, d the Huber delta (0: MSE):
//   sums[c]          += sum over rows of the loss: e^2 (MSE), or 0.5 e^2 where |e| <= d, else
//                       d (|e| - d / 2) (Huber)
//   sums[cols + c]   += sum over rows of e^2          (R^2)
//   sums[2 cols + c] += sum over rows of |e|          (the MAE)
//   gradient          = d mean loss / d p: 2 e / (rows * cols), or clamp(e, -d, d) / (rows * cols);
//                       skipped when null
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
#include "ordered_sum.hpp"

namespace ember::kernels {
namespace {

constexpr int kLossThreads = 256;

__global__ void __launch_bounds__(kLossThreads)
    regression_loss_partial_kernel(const float* __restrict__ p, const float* __restrict__ t, long long rows,
                                   long long cols, int column_lanes, long long chunk, float delta, float gradient_scale,
                                   float* __restrict__ gradient, float* __restrict__ out, bool accumulate) {
  __shared__ float losses[kLossThreads], squared[kLossThreads], absolute[kLossThreads];
  const int lane = static_cast<int>(threadIdx.x) % column_lanes,
            row_lane = static_cast<int>(threadIdx.x) / column_lanes;
  const int row_lanes = kLossThreads / column_lanes;
  const long long col = blockIdx.x * static_cast<long long>(column_lanes) + lane;
  const long long begin = blockIdx.y * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  float loss = 0.0f, sq = 0.0f, ab = 0.0f;
  if (col < cols)
    for (long long r = begin + row_lane; r < end; r += row_lanes) {
      const long long i = r * cols + col;
      const float e = p[i] - t[i], size = fabsf(e);
      const bool quadratic = delta == 0.0f || size <= delta;
      if (gradient != nullptr)
        gradient[i] = gradient_scale * (delta == 0.0f ? 2.0f * e : (quadratic ? e : copysignf(delta, e)));
      // Every sum's step is one explicit fma, so that the loops with and without a gradient to
      // write add the same bits (nvcc may contract a plain a * b + c in one and not the other).
      loss = delta == 0.0f ? fmaf(e, e, loss)
                           : (quadratic ? fmaf(0.5f * e, e, loss) : fmaf(delta, size - 0.5f * delta, loss));
      sq = fmaf(e, e, sq);
      ab += size;
    }
  losses[threadIdx.x] = loss;
  squared[threadIdx.x] = sq;
  absolute[threadIdx.x] = ab;
  __syncthreads();
  // Row lanes r and r + half hold the same column: halve until row lane 0 holds the sum.
  for (int half = row_lanes / 2; half > 0; half /= 2) {
    if (row_lane < half) {
      losses[threadIdx.x] += losses[threadIdx.x + half * column_lanes];
      squared[threadIdx.x] += squared[threadIdx.x + half * column_lanes];
      absolute[threadIdx.x] += absolute[threadIdx.x + half * column_lanes];
    }
    __syncthreads();
  }
  if (row_lane != 0 || col >= cols) return;
  float* sums = accumulate ? out : out + blockIdx.y * 3 * cols;
  const float values[3] = {losses[lane], squared[lane], absolute[lane]};
  for (int s = 0; s < 3; ++s) {
    if (accumulate)
      sums[s * cols + col] += values[s];
    else
      sums[s * cols + col] = values[s];
  }
}

}  // namespace

void launch_regression_loss(const float* prediction, const float* target, std::int64_t rows, std::int64_t cols,
                            float huber_delta, float* sums, float* gradient, float* scratch, cudaStream_t stream) {
  if (rows * cols == 0) return;
  int column_lanes = 1;
  while (column_lanes < cols && column_lanes < 32) column_lanes *= 2;
  const std::int64_t column_blocks = (cols + column_lanes - 1) / column_lanes;
  const RowChunks chunks = row_chunks(rows, column_blocks, 256, 3 * cols);
  const float gradient_scale = static_cast<float>(1.0 / static_cast<double>(rows * cols));
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(chunks.chunks));
  launch(regression_loss_partial_kernel, grid, kLossThreads, 0, stream, prediction, target, rows, cols, column_lanes,
         chunks.rows, huber_delta, gradient_scale, gradient, chunks.chunks == 1 ? sums : scratch, chunks.chunks == 1);
  check_launch("regression_loss_partial_kernel", [&] { return shape_text("prediction", rows, cols); });
  if (chunks.chunks > 1)
    launch_sum_chunks(scratch, chunks.chunks, 3 * cols, sums, true, "regression loss sums", stream);
}

}  // namespace ember::kernels
