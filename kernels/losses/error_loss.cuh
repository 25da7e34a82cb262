#pragma once
// A regression loss of each element's error e = p - t (engine/src/losses/part.hpp's ErrorLossOps),
// with its metric sums and gradient, from one read of prediction p and target t (rows, cols):
//   sums[c]          += sum over rows of the loss
//   sums[cols + c]   += sum over rows of e^2          (R^2)
//   sums[2 cols + c] += sum over rows of |e|          (the MAE)
//   gradient          = d mean loss / d p = Math::gradient(e) / (rows * cols); skipped when null
// A loss's kernel file (losses/NAME.cu) defines Math, constructed from the op's settings, with
// `float add(float e, float sum)` (sum + the loss of e, each step one explicit fma or add, so that
// the loops with and without a gradient to write add the same bits: nvcc may contract a plain
// a * b + c in one and not the other) and `float gradient(float e)`, and registers
// launch_error_loss<Math> under its op's name.
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
#include <span>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"
#include "ordered_sum.hpp"

namespace ember::kernels {

inline constexpr int kErrorLossThreads = 256;

template <typename Math>
__global__ void __launch_bounds__(kErrorLossThreads)
    error_loss_partial_kernel(const float* __restrict__ p, const float* __restrict__ t, long long rows, long long cols,
                              int column_lanes, long long chunk, Math math, float gradient_scale,
                              float* __restrict__ gradient, float* __restrict__ out, bool accumulate) {
  __shared__ float losses[kErrorLossThreads], squared[kErrorLossThreads], absolute[kErrorLossThreads];
  const int lane = static_cast<int>(threadIdx.x) % column_lanes,
            row_lane = static_cast<int>(threadIdx.x) / column_lanes;
  const int row_lanes = kErrorLossThreads / column_lanes;
  const long long col = blockIdx.x * static_cast<long long>(column_lanes) + lane;
  const long long begin = blockIdx.y * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  float loss = 0.0f, sq = 0.0f, ab = 0.0f;
  if (col < cols)
    for (long long r = begin + row_lane; r < end; r += row_lanes) {
      const long long i = r * cols + col;
      const float e = p[i] - t[i];
      if (gradient != nullptr) gradient[i] = gradient_scale * math.gradient(e);
      loss = math.add(e, loss);
      sq = fmaf(e, e, sq);
      ab += fabsf(e);
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

/// The op's launch: in prediction, target; out sums (1, 3 cols), gradient or null; settings, Math's.
template <typename Math>
void launch_error_loss(const OpArgs& a, cudaStream_t stream) {
  const ConstView prediction = a.in[0];
  const std::int64_t rows = prediction.rows, cols = prediction.cols;
  if (rows * cols == 0) return;
  int column_lanes = 1;
  while (column_lanes < cols && column_lanes < 32) column_lanes *= 2;
  const std::int64_t column_blocks = (cols + column_lanes - 1) / column_lanes;
  const RowChunks chunks = row_chunks(rows, column_blocks, 256, 3 * cols);
  const float gradient_scale = static_cast<float>(1.0 / static_cast<double>(rows * cols));
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(chunks.chunks));
  float* sums = a.out[0].data;
  launch(error_loss_partial_kernel<Math>, grid, kErrorLossThreads, 0, stream, prediction.data, a.in[1].data, rows, cols,
         column_lanes, chunks.rows, Math(a.settings), gradient_scale, a.out[1].data,
         chunks.chunks == 1 ? sums : a.scratch, chunks.chunks == 1);
  check_launch("error_loss_partial_kernel", [&] { return shape_text("prediction", rows, cols); });
  if (chunks.chunks > 1)
    launch_sum_chunks(a.scratch, chunks.chunks, 3 * cols, sums, true, "regression loss sums", stream);
}

}  // namespace ember::kernels
