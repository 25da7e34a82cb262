// Bias add: y[i][j] += bias[j] (broadcast over rows). A 2-D grid: blocks stride down the rows
// (blockIdx.y) and across the columns (blockIdx.x), 16-byte accesses when the row length is a
// multiple of 4 and y is 16-byte aligned, so no thread divides an index by the row length.
// Bias gradient: db[j] = sum_i dy[i][j] (column reduction). A block covers 32 columns; its 32 rows
// of threads stride down the rows (each warp reads 128 contiguous bytes per row), then reduce in
// shared memory in a fixed order (deterministic).
#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::kernels {
namespace {

constexpr int kBiasThreads = 256;

/// Width is the row length in units of Vector (float4 or float).
template <typename Vector>
__global__ void __launch_bounds__(kBiasThreads) bias_add_kernel(float* __restrict__ y, const float* __restrict__ bias,
                                                                long long rows, long long width) {
  Vector* rows_base = reinterpret_cast<Vector*>(y);
  const Vector* b = reinterpret_cast<const Vector*>(bias);
  for (long long col = blockIdx.x * static_cast<long long>(kBiasThreads) + threadIdx.x; col < width;
       col += static_cast<long long>(gridDim.x) * kBiasThreads) {
    const Vector add = b[col];
    for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
      Vector& v = rows_base[row * width + col];
      if constexpr (sizeof(Vector) == sizeof(float4)) {
        v.x += add.x;
        v.y += add.y;
        v.z += add.z;
        v.w += add.w;
      } else {
        v += add;
      }
    }
  }
}

constexpr int kColumnsPerBlock = 32, kRowThreads = 32;

__global__ void bias_gradient_column_kernel(const float* __restrict__ dy, float* __restrict__ db, long long rows,
                                            long long cols) {
  __shared__ float partial[kRowThreads][kColumnsPerBlock + 1];
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
  const bool vector = cols % 4 == 0 && aligned16(y) && aligned16(bias);
  const std::int64_t width = vector ? cols / 4 : cols;
  const unsigned column_blocks = grid_for(width, kBiasThreads);
  // About 1024 blocks in all (256 Ki threads, enough 16-byte loads in flight to cover the memory
  // latency of an H200), each thread walking down several rows.
  const std::int64_t wanted = std::max<std::int64_t>(1, 1024 / column_blocks);
  const dim3 grid(column_blocks, static_cast<unsigned>(std::min<std::int64_t>({wanted, rows, 65535})));
  if (vector)
    bias_add_kernel<float4><<<grid, kBiasThreads, 0, stream>>>(y, bias, rows, width);
  else
    bias_add_kernel<float><<<grid, kBiasThreads, 0, stream>>>(y, bias, rows, width);
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
