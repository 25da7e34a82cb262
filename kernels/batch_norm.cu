// BatchNorm (Backend::batch_norm_forward / batch_norm_backward). One thread per column walks down
// its rows in order (a warp reads consecutive columns of a row: coalesced), so every sum is in row
// order whatever the launch. The mean comes first, then the variance of the centred values.
// Columns are few beside rows in a batch (a layer's width), so a thread per column leaves most of
// a large GPU idle; it is correct first, and a split of the rows across a block is the next step
// if the first real run shows it matters.
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

constexpr int kColumnThreads = 128;

struct Moments {
  float mean, inverse_std, variance;
};

/// Column c's mean and 1 / sqrt(var + epsilon) over rows, var biased.
__device__ Moments column_moments(const float* x, long long rows, long long cols, long long c, float epsilon) {
  float sum = 0.0f;
  for (long long r = 0; r < rows; ++r) sum += x[r * cols + c];
  const float mean = sum / static_cast<float>(rows);
  float squares = 0.0f;
  for (long long r = 0; r < rows; ++r) {
    const float centred = x[r * cols + c] - mean;
    squares = fmaf(centred, centred, squares);
  }
  const float variance = squares / static_cast<float>(rows);
  return {mean, 1.0f / sqrtf(variance + epsilon), variance};
}

__global__ void __launch_bounds__(kColumnThreads)
    batch_norm_forward_kernel(const float* x, const float* __restrict__ scale, const float* __restrict__ shift,
                              float* __restrict__ running_mean, float* __restrict__ running_var, long long rows,
                              long long cols, float epsilon, float momentum, bool training, float* y) {
  for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<long long>(gridDim.x) * blockDim.x) {
    Moments moments{running_mean[c], 1.0f / sqrtf(running_var[c] + epsilon), 0.0f};
    if (training) {
      moments = column_moments(x, rows, cols, c, epsilon);
      if (rows > 1) {
        const float unbiased = moments.variance * (static_cast<float>(rows) / static_cast<float>(rows - 1));
        running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * moments.mean;
        running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
      }
    }
    for (long long r = 0; r < rows; ++r)
      y[r * cols + c] = fmaf((x[r * cols + c] - moments.mean) * moments.inverse_std, scale[c], shift[c]);
  }
}

/// The parameter gradients (column sums of dy and of dy * normalized) and dx; dx may alias dy (a
/// thread reads its column of dy before it writes it).
__global__ void __launch_bounds__(kColumnThreads)
    batch_norm_backward_kernel(const float* dy, const float* __restrict__ x, const float* __restrict__ scale,
                               long long rows, long long cols, float epsilon, float* __restrict__ scale_gradient,
                               float* __restrict__ shift_gradient, float* dx) {
  for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (rows == 0) {
      scale_gradient[c] = shift_gradient[c] = 0.0f;
      continue;
    }
    const Moments moments = column_moments(x, rows, cols, c, epsilon);
    float g_sum = 0.0f, g_centred_sum = 0.0f;
    for (long long r = 0; r < rows; ++r) {
      const float g = dy[r * cols + c];
      g_sum += g;
      g_centred_sum = fmaf(g, (x[r * cols + c] - moments.mean) * moments.inverse_std, g_centred_sum);
    }
    scale_gradient[c] = g_centred_sum;
    shift_gradient[c] = g_sum;
    if (dx == nullptr) continue;
    const float g_mean = g_sum / static_cast<float>(rows), g_centred_mean = g_centred_sum / static_cast<float>(rows);
    for (long long r = 0; r < rows; ++r) {
      const float centred = (x[r * cols + c] - moments.mean) * moments.inverse_std;
      dx[r * cols + c] = scale[c] * moments.inverse_std * (dy[r * cols + c] - g_mean - centred * g_centred_mean);
    }
  }
}

}  // namespace

void launch_batch_norm_forward(const float* x, const float* scale, const float* shift, float* running_mean,
                               float* running_var, std::int64_t rows, std::int64_t cols, float epsilon, float momentum,
                               bool training, float* y, cudaStream_t stream) {
  if (rows * cols == 0) return;
  launch(batch_norm_forward_kernel, grid_for(cols, kColumnThreads), kColumnThreads, 0, stream, x, scale, shift,
         running_mean, running_var, static_cast<long long>(rows), static_cast<long long>(cols), epsilon, momentum,
         training, y);
  check_launch("batch_norm_forward_kernel", [&] { return shape_text("x", rows, cols); });
}

void launch_batch_norm_backward(const float* dy, const float* x, const float* scale, std::int64_t rows,
                                std::int64_t cols, float epsilon, float* scale_gradient, float* shift_gradient,
                                float* dx, cudaStream_t stream) {
  if (cols == 0) return;
  launch(batch_norm_backward_kernel, grid_for(cols, kColumnThreads), kColumnThreads, 0, stream, dy, x, scale,
         static_cast<long long>(rows), static_cast<long long>(cols), epsilon, scale_gradient, shift_gradient, dx);
  check_launch("batch_norm_backward_kernel", [&] { return shape_text("dy", rows, cols); });
}

}  // namespace ember::kernels
