#pragma once
// The column sums of an elementwise product, sum over r of a[r][c] * b[r][c]: the weight gradient
// of a layer that scales each feature by its weight (RMSNorm's, Scale's). One thread per column
// walks down the rows in order, so that the sum is the same bits run after run.

#include <cuda_runtime_api.h>

#include "cuda_check.hpp"
#include "launch.cuh"

namespace ember::kernels {

template <typename Unused = void>
__global__ void column_dot_kernel(const float* __restrict__ a, const float* __restrict__ b, long long rows,
                                  long long cols, float* __restrict__ sums) {
  for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<long long>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (long long r = 0; r < rows; ++r) sum = fmaf(a[r * cols + c], b[r * cols + c], sum);
    sums[c] = sum;
  }
}

/// sums (cols) = the column sums of a * b, both (rows, cols), on stream.
inline void launch_column_dot(const float* a, const float* b, long long rows, long long cols, float* sums,
                              cudaStream_t stream) {
  launch(column_dot_kernel<>, grid_for(cols, 256), 256, 0, stream, a, b, rows, cols, sums);
  check_launch("column_dot_kernel", [&] { return shape_text("a", rows, cols); });
}

}  // namespace ember::kernels
