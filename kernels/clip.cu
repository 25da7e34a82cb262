// Backend::clip_by_norm: values *= min(1, max_norm / (||values||_2 + 1e-6)), as PyTorch's
// clip_grad_norm_, in three launches that read nothing from the host, so that a recorded step stays
// valid: a fixed grid of blocks sums squares in grid-stride order and a fixed tree (one partial per
// block), one block adds the partials in a fixed tree in float64 and writes the factor after them in
// the scratch, and the scaling reads it. The order of every addition depends on count alone.
#include <cstdint>

#include "cuda_check.hpp"
#include "host_device.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

constexpr int kClipThreads = 256;
constexpr int kClipBlocks = kClipThreads;  // the second pass takes one partial per thread

__global__ void __launch_bounds__(kClipThreads)
    clip_squares_kernel(const float* __restrict__ values, long long count, float* __restrict__ partials) {
  __shared__ float sums[kClipThreads];
  float sum = 0.0f;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    sum = fmaf(values[i], values[i], sum);
  sums[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kClipThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = sums[0];
}

__global__ void __launch_bounds__(kClipThreads) clip_factor_kernel(float* partials, float max_norm) {
  __shared__ double sums[kClipThreads];
  sums[threadIdx.x] = partials[threadIdx.x];
  __syncthreads();
  for (int half = kClipThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    partials[kClipBlocks] = static_cast<float>(clip_factor(sqrt(sums[0]), static_cast<double>(max_norm)));
}

__global__ void clip_scale_kernel(float* __restrict__ values, long long count, const float* __restrict__ factor) {
  const float f = *factor;
  if (f >= 1.0f) return;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    values[i] *= f;
}

}  // namespace

void launch_clip_by_norm(float* values, std::int64_t count, float max_norm, float* scratch, cudaStream_t stream) {
  if (count == 0) return;
  launch(clip_squares_kernel, kClipBlocks, kClipThreads, 0, stream, values, static_cast<long long>(count), scratch);
  check_launch("clip_squares_kernel", [&] { return count_text(count, "values"); });
  launch(clip_factor_kernel, 1, kClipThreads, 0, stream, scratch, max_norm);
  check_launch("clip_factor_kernel", [&] { return count_text(count, "values"); });
  launch(clip_scale_kernel, grid_for(count, 256), 256, 0, stream, values, static_cast<long long>(count),
         scratch + kClipBlocks);
  check_launch("clip_scale_kernel", [&] { return count_text(count, "values"); });
}

}  // namespace ember::kernels
