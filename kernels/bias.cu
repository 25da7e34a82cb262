// Bias add: y[i][j] += bias[j] (broadcast over rows).
// Bias gradient: db[j] = sum_i dy[i][j] (column reduction). A block covers 32 columns; its 8 rows
// of threads stride down the rows, then reduce in shared memory in a fixed order (deterministic).
#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::kernels {
namespace {

__global__ void bias_add_kernel(float* __restrict__ y, const float* __restrict__ bias, long long rows, long long cols) {
  const long long count = rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] += bias[i % cols];
}

constexpr int kColumnsPerBlock = 32, kRowThreads = 8;

__global__ void bias_gradient_column_kernel(const float* __restrict__ dy, float* __restrict__ db, long long rows,
                                            long long cols) {
  __shared__ float partial[kRowThreads][kColumnsPerBlock];
  const long long col = blockIdx.x * static_cast<long long>(kColumnsPerBlock) + threadIdx.x;
  float sum = 0.0f;
  if (col < cols)
    for (long long r = threadIdx.y; r < rows; r += kRowThreads) sum += dy[r * cols + col];
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float total = 0.0f;
#pragma unroll
    for (int t = 0; t < kRowThreads; ++t) total += partial[t][threadIdx.x];
    db[col] = total;
  }
}

}  // namespace

void launch_bias_add(float* y, const float* bias, std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  bias_add_kernel<<<grid_for(rows * cols, 256), 256, 0, stream>>>(y, bias, rows, cols);
  check_launch("bias_add_kernel", [&] { return shape_text("y", rows, cols); });
}

void launch_bias_gradient(const float* dy, float* bias_gradient, std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  if (cols == 0) return;
  const dim3 block(kColumnsPerBlock, kRowThreads);
  const auto blocks = static_cast<unsigned>((cols + kColumnsPerBlock - 1) / kColumnsPerBlock);
  bias_gradient_column_kernel<<<blocks, block, 0, stream>>>(dy, bias_gradient, rows, cols);
  check_launch("bias_gradient_column_kernel", [&] { return shape_text("dy", rows, cols); });
}

}  // namespace ember::kernels
