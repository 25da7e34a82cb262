// RMSNorm's ops (layer_part.cpp's RMSNorm part, which holds their CPU loops and operand order).
// A row's mean square comes from one block (block_sum's fixed tree); the weight gradient is a
// column sum, one thread per column walking down the rows in order.
#include "block_sum.cuh"
#include "column_dot.cuh"
#include "cuda_check.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"

namespace ember::kernels {
namespace {

constexpr int kRowThreads = 256;

/// 1 / sqrt(mean(row^2) + epsilon), to every thread of the block.
__device__ float inverse_rms(const float* row, long long cols, float epsilon, float* shared) {
  float squares = 0.0f;
  for (long long c = threadIdx.x; c < cols; c += kRowThreads) squares = fmaf(row[c], row[c], squares);
  return 1.0f / sqrtf(block_sum<kRowThreads>(squares, shared) / static_cast<float>(cols) + epsilon);
}

__global__ void __launch_bounds__(kRowThreads)
    rms_norm_forward_kernel(const float* __restrict__ x, const float* __restrict__ weight, long long rows,
                            long long cols, float epsilon, float* __restrict__ y, float* __restrict__ normalized) {
  __shared__ float shared[kRowThreads];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * cols;
    const float inverse = inverse_rms(row, cols, epsilon, shared);
    for (long long c = threadIdx.x; c < cols; c += kRowThreads) {
      const float n = row[c] * inverse;
      y[r * cols + c] = n * weight[c];
      if (normalized != nullptr) normalized[r * cols + c] = n;
    }
  }
}

/// dx = (g - normalized * mean(g * normalized)) / rms, g = dy * weight, per row; dx may alias dy
/// (each thread reads its elements of dy before it writes them).
__global__ void __launch_bounds__(kRowThreads)
    rms_norm_input_gradient_kernel(const float* dy, const float* __restrict__ x, const float* __restrict__ weight,
                                   long long rows, long long cols, float epsilon, float* dx) {
  __shared__ float shared[kRowThreads];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * cols;
    const float inverse = inverse_rms(row, cols, epsilon, shared);
    float gn_sum = 0.0f;
    for (long long c = threadIdx.x; c < cols; c += kRowThreads)
      gn_sum = fmaf(dy[r * cols + c] * weight[c], row[c] * inverse, gn_sum);
    const float gn_mean = block_sum<kRowThreads>(gn_sum, shared) / static_cast<float>(cols);
    for (long long c = threadIdx.x; c < cols; c += kRowThreads)
      dx[r * cols + c] = (dy[r * cols + c] * weight[c] - row[c] * inverse * gn_mean) * inverse;
  }
}

// in: x, weight; out: y, normalized (optional); settings: epsilon.
void launch_forward(const OpArgs& a, cudaStream_t stream) {
  const ConstView x = a.in[0];
  if (x.size() == 0) return;
  launch(rms_norm_forward_kernel, grid_for(x.rows, 1), kRowThreads, 0, stream, x.data, a.in[1].data,
         static_cast<long long>(x.rows), static_cast<long long>(x.cols), a.settings[0], a.out[0].data, a.out[1].data);
  check_launch("rms_norm_forward_kernel", [&] { return shape_text("x", x.rows, x.cols); });
}

// in: dy, x, normalized, weight; out: weight_gradient, dx (optional); settings: epsilon.
void launch_backward(const OpArgs& a, cudaStream_t stream) {
  const ConstView dy = a.in[0];
  if (dy.cols == 0) return;
  // The weight gradient first: dx may overwrite dy.
  launch_column_dot(dy.data, a.in[2].data, dy.rows, dy.cols, a.out[0].data, stream);
  if (a.out[1].data == nullptr || dy.rows == 0) return;
  launch(rms_norm_input_gradient_kernel, grid_for(dy.rows, 1), kRowThreads, 0, stream, dy.data, a.in[1].data,
         a.in[3].data, static_cast<long long>(dy.rows), static_cast<long long>(dy.cols), a.settings[0], a.out[1].data);
  check_launch("rms_norm_input_gradient_kernel", [&] { return shape_text("dy", dy.rows, dy.cols); });
}

}  // namespace

EMBER_LAYER_OP_KERNEL("rms_norm_forward", launch_forward);
EMBER_LAYER_OP_KERNEL("rms_norm_backward", launch_backward);

}  // namespace ember::kernels
