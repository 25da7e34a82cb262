// Bias add: y[i][j] += bias[j] (broadcast over rows). A 2-D grid: blocks stride down the rows
// (blockIdx.y) and across the columns (blockIdx.x), 16-byte accesses when the row length is a
// multiple of 4 and y is 16-byte aligned, so no thread divides an index by the row length.
// Bias gradient: db[j] = sum_i dy[i][j] (column reduction), deterministic, in two passes: blocks of
// 32 columns (float4 columns when aligned: a warp reads 512 contiguous bytes per row) by a chunk of
// rows write partial sums to the scratch, then one thread per column adds its chunks in order. The
// chunk count depends on the shape only; with one chunk the first pass writes db directly.
#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "ordered_sum.hpp"

namespace ember::kernels {
namespace {

constexpr int kBiasThreads = 256;

/// Width is the row length in units of Vector (float4 or float).
template <typename Vector>
__global__ void __launch_bounds__(kBiasThreads)
    bias_add_kernel(float* __restrict__ y, const float* __restrict__ bias, long long rows, long long width) {
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

constexpr int kColumnLanes = 32, kRowLanes = 8;  // a bias-gradient block: 32 columns (of Vector) x 8 rows

__device__ __forceinline__ void accumulate(float& sum, float value) {
  sum += value;
}
__device__ __forceinline__ void accumulate(float4& sum, float4 value) {
  sum.x += value.x;
  sum.y += value.y;
  sum.z += value.z;
  sum.w += value.w;
}

/// Pass one: block (x, y) sums rows [y chunk, (y + 1) chunk) of its 32 columns of Vector; its 8 row
/// lanes stride down the chunk and are then added in lane order. Row y of out (width Vectors) gets
/// the sums: the partials, or the bias gradient itself when there is one chunk.
template <typename Vector>
__global__ void __launch_bounds__(kColumnLanes* kRowLanes)
    bias_gradient_partial_kernel(const float* __restrict__ dy, long long rows, long long width, long long chunk,
                                 float* __restrict__ out) {
  __shared__ Vector partial[kRowLanes][kColumnLanes];
  const int lane = threadIdx.x % kColumnLanes, row_lane = threadIdx.x / kColumnLanes;
  const long long col = blockIdx.x * static_cast<long long>(kColumnLanes) + lane;
  const long long begin = blockIdx.y * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  const Vector* in = reinterpret_cast<const Vector*>(dy);
  Vector sum{};
  if (col < width)
    for (long long r = begin + row_lane; r < end; r += kRowLanes) accumulate(sum, in[r * width + col]);
  partial[row_lane][lane] = sum;
  __syncthreads();
  if (row_lane == 0 && col < width) {
    Vector total{};
#pragma unroll
    for (int t = 0; t < kRowLanes; ++t) accumulate(total, partial[t][lane]);
    reinterpret_cast<Vector*>(out)[blockIdx.y * width + col] = total;
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
    launch(bias_add_kernel<float4>, grid, kBiasThreads, 0, stream, y, bias, rows, width);
  else
    launch(bias_add_kernel<float>, grid, kBiasThreads, 0, stream, y, bias, rows, width);
  check_launch("bias_add_kernel", [&] { return shape_text("y", rows, cols); });
}

void launch_bias_gradient(const float* dy, float* bias_gradient, std::int64_t rows, std::int64_t cols, float* scratch,
                          cudaStream_t stream) {
  if (cols == 0) return;
  const bool vector = cols % 4 == 0 && aligned16(dy) && aligned16(bias_gradient);
  const std::int64_t width = vector ? cols / 4 : cols;
  const std::int64_t column_blocks = (width + kColumnLanes - 1) / kColumnLanes;
  const RowChunks chunks = row_chunks(rows, column_blocks, 64, cols);
  float* out = chunks.chunks == 1 ? bias_gradient : scratch;
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(chunks.chunks));
  if (vector)
    launch(bias_gradient_partial_kernel<float4>, grid, kColumnLanes * kRowLanes, 0, stream, dy, rows, width,
           chunks.rows, out);
  else
    launch(bias_gradient_partial_kernel<float>, grid, kColumnLanes * kRowLanes, 0, stream, dy, rows, width, chunks.rows,
           out);
  check_launch("bias_gradient_partial_kernel", [&] { return shape_text("dy", rows, cols); });
  if (chunks.chunks > 1)
    launch_sum_chunks(scratch, chunks.chunks, cols, bias_gradient, false, "bias gradient columns", stream);
}

}  // namespace ember::kernels
