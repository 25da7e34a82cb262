// Scale's ops (engine/src/layers/scale.hpp holds their CPU loops and operand order): elementwise
// products, and the weight gradient as a column sum, one thread per column walking down the rows
// in order.
#include "column_dot.cuh"
#include "cuda_check.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"

namespace ember::kernels {
namespace {

constexpr int kThreads = 256;

/// out = in * weight, the weight broadcast over the rows; out may alias in.
__global__ void scale_columns_kernel(const float* in, const float* __restrict__ weight, long long rows, long long cols,
                                     float* out) {
  const long long n = rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    out[i] = in[i] * weight[i % cols];
}

// in: x, weight; out: y.
void launch_forward(const OpArgs& a, cudaStream_t stream) {
  const ConstView x = a.in[0];
  if (x.size() == 0) return;
  launch(scale_columns_kernel, grid_for(x.size(), kThreads), kThreads, 0, stream, x.data, a.in[1].data,
         static_cast<long long>(x.rows), static_cast<long long>(x.cols), a.out[0].data);
  check_launch("scale_columns_kernel", [&] { return shape_text("x", x.rows, x.cols); });
}

// in: dy, x, weight; out: weight_gradient, dx (optional, may alias dy).
void launch_backward(const OpArgs& a, cudaStream_t stream) {
  const ConstView dy = a.in[0];
  if (dy.cols == 0) return;
  // The weight gradient first: dx may overwrite dy.
  launch_column_dot(dy.data, a.in[1].data, dy.rows, dy.cols, a.out[0].data, stream);
  if (a.out[1].data == nullptr || dy.rows == 0) return;
  launch(scale_columns_kernel, grid_for(dy.size(), kThreads), kThreads, 0, stream, dy.data, a.in[2].data,
         static_cast<long long>(dy.rows), static_cast<long long>(dy.cols), a.out[1].data);
  check_launch("scale_columns_kernel", [&] { return shape_text("dy", dy.rows, dy.cols); });
}

}  // namespace

EMBER_LAYER_OP_KERNEL("scale_forward", launch_forward);
EMBER_LAYER_OP_KERNEL("scale_backward", launch_backward);

}  // namespace ember::kernels
