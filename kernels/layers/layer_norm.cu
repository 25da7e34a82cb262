// LayerNorm's ops (engine/src/layers/layer_norm.hpp's part holds their CPU loops and operand
// order). A row's statistics come from one block: each thread sums a strided share of the row, then
// a fixed tree adds the threads' sums, so the order of every addition depends on the width alone.
// The mean comes first, then the variance of the centred values (no cancellation of E[x^2] -
// mean^2). The parameter gradients are column sums, one thread per column walking down the rows
// in order.
#include <cstdint>

#include "block_sum.cuh"
#include "cuda_check.hpp"
#include "device_intrinsics.cuh"
#include "launch.cuh"
#include "layer_ops.hpp"

namespace ember::kernels {
namespace {

constexpr int kRowThreads = 256;

struct Moments {
  float mean, inverse_std;
};

/// The row's mean and 1 / sqrt(var + epsilon), var the biased variance.
__device__ Moments row_moments(const float* row, long long cols, float epsilon, float* shared) {
  float sum = 0.0f;
  for (long long c = threadIdx.x; c < cols; c += kRowThreads) sum += row[c];
  const float mean = block_sum<kRowThreads>(sum, shared) / static_cast<float>(cols);
  float squares = 0.0f;
  for (long long c = threadIdx.x; c < cols; c += kRowThreads) {
    const float centred = row[c] - mean;
    squares = fmaf(centred, centred, squares);
  }
  const float variance = block_sum<kRowThreads>(squares, shared) / static_cast<float>(cols);
  return {mean, 1.0f / sqrtf(variance + epsilon)};
}

__global__ void __launch_bounds__(kRowThreads)
    layer_norm_forward_kernel(const float* __restrict__ x, const float* __restrict__ scale,
                              const float* __restrict__ shift, long long rows, long long cols, float epsilon,
                              float* __restrict__ y, float* __restrict__ normalized) {
  __shared__ float shared[kRowThreads];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * cols;
    const Moments moments = row_moments(row, cols, epsilon, shared);
    for (long long c = threadIdx.x; c < cols; c += kRowThreads) {
      const float centred = (row[c] - moments.mean) * moments.inverse_std;
      y[r * cols + c] = fmaf(centred, scale[c], shift[c]);
      if (normalized != nullptr) normalized[r * cols + c] = centred;
    }
  }
}

/// dx = (g - mean(g) - normalized * mean(g * normalized)) / std, g = dy * scale, per row; dx may
/// alias dy (each thread reads its elements of dy before it writes them).
__global__ void __launch_bounds__(kRowThreads)
    layer_norm_input_gradient_kernel(const float* dy, const float* __restrict__ x, const float* __restrict__ scale,
                                     long long rows, long long cols, float epsilon, float* dx) {
  __shared__ float shared[kRowThreads];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * cols;
    const Moments moments = row_moments(row, cols, epsilon, shared);
    float g_sum = 0.0f, g_centred_sum = 0.0f;
    for (long long c = threadIdx.x; c < cols; c += kRowThreads) {
      // Rounded as the second loop rounds it: with one column, g - g_mean is then exactly zero.
      const float g = device::rounded_product(dy[r * cols + c], scale[c]);
      g_sum += g;
      g_centred_sum = fmaf(g, (row[c] - moments.mean) * moments.inverse_std, g_centred_sum);
    }
    const float g_mean = block_sum<kRowThreads>(g_sum, shared) / static_cast<float>(cols);
    const float g_centred_mean = block_sum<kRowThreads>(g_centred_sum, shared) / static_cast<float>(cols);
    for (long long c = threadIdx.x; c < cols; c += kRowThreads) {
      const float centred = (row[c] - moments.mean) * moments.inverse_std;
      const float g = device::rounded_product(dy[r * cols + c], scale[c]);
      dx[r * cols + c] = (g - g_mean - centred * g_centred_mean) * moments.inverse_std;
    }
  }
}

__global__ void layer_norm_parameter_gradient_kernel(const float* __restrict__ dy, const float* __restrict__ normalized,
                                                     long long rows, long long cols, float* __restrict__ scale_gradient,
                                                     float* __restrict__ shift_gradient) {
  for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<long long>(gridDim.x) * blockDim.x) {
    float scale_sum = 0.0f, shift_sum = 0.0f;
    for (long long r = 0; r < rows; ++r) {
      scale_sum = fmaf(dy[r * cols + c], normalized[r * cols + c], scale_sum);
      shift_sum += dy[r * cols + c];
    }
    scale_gradient[c] = scale_sum;
    shift_gradient[c] = shift_sum;
  }
}

// in: x, scale, shift; out: y, normalized (optional); settings: epsilon.
void launch_forward(const OpArgs& a, cudaStream_t stream) {
  const ConstView x = a.in[0];
  if (x.size() == 0) return;
  launch(layer_norm_forward_kernel, grid_for(x.rows, 1), kRowThreads, 0, stream, x.data, a.in[1].data, a.in[2].data,
         static_cast<long long>(x.rows), static_cast<long long>(x.cols), a.settings[0], a.out[0].data, a.out[1].data);
  check_launch("layer_norm_forward_kernel", [&] { return shape_text("x", x.rows, x.cols); });
}

// in: dy, x, normalized, scale; out: scale_gradient, shift_gradient, dx (optional); settings: epsilon.
void launch_backward(const OpArgs& a, cudaStream_t stream) {
  const ConstView dy = a.in[0];
  const long long rows = dy.rows, cols = dy.cols;
  if (cols == 0) return;
  // The parameter gradients first: dx may overwrite dy.
  launch(layer_norm_parameter_gradient_kernel, grid_for(cols, 256), 256, 0, stream, dy.data, a.in[2].data, rows, cols,
         a.out[0].data, a.out[1].data);
  check_launch("layer_norm_parameter_gradient_kernel", [&] { return shape_text("dy", rows, cols); });
  if (a.out[2].data == nullptr || rows == 0) return;
  launch(layer_norm_input_gradient_kernel, grid_for(rows, 1), kRowThreads, 0, stream, dy.data, a.in[1].data,
         a.in[3].data, rows, cols, a.settings[0], a.out[2].data);
  check_launch("layer_norm_input_gradient_kernel", [&] { return shape_text("dy", rows, cols); });
}

}  // namespace

EMBER_LAYER_OP_KERNEL("layer_norm_forward", launch_forward);
EMBER_LAYER_OP_KERNEL("layer_norm_backward", launch_backward);

}  // namespace ember::kernels
