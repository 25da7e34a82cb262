// MSE loss: loss_sum += sum((p - t)^2) / cols (rows * the mean over all elements).
// MAE metric: mae_sum += sum |scale_j (p - t)| / cols.
// Gradient: g = 2 (p - t) / (rows * cols).
//
// The reductions are deterministic (the same inputs give the same bits, no float atomics) and run
// in two passes: up to kMaxReductionBlocks blocks each sum a fixed grid-stride share of the elements (16-byte
// loads for MSE) into one partial, then one block adds the partials in index order. The number
// of blocks depends only on the element count, so the order of every addition is fixed. When one
// block suffices, it adds its sum to the accumulator directly and the second pass is skipped.
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

constexpr int kReduceThreads = 256;
constexpr int kElementsPerThread = 16;  // per pass-one thread, at least: enough loads in flight
static_assert(kMaxReductionBlocks % kReduceThreads == 0, "pass two sums the partials in whole strides");
static_assert(2 * kMaxReductionBlocks <= kReductionScratchFloats, "the fused loss keeps two partials per block");

/// Sums two values over the block in a fixed order (warp shuffles, then the warps' sums); the
/// results are valid in thread 0.
__device__ float2 block_sum_pair(float first, float second) {
  __shared__ float warp_sums[2][kReduceThreads / 32];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    first += __shfl_down_sync(0xffffffffu, first, offset);
    second += __shfl_down_sync(0xffffffffu, second, offset);
  }
  if (threadIdx.x % 32 == 0) {
    warp_sums[0][threadIdx.x / 32] = first;
    warp_sums[1][threadIdx.x / 32] = second;
  }
  __syncthreads();
  float2 total = make_float2(0.0f, 0.0f);
  if (threadIdx.x == 0)
#pragma unroll
    for (int w = 0; w < kReduceThreads / 32; ++w) {
      total.x += warp_sums[0][w];
      total.y += warp_sums[1][w];
    }
  return total;
}

/// Sums one value over the block, in block_sum_pair's order; valid in thread 0.
__device__ float block_sum(float value) {
  return block_sum_pair(value, 0.0f).x;
}

/// Pass one's ending: the block's sum goes to partials[block], or, for a one-block grid, straight
/// into the accumulator.
__device__ void finish_block(float sum, float* partials, float* accumulator, float divisor) {
  const float total = block_sum(sum);
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1)
    *accumulator += total / divisor;
  else
    partials[blockIdx.x] = total;
}

__global__ void __launch_bounds__(kReduceThreads)
    mse_partial_kernel(const float* __restrict__ p, const float* __restrict__ t, long long count, bool vector,
                       float* partials, float* loss_sum, float cols) {
  const long long stride = static_cast<long long>(gridDim.x) * kReduceThreads;
  const long long first = blockIdx.x * static_cast<long long>(kReduceThreads) + threadIdx.x;
  float sum = 0.0f;
  long long scalar_start = 0;
  if (vector) {
    const long long vectors = count / 4;
    for (long long i = first; i < vectors; i += stride) {
      const float4 a = reinterpret_cast<const float4*>(p)[i], b = reinterpret_cast<const float4*>(t)[i];
      const float ex = a.x - b.x, ey = a.y - b.y, ez = a.z - b.z, ew = a.w - b.w;
      sum = fmaf(ex, ex, sum);
      sum = fmaf(ey, ey, sum);
      sum = fmaf(ez, ez, sum);
      sum = fmaf(ew, ew, sum);
    }
    scalar_start = vectors * 4;
  }
  for (long long i = scalar_start + first; i < count; i += stride) {
    const float e = p[i] - t[i];
    sum = fmaf(e, e, sum);
  }
  finish_block(sum, partials, loss_sum, cols);
}

__global__ void __launch_bounds__(kReduceThreads)
    mae_partial_kernel(const float* __restrict__ p, const float* __restrict__ t, const float* __restrict__ scale,
                       long long count, long long cols, float* partials, float* mae_sum) {
  const long long stride = static_cast<long long>(gridDim.x) * kReduceThreads;
  float sum = 0.0f;
  for (long long i = blockIdx.x * static_cast<long long>(kReduceThreads) + threadIdx.x; i < count; i += stride)
    sum += fabsf((p[i] - t[i]) * scale[i % cols]);
  finish_block(sum, partials, mae_sum, static_cast<float>(cols));
}

/// The fused training loss: one read of p and t gives the gradient, the squared-error sum and the
/// scaled absolute-error sum. Partials: squared sums in [0, blocks), absolute sums in [blocks, 2 blocks).
__global__ void __launch_bounds__(kReduceThreads)
    loss_and_gradient_partial_kernel(const float* __restrict__ p, const float* __restrict__ t,
                                     const float* __restrict__ scale, long long count, long long cols,
                                     float gradient_scale, float* __restrict__ gradient, float* partials,
                                     float* loss_sum, float* mae_sum) {
  const long long stride = static_cast<long long>(gridDim.x) * kReduceThreads;
  float squared = 0.0f, absolute = 0.0f;
  for (long long i = blockIdx.x * static_cast<long long>(kReduceThreads) + threadIdx.x; i < count; i += stride) {
    const float e = p[i] - t[i];
    gradient[i] = gradient_scale * e;
    squared = fmaf(e, e, squared);
    absolute += fabsf(e * scale[i % cols]);
  }
  const float2 total = block_sum_pair(squared, absolute);
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1) {
    *loss_sum += total.x / static_cast<float>(cols);
    *mae_sum += total.y / static_cast<float>(cols);
  } else {
    partials[blockIdx.x] = total.x;
    partials[gridDim.x + blockIdx.x] = total.y;
  }
}

/// Pass two of the fused loss: both accumulators from their partials, in a fixed order.
__global__ void __launch_bounds__(kReduceThreads)
    sum_partial_pairs_kernel(const float* __restrict__ partials, int blocks, float* loss_sum, float* mae_sum,
                             float cols) {
  float squared = 0.0f, absolute = 0.0f;
  for (int i = threadIdx.x; i < blocks; i += kReduceThreads) {
    squared += partials[i];
    absolute += partials[blocks + i];
  }
  const float2 total = block_sum_pair(squared, absolute);
  if (threadIdx.x == 0) {
    *loss_sum += total.x / cols;
    *mae_sum += total.y / cols;
  }
}

/// Pass two: accumulator += (sum of partials[0 .. blocks)) / divisor, in a fixed order.
__global__ void __launch_bounds__(kReduceThreads)
    sum_partials_kernel(const float* __restrict__ partials, int blocks, float* accumulator, float divisor) {
  float sum = 0.0f;
  for (int i = threadIdx.x; i < blocks; i += kReduceThreads) sum += partials[i];
  const float total = block_sum(sum);
  if (threadIdx.x == 0) *accumulator += total / divisor;
}

__global__ void mse_gradient_kernel(const float* __restrict__ p, const float* __restrict__ t, float* __restrict__ g,
                                    long long count, float scale) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    g[i] = scale * (p[i] - t[i]);
}

/// Pass one's grid: enough blocks that each thread has kElementsPerThread elements, at most
/// kMaxReductionBlocks. Depends on count only.
int reduction_blocks(long long count) {
  const long long per_block = static_cast<long long>(kReduceThreads) * kElementsPerThread;
  const long long blocks = (count + per_block - 1) / per_block;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxReductionBlocks ? kMaxReductionBlocks : blocks));
}

void sum_partials(const float* partials, int blocks, float* accumulator, float divisor, cudaStream_t stream) {
  if (blocks == 1) return;  // pass one already added its sum
  launch(sum_partials_kernel, 1, kReduceThreads, 0, stream, partials, blocks, accumulator, divisor);
  check_launch("sum_partials_kernel", [&] { return count_text(blocks, "partials"); });
}

}  // namespace

void launch_mse_loss(const float* prediction, const float* target, std::int64_t rows, std::int64_t cols,
                     float* loss_sum, float* scratch, cudaStream_t stream) {
  const long long count = rows * cols;
  const int blocks = reduction_blocks(count);
  const bool vector = aligned16(prediction) && aligned16(target);
  launch(mse_partial_kernel, blocks, kReduceThreads, 0, stream, prediction, target, count, vector, scratch, loss_sum,
         static_cast<float>(cols));
  check_launch("mse_partial_kernel", [&] { return shape_text("prediction", rows, cols); });
  sum_partials(scratch, blocks, loss_sum, static_cast<float>(cols), stream);
}

void launch_mae_sum(const float* prediction, const float* target, const float* scale, std::int64_t rows,
                    std::int64_t cols, float* mae_sum, float* scratch, cudaStream_t stream) {
  const long long count = rows * cols;
  const int blocks = reduction_blocks(count);
  launch(mae_partial_kernel, blocks, kReduceThreads, 0, stream, prediction, target, scale, count, cols, scratch,
         mae_sum);
  check_launch("mae_partial_kernel", [&] { return shape_text("prediction", rows, cols); });
  sum_partials(scratch, blocks, mae_sum, static_cast<float>(cols), stream);
}

void launch_mse_loss_and_gradient(const float* prediction, const float* target, const float* scale, std::int64_t rows,
                                  std::int64_t cols, float* loss_sum, float* mae_sum, float* gradient, float* scratch,
                                  cudaStream_t stream) {
  const long long count = rows * cols;
  if (count == 0) return;
  const int blocks = reduction_blocks(count);
  const float gradient_scale = static_cast<float>(2.0 / static_cast<double>(count));
  launch(loss_and_gradient_partial_kernel, blocks, kReduceThreads, 0, stream, prediction, target, scale, count, cols,
         gradient_scale, gradient, scratch, loss_sum, mae_sum);
  check_launch("loss_and_gradient_partial_kernel", [&] { return shape_text("prediction", rows, cols); });
  if (blocks == 1) return;  // pass one already added its sums
  launch(sum_partial_pairs_kernel, 1, kReduceThreads, 0, stream, scratch, blocks, loss_sum, mae_sum,
         static_cast<float>(cols));
  check_launch("sum_partial_pairs_kernel", [&] { return count_text(blocks, "partials"); });
}

void launch_mse_gradient(const float* prediction, const float* target, float* gradient, std::int64_t rows,
                         std::int64_t cols, cudaStream_t stream) {
  const std::int64_t count = rows * cols;
  if (count == 0) return;
  const float scale = static_cast<float>(2.0 / static_cast<double>(count));
  launch(mse_gradient_kernel, grid_for(count, 256), 256, 0, stream, prediction, target, gradient, count, scale);
  check_launch("mse_gradient_kernel", [&] { return shape_text("prediction", rows, cols); });
}

}  // namespace ember::kernels
