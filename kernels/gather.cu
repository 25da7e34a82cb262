// Gather rows: destination[r][c] = source[indices[*cursor + r]][c], r < rows. The cursor lives in
// device memory so that a captured training step reads the batch position when it replays. A
// training step gathers its x and y batches and advances the cursor in one launch
// (gather_batch_kernel). Also the cursor advance and fill, and the random fill of the benchmarks'
// inputs.
#include <algorithm>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

/// Copies rows batch[r] of source to rows r of destination, r < rows: blocks stride down the
/// destination rows (blockIdx.y) and across the columns in units of Vector (float4 when rows are
/// 16-byte aligned, else float): one index read per row, no division. A bad index gives NaNs.
template <typename Vector>
__device__ void gather_rows_block(const float* __restrict__ source, long long source_rows, long long width,
                                  const std::int32_t* __restrict__ batch, float* __restrict__ destination,
                                  long long rows) {
  const Vector* from = reinterpret_cast<const Vector*>(source);
  Vector* to = reinterpret_cast<Vector*>(destination);
  for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
    const long long row = batch[r];
    const bool valid = row >= 0 && row < source_rows;
    for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < width;
         c += static_cast<long long>(gridDim.x) * blockDim.x) {
      if (valid) {
        to[r * width + c] = from[row * width + c];
      } else {
        const float nan = __int_as_float(0x7fc00000);
        if constexpr (sizeof(Vector) == sizeof(float4))
          to[r * width + c] = make_float4(nan, nan, nan, nan);
        else
          to[r * width + c] = nan;
      }
    }
  }
}

template <typename Vector>
__global__ void gather_rows_kernel(const float* __restrict__ source, long long source_rows, long long width,
                                   const std::int32_t* __restrict__ indices, const std::int32_t* __restrict__ cursor,
                                   float* __restrict__ destination, long long rows) {
  gather_rows_block<Vector>(source, source_rows, width, indices + *cursor, destination, rows);
}

/// One matrix of a gather: its source, row width (in floats) and destination.
struct GatherPart {
  const float* source;
  float* destination;
  long long cols;
  bool vector;                                                                      // 16-byte accesses
  __host__ __device__ long long width() const { return vector ? cols / 4 : cols; }  // row width in accesses
};

GatherPart gather_part(const float* source, float* destination, long long cols) {
  return {source, destination, cols, cols % 4 == 0 && aligned16(source) && aligned16(destination)};
}

/// Blocks down the rows: about `blocks` in all with column_blocks across, at most one per row.
unsigned row_blocks(long long rows, long long column_blocks, long long blocks) {
  return static_cast<unsigned>(
      std::min<long long>({std::max<long long>(1, blocks / column_blocks), std::max<long long>(rows, 1), 65535}));
}

/// blockIdx.z 0 gathers x, 1 gathers y; the last block to finish advances the cursor. Every block
/// reads the cursor before it counts itself done, so none reads it after the advance.
__global__ void gather_batch_kernel(GatherPart x, GatherPart y, long long source_rows,
                                    const std::int32_t* __restrict__ indices, std::int32_t* cursor, long long rows,
                                    unsigned* done) {
  const GatherPart part = blockIdx.z == 0 ? x : y;
  const std::int32_t* batch = indices + *cursor;
  if (part.vector)
    gather_rows_block<float4>(part.source, source_rows, part.width(), batch, part.destination, rows);
  else
    gather_rows_block<float>(part.source, source_rows, part.width(), batch, part.destination, rows);
  __shared__ bool last;
  __syncthreads();  // the whole block has read the cursor
  if (threadIdx.x == 0) {
    __threadfence();
    last = atomicAdd(done, 1u) == gridDim.x * gridDim.y * gridDim.z - 1;
  }
  __syncthreads();
  if (last && threadIdx.x == 0) {
    *cursor += static_cast<std::int32_t>(rows);
    *done = 0;  // ready for the next launch
  }
}

__global__ void advance_cursor_kernel(std::int32_t* cursor, std::int32_t amount) {
  *cursor += amount;
}

/// y[i] in (0, 1]: the top 24 bits of SplitMix64's finalizer on seed + i, plus one, over 2^24.
__global__ void fill_uniform_kernel(float* y, long long count, unsigned long long seed) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    unsigned long long z = seed + 0x9e3779b97f4a7c15ull * static_cast<unsigned long long>(i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    y[i] = static_cast<float>((z >> 40) + 1) * 0x1.0p-24f;
  }
}

__global__ void fill_kernel(float* y, long long count, float value) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] = value;
}

/// values[i] *= scales[i / cols]: one division per element, on a gradient a few columns wide.
__global__ void scale_rows_kernel(const float* __restrict__ scales, float* __restrict__ values, long long cols,
                                  long long count) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    values[i] *= scales[i / cols];
}

}  // namespace

void launch_scale_rows(const float* scales, float* values, std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  const std::int64_t count = rows * cols;
  if (count == 0) return;
  launch(scale_rows_kernel, grid_for(count, 256), 256, 0, stream, scales, values, cols, count);
  check_launch("scale_rows_kernel", [&] { return count_text(count, "elements"); });
}

void launch_gather_rows(const float* source, std::int64_t source_rows, std::int64_t cols, const std::int32_t* indices,
                        const std::int32_t* cursor, float* destination, std::int64_t rows, cudaStream_t stream) {
  if (rows * cols == 0) return;
  const GatherPart part = gather_part(source, destination, cols);
  const unsigned column_blocks = grid_for(part.width(), 256);
  // About 1024 blocks in all, as for bias add.
  const dim3 grid(column_blocks, row_blocks(rows, column_blocks, 1024));
  if (part.vector)
    launch(gather_rows_kernel<float4>, grid, 256, 0, stream, source, source_rows, part.width(), indices, cursor,
           destination, rows);
  else
    launch(gather_rows_kernel<float>, grid, 256, 0, stream, source, source_rows, part.width(), indices, cursor,
           destination, rows);
  check_launch("gather_rows_kernel", [&] { return shape_text("destination", rows, cols); });
}

void launch_gather_batch(const float* x, const float* y, std::int64_t source_rows, std::int64_t x_cols,
                         std::int64_t y_cols, const std::int32_t* indices, std::int32_t* cursor, float* x_batch,
                         float* y_batch, std::int64_t rows, unsigned* done, cudaStream_t stream) {
  const GatherPart parts[2] = {gather_part(x, x_batch, x_cols), gather_part(y, y_batch, y_cols)};
  // Columns: enough blocks for the wider matrix; rows: about 1024 blocks in all over both, as gather_rows.
  const unsigned column_blocks = std::max(grid_for(parts[0].width(), 256), grid_for(parts[1].width(), 256));
  const dim3 grid(column_blocks, row_blocks(rows, column_blocks, 512), 2);
  launch(gather_batch_kernel, grid, 256, 0, stream, parts[0], parts[1], source_rows, indices, cursor, rows, done);
  check_launch("gather_batch_kernel", [&] { return shape_text("x batch", rows, x_cols); });
}

void launch_advance_cursor(std::int32_t* cursor, std::int32_t amount, cudaStream_t stream) {
  launch(advance_cursor_kernel, 1, 1, 0, stream, cursor, amount);
  check_launch("advance_cursor_kernel", [&] { return count_text(amount, "rows"); });
}

void launch_fill_uniform(float* y, std::int64_t count, std::uint64_t seed, cudaStream_t stream) {
  if (count == 0) return;
  launch(fill_uniform_kernel, grid_for(count, 256), 256, 0, stream, y, count, seed);
  check_launch("fill_uniform_kernel", [&] { return count_text(count, "elements"); });
}

void launch_fill(float* y, std::int64_t count, float value, cudaStream_t stream) {
  if (count == 0) return;
  launch(fill_kernel, grid_for(count, 256), 256, 0, stream, y, count, value);
  check_launch("fill_kernel", [&] { return count_text(count, "elements"); });
}

std::string kernel_image_problem() {
  cudaFuncAttributes attributes{};
  const cudaError_t status = cudaFuncGetAttributes(&attributes, fill_kernel);
  if (status == cudaSuccess) return {};
  cudaGetLastError();  // clear it
  std::string problem = "Ember's kernels cannot run on this GPU (";
  problem += cudaGetErrorString(status);
  problem += "); rebuild with -DCMAKE_CUDA_ARCHITECTURES set to this GPU's compute capability (e.g. 80 for an A100)";
  return problem;
}

}  // namespace ember::kernels
