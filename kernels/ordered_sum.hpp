#pragma once
// The deterministic column sums the reduction kernels share (bias gradient, regression loss,
// cross-entropy): a first pass, each kernel's own, writes one row of partial sums per chunk of
// rows to the scratch; the second pass, here, adds the chunks in order. How many chunks depends on
// the shape only, so the order of every addition is fixed run after run.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "matmul_plan.hpp"  // kReductionScratchFloats

namespace ember::kernels {

struct RowChunks {
  std::int64_t chunks = 1;  // chunks of rows; with one, the first pass writes the result itself
  std::int64_t rows = 1;    // rows per chunk (the last may have fewer)
};

/// Chunks of rows for a reduction over rows: about 1024 blocks in all with column_blocks blocks
/// across the columns, at least min_rows rows per chunk, partials (sums_per_chunk floats each)
/// within the scratch, at most 65535 (a grid dimension).
inline RowChunks row_chunks(std::int64_t rows, std::int64_t column_blocks, std::int64_t min_rows,
                            std::int64_t sums_per_chunk) {
  std::int64_t chunks = std::max<std::int64_t>(1, 1024 / column_blocks);
  chunks = std::min<std::int64_t>(
      {chunks, (rows + min_rows - 1) / min_rows, kReductionScratchFloats / sums_per_chunk, 65535});
  chunks = std::max<std::int64_t>(chunks, 1);
  const std::int64_t chunk = std::max<std::int64_t>((rows + chunks - 1) / chunks, 1);
  return {std::max<std::int64_t>((rows + chunk - 1) / chunk, 1), chunk};
}

/// Pass two: out[j] = (accumulate ? out[j] : 0) + partials[0][j] + partials[1][j] + ..., in chunk
/// order, for j < width; partials holds chunks rows of width floats. what names the reduction in
/// a launch error.
void launch_sum_chunks(const float* partials, std::int64_t chunks, std::int64_t width, float* out, bool accumulate,
                       const char* what, cudaStream_t stream);

}  // namespace ember::kernels
