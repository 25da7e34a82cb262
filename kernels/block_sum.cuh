#pragma once
// A block's sum in a fixed order: each thread's value, then a tree over the threads whose shape
// depends on the block size alone, so that the same inputs give the same bits run after run.

#include <cuda_runtime_api.h>

namespace ember::kernels {

/// The sum of value over the block's kThreads threads (a power of two, the block's size), returned
/// to every thread. shared holds kThreads floats and is free again on return.
template <int kThreads>
__device__ float block_sum(float value, float* shared) {
  static_assert((kThreads & (kThreads - 1)) == 0, "a power of two");
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const float sum = shared[0];
  __syncthreads();
  return sum;
}

}  // namespace ember::kernels
