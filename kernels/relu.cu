// ReLU forward: y = max(x, 0). Backward: dx = dy where the forward output y > 0, else 0.
#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::kernels {
namespace {

__global__ void relu_forward_kernel(const float* x, float* y, long long count) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_backward_kernel(const float* dy, const float* __restrict__ y, float* dx, long long count) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace

void launch_relu_forward(const float* x, float* y, std::int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  relu_forward_kernel<<<grid_for(count, 256), 256, 0, stream>>>(x, y, count);
  check_launch("relu_forward_kernel", [&] { return count_text(count, "elements"); });
}

void launch_relu_backward(const float* dy, const float* y, float* dx, std::int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  relu_backward_kernel<<<grid_for(count, 256), 256, 0, stream>>>(dy, y, dx, count);
  check_launch("relu_backward_kernel", [&] { return count_text(count, "elements"); });
}

}  // namespace ember::kernels
