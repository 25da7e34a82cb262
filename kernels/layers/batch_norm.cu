// BatchNorm's ops (engine/src/layers/batch_norm.hpp holds their CPU loops, operands and the scratch
// layout of a batch across ranks). A block takes 32 columns; its 16
// warps take every 16th row each (a warp reads 32 consecutive values of a row: coalesced), and a
// fixed tree adds the warps' sums in shared memory, so the order of every addition depends on the
// shape alone. The mean comes first, then the variance of the centred values. A batch across the
// ranks of a data-parallel run (OpArgs::ranks) takes its figures from totals the
// ranks summed between kernels: batch_norm_rank_sums_kernel gives each rank's part.
#include <cstdint>

#include "cuda_check.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"

namespace ember::kernels {
namespace {

constexpr int kTileColumns = 32, kRowGroups = 16, kThreads = kTileColumns * kRowGroups;

/// The block's sums over its row groups of two values per column (a fixed tree), returned to every
/// thread of the column. shared holds 2 * kThreads floats and is free again on return.
struct Pair {
  float a, b;
};
__device__ Pair column_sums(Pair value, float* shared) {
  const int column = threadIdx.x % kTileColumns, group = threadIdx.x / kTileColumns;
  shared[threadIdx.x] = value.a;
  shared[kThreads + threadIdx.x] = value.b;
  __syncthreads();
  for (int half = kRowGroups / 2; half > 0; half /= 2) {
    if (group < half) {
      shared[threadIdx.x] += shared[threadIdx.x + half * kTileColumns];
      shared[kThreads + threadIdx.x] += shared[kThreads + threadIdx.x + half * kTileColumns];
    }
    __syncthreads();
  }
  const Pair sum{shared[column], shared[kThreads + column]};
  __syncthreads();
  return sum;
}

struct Moments {
  float mean, inverse_std, variance;
};

/// Column c's sum over rows of x - center, or (squared) of its square, for every thread of the
/// column; threads of a column past the last one (c >= cols) take part with zeros.
__device__ float column_total(const float* x, long long rows, long long cols, long long c, float center, bool squared,
                              float* shared) {
  const int group = threadIdx.x / kTileColumns;
  float sum = 0.0f;
  if (c < cols)
    for (long long r = group; r < rows; r += kRowGroups) {
      const float value = x[r * cols + c] - center;
      sum = squared ? fmaf(value, value, sum) : sum + value;
    }
  return column_sums({sum, 0.0f}, shared).a;
}

/// Column c's mean and 1 / sqrt(var + epsilon) over rows (var biased), for every thread of the
/// column (all of them take part).
__device__ Moments column_moments(const float* x, long long rows, long long cols, long long c, float epsilon,
                                  float* shared) {
  const float mean = column_total(x, rows, cols, c, 0.0f, false, shared) / static_cast<float>(rows);
  const float variance = column_total(x, rows, cols, c, mean, true, shared) / static_cast<float>(rows);
  return {mean, 1.0f / sqrtf(variance + epsilon), variance};
}

/// Column c's figures from the totals over the ranks (Backend::batch_norm_forward's scratch
/// layout: the column sums, the rows, the squared deviations' sums); c < cols.
__device__ Moments total_moments(const float* totals, long long cols, long long c, float epsilon) {
  const float rows = totals[cols], variance = totals[cols + 1 + c] / rows;
  return {totals[c] / rows, 1.0f / sqrtf(variance + epsilon), variance};
}

/// This rank's part of the totals: without totals, the column sums of x into sums[0, cols) and the
/// rows into sums[cols]; with them (the column sums over every rank), the sums of the squared
/// deviations from their mean into sums[0, cols).
__global__ void __launch_bounds__(kThreads)
    batch_norm_rank_sums_kernel(const float* __restrict__ x, long long rows, long long cols,
                                const float* __restrict__ totals, float* __restrict__ sums) {
  __shared__ float shared[2 * kThreads];
  const int group = threadIdx.x / kTileColumns;
  for (long long tile = blockIdx.x; tile * kTileColumns < cols; tile += gridDim.x) {
    const long long c = tile * kTileColumns + threadIdx.x % kTileColumns;
    const float mean = totals != nullptr && c < cols ? totals[c] / totals[cols] : 0.0f;
    const float total = column_total(x, rows, cols, c, mean, totals != nullptr, shared);
    if (c < cols && group == 0) sums[c] = total;
  }
  if (totals == nullptr && blockIdx.x == 0 && threadIdx.x == 0) sums[cols] = static_cast<float>(rows);
}

__global__ void __launch_bounds__(kThreads)
    batch_norm_forward_kernel(const float* x, const float* __restrict__ scale, const float* __restrict__ shift,
                              float* __restrict__ running_mean, float* __restrict__ running_var, long long rows,
                              long long cols, float epsilon, float momentum, bool training,
                              const float* __restrict__ totals, float* y) {
  __shared__ float shared[2 * kThreads];
  const int group = threadIdx.x / kTileColumns;
  for (long long tile = blockIdx.x; tile * kTileColumns < cols; tile += gridDim.x) {
    const long long c = tile * kTileColumns + threadIdx.x % kTileColumns;
    Moments moments{0.0f, 0.0f, 0.0f};
    if (training && totals == nullptr) {
      moments = column_moments(x, rows, cols, c, epsilon, shared);  // every thread: it synchronizes
    } else if (training && c < cols) {
      moments = total_moments(totals, cols, c, epsilon);
    } else if (c < cols) {
      moments = {running_mean[c], 1.0f / sqrtf(running_var[c] + epsilon), 0.0f};
    }
    if (c >= cols) continue;
    // Every read of x above is done (column_sums synchronized): y may overwrite it.
    const float batch_rows = totals != nullptr ? totals[cols] : static_cast<float>(rows);
    if (training && batch_rows > 1.0f && group == 0) {
      const float unbiased = moments.variance * (batch_rows / (batch_rows - 1.0f));
      running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * moments.mean;
      running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
    }
    for (long long r = group; r < rows; r += kRowGroups)
      y[r * cols + c] = fmaf((x[r * cols + c] - moments.mean) * moments.inverse_std, scale[c], shift[c]);
  }
}

/// The parameter gradients (column sums of dy and of dy * normalized) and dx; dx may alias dy (a
/// thread writes only the elements it read, after every thread's sums are done). With totals (a
/// batch across ranks) the figures are theirs, and rank_sums receives the shift's gradient, then the
/// scale's, for the ranks to sum before batch_norm_input_gradient_kernel (dx is null).
__global__ void __launch_bounds__(kThreads)
    batch_norm_backward_kernel(const float* dy, const float* __restrict__ x, const float* __restrict__ scale,
                               long long rows, long long cols, float epsilon, const float* __restrict__ totals,
                               float* __restrict__ scale_gradient, float* __restrict__ shift_gradient,
                               float* __restrict__ rank_sums, float* dx) {
  __shared__ float shared[2 * kThreads];
  const int group = threadIdx.x / kTileColumns;
  for (long long tile = blockIdx.x; tile * kTileColumns < cols; tile += gridDim.x) {
    const long long c = tile * kTileColumns + threadIdx.x % kTileColumns;
    if (rows == 0) {
      if (c < cols && group == 0) {
        scale_gradient[c] = shift_gradient[c] = 0.0f;
        if (rank_sums != nullptr) rank_sums[c] = rank_sums[cols + c] = 0.0f;
      }
      continue;
    }
    Moments moments{0.0f, 0.0f, 0.0f};
    if (totals == nullptr)
      moments = column_moments(x, rows, cols, c, epsilon, shared);  // every thread: it synchronizes
    else if (c < cols)
      moments = total_moments(totals, cols, c, epsilon);
    float g_sum = 0.0f, g_centred_sum = 0.0f;
    if (c < cols)
      for (long long r = group; r < rows; r += kRowGroups) {
        const float g = dy[r * cols + c];
        g_sum += g;
        g_centred_sum = fmaf(g, (x[r * cols + c] - moments.mean) * moments.inverse_std, g_centred_sum);
      }
    const Pair sums = column_sums({g_sum, g_centred_sum}, shared);
    if (c >= cols) continue;
    if (group == 0) {
      scale_gradient[c] = sums.b;
      shift_gradient[c] = sums.a;
      if (rank_sums != nullptr) {
        rank_sums[c] = sums.a;
        rank_sums[cols + c] = sums.b;
      }
    }
    if (dx == nullptr) continue;
    const float g_mean = sums.a / static_cast<float>(rows), g_centred_mean = sums.b / static_cast<float>(rows);
    for (long long r = group; r < rows; r += kRowGroups) {
      const float centred = (x[r * cols + c] - moments.mean) * moments.inverse_std;
      dx[r * cols + c] = scale[c] * moments.inverse_std * (dy[r * cols + c] - g_mean - centred * g_centred_mean);
    }
  }
}

/// dx over a batch across ranks, element by element: the figures from totals, the means of the
/// gradient sums over the ranks (gradient_totals: the shift's, then the scale's) over this rank's
/// rows. dx may alias dy.
__global__ void batch_norm_input_gradient_kernel(const float* dy, const float* __restrict__ x,
                                                 const float* __restrict__ scale, long long rows, long long cols,
                                                 float epsilon, const float* __restrict__ totals,
                                                 const float* __restrict__ gradient_totals, float* dx) {
  const long long count = rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long c = i % cols;
    const Moments moments = total_moments(totals, cols, c, epsilon);
    const float centred = (x[i] - moments.mean) * moments.inverse_std;
    const float g_mean = gradient_totals[c] / static_cast<float>(rows),
                g_centred_mean = gradient_totals[cols + c] / static_cast<float>(rows);
    dx[i] = scale[c] * moments.inverse_std * (dy[i] - g_mean - centred * g_centred_mean);
  }
}

void launch_batch_norm_rank_sums(const float* x, std::int64_t rows, std::int64_t cols, const float* totals, float* sums,
                                 cudaStream_t stream) {
  if (cols == 0) return;
  launch(batch_norm_rank_sums_kernel, grid_for(cols, kTileColumns), kThreads, 0, stream, x,
         static_cast<long long>(rows), static_cast<long long>(cols), totals, sums);
  check_launch("batch_norm_rank_sums_kernel", [&] { return shape_text("x", rows, cols); });
}

void launch_batch_norm_input_gradient(const float* dy, const float* x, const float* scale, std::int64_t rows,
                                      std::int64_t cols, float epsilon, const float* totals,
                                      const float* gradient_totals, float* dx, cudaStream_t stream) {
  if (rows * cols == 0) return;
  constexpr int kBlock = 256;
  launch(batch_norm_input_gradient_kernel, grid_for(rows * cols, kBlock), kBlock, 0, stream, dy, x, scale,
         static_cast<long long>(rows), static_cast<long long>(cols), epsilon, totals, gradient_totals, dx);
  check_launch("batch_norm_input_gradient_kernel", [&] { return shape_text("dy", rows, cols); });
}

void launch_batch_norm_forward(const float* x, const float* scale, const float* shift, float* running_mean,
                               float* running_var, std::int64_t rows, std::int64_t cols, float epsilon, float momentum,
                               bool training, const float* totals, float* y, cudaStream_t stream) {
  if (cols == 0 || (rows == 0 && totals == nullptr)) return;  // with totals, the running figures move
  launch(batch_norm_forward_kernel, grid_for(cols, kTileColumns), kThreads, 0, stream, x, scale, shift, running_mean,
         running_var, static_cast<long long>(rows), static_cast<long long>(cols), epsilon, momentum, training, totals,
         y);
  check_launch("batch_norm_forward_kernel", [&] { return shape_text("x", rows, cols); });
}

void launch_batch_norm_backward(const float* dy, const float* x, const float* scale, std::int64_t rows,
                                std::int64_t cols, float epsilon, const float* totals, float* scale_gradient,
                                float* shift_gradient, float* rank_sums, float* dx, cudaStream_t stream) {
  if (cols == 0) return;
  launch(batch_norm_backward_kernel, grid_for(cols, kTileColumns), kThreads, 0, stream, dy, x, scale,
         static_cast<long long>(rows), static_cast<long long>(cols), epsilon, totals, scale_gradient, shift_gradient,
         rank_sums, dx);
  check_launch("batch_norm_backward_kernel", [&] { return shape_text("dy", rows, cols); });
}

// in: x, scale, shift; out: y, running_mean, running_var; settings: epsilon, momentum, training.
void launch_forward(const OpArgs& a, cudaStream_t stream) {
  const ConstView x = a.in[0];
  float* totals = a.ranks != nullptr ? a.ranks->scratch : nullptr;
  if (a.ranks != nullptr) {  // the column sums and rows, then the squared deviations, over the ranks
    launch_batch_norm_rank_sums(x.data, x.rows, x.cols, nullptr, totals, stream);
    a.ranks->sum(totals, x.cols + 1, false);
    launch_batch_norm_rank_sums(x.data, x.rows, x.cols, totals, totals + x.cols + 1, stream);
    a.ranks->sum(totals + x.cols + 1, x.cols, false);
  }
  launch_batch_norm_forward(x.data, a.in[1].data, a.in[2].data, a.out[1].data, a.out[2].data, x.rows, x.cols,
                            a.settings[0], a.settings[1], a.settings[2] != 0.0f, totals, a.out[0].data, stream);
}

// in: dy, x, scale; out: scale_gradient, shift_gradient, dx (optional, may alias dy); settings: epsilon.
void launch_backward(const OpArgs& a, cudaStream_t stream) {
  const ConstView dy = a.in[0], x = a.in[1], scale = a.in[2];
  float* scale_gradient = a.out[0].data;
  float* shift_gradient = a.out[1].data;
  float* dx = a.out[2].data;
  const float epsilon = a.settings[0];
  if (a.ranks == nullptr) {
    launch_batch_norm_backward(dy.data, x.data, scale.data, dy.rows, dy.cols, epsilon, nullptr, scale_gradient,
                               shift_gradient, nullptr, dx, stream);
    return;
  }
  float* gradient_totals = a.ranks->scratch + 2 * dy.cols + 1;
  launch_batch_norm_backward(dy.data, x.data, scale.data, dy.rows, dy.cols, epsilon, a.ranks->scratch, scale_gradient,
                             shift_gradient, gradient_totals, nullptr, stream);
  a.ranks->sum(gradient_totals, 2 * dy.cols, true);
  if (dx != nullptr)
    launch_batch_norm_input_gradient(dy.data, x.data, scale.data, dy.rows, dy.cols, epsilon, a.ranks->scratch,
                                     gradient_totals, dx, stream);
}

}  // namespace

EMBER_LAYER_OP_KERNEL("batch_norm_forward", launch_forward);
EMBER_LAYER_OP_KERNEL("batch_norm_backward", launch_backward);

}  // namespace ember::kernels
