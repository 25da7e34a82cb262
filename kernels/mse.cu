// MSE loss: loss_sum += sum((p - t)^2) / cols (rows * the mean over all elements).
// MAE metric: mae_sum += sum |scale_j (p - t)| / cols.
// Gradient: g = 2 (p - t) / (rows * cols).
// The reductions run in one block with a fixed order (strided per-thread sums, then a tree in
// shared memory), so the same inputs give the same bits: no float atomics.
#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::kernels {
namespace {

constexpr int kReduceThreads = 1024;

/// Sums value over the block in a fixed order; the result is valid in thread 0.
__device__ float block_sum(float value) {
  __shared__ float partial[kReduceThreads];
  partial[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  return partial[0];
}

__global__ void __launch_bounds__(kReduceThreads) mse_loss_single_block_kernel(const float* __restrict__ p,
                                                                               const float* __restrict__ t,
                                                                               long long count, long long cols,
                                                                               float* loss_sum) {
  float sum = 0.0f;
  for (long long i = threadIdx.x; i < count; i += kReduceThreads) {
    const float e = p[i] - t[i];
    sum = fmaf(e, e, sum);
  }
  const float total = block_sum(sum);
  if (threadIdx.x == 0) *loss_sum += total / static_cast<float>(cols);
}

__global__ void __launch_bounds__(kReduceThreads) mae_sum_single_block_kernel(const float* __restrict__ p,
                                                                              const float* __restrict__ t,
                                                                              const float* __restrict__ scale,
                                                                              long long count, long long cols,
                                                                              float* mae_sum) {
  float sum = 0.0f;
  for (long long i = threadIdx.x; i < count; i += kReduceThreads) sum += fabsf((p[i] - t[i]) * scale[i % cols]);
  const float total = block_sum(sum);
  if (threadIdx.x == 0) *mae_sum += total / static_cast<float>(cols);
}

__global__ void mse_gradient_kernel(const float* __restrict__ p, const float* __restrict__ t, float* __restrict__ g,
                                    long long count, float scale) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    g[i] = scale * (p[i] - t[i]);
}

}  // namespace

void launch_mse_loss(const float* prediction, const float* target, std::int64_t rows, std::int64_t cols, float* loss_sum,
                     cudaStream_t stream) {
  mse_loss_single_block_kernel<<<1, kReduceThreads, 0, stream>>>(prediction, target, rows * cols, cols, loss_sum);
  check_launch("mse_loss_single_block_kernel", [&] { return shape_text("prediction", rows, cols); });
}

void launch_mae_sum(const float* prediction, const float* target, const float* scale, std::int64_t rows,
                    std::int64_t cols, float* mae_sum, cudaStream_t stream) {
  mae_sum_single_block_kernel<<<1, kReduceThreads, 0, stream>>>(prediction, target, scale, rows * cols, cols, mae_sum);
  check_launch("mae_sum_single_block_kernel", [&] { return shape_text("prediction", rows, cols); });
}

void launch_mse_gradient(const float* prediction, const float* target, float* gradient, std::int64_t rows,
                         std::int64_t cols, cudaStream_t stream) {
  const std::int64_t count = rows * cols;
  if (count == 0) return;
  const float scale = static_cast<float>(2.0 / static_cast<double>(count));
  mse_gradient_kernel<<<grid_for(count, 256), 256, 0, stream>>>(prediction, target, gradient, count, scale);
  check_launch("mse_gradient_kernel", [&] { return shape_text("prediction", rows, cols); });
}

}  // namespace ember::kernels
