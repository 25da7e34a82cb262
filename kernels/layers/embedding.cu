// Embedding's ops (engine/src/layers/embedding.hpp holds their CPU loops and operand order). Forward: a thread per
// output value. Backward: a thread per table column zeroes that column and adds every row's vectors into it in row
// order, then index-column order: the sums' order is fixed without atomics, and the fast CPU path adds in the same
// order (the same bits). The batch's rows times its index columns bound each thread's work; a split by table rows would
// widen it where the table is large.
#include "cuda_check.hpp"
#include "embedding_math.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"

namespace ember::kernels {
namespace {

__global__ void embedding_forward_kernel(const float* x, const float* table, long long rows, long long in,
                                         long long columns, long long categories, long long dim, float* y) {
  const long long passed = in - columns, width = passed + columns * dim;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < rows * width; i += stride) {
    const long long r = i / width, c = i % width;
    if (c < passed) {
      y[i] = x[r * in + c];
      continue;
    }
    const long long j = (c - passed) / dim, d = (c - passed) % dim;
    const long long row = embedding_math::table_row(x[r * in + passed + j], categories);
    y[i] = row < 0 ? __int_as_float(0x7fc00000) : table[row * dim + d];
  }
}

__global__ void embedding_table_gradient_kernel(const float* dy, const float* x, long long rows, long long in,
                                                long long columns, long long categories, long long dim,
                                                float* table_gradient) {
  const long long passed = in - columns, width = passed + columns * dim;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long d = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; d < dim; d += stride) {
    for (long long t = 0; t < categories; ++t) table_gradient[t * dim + d] = 0.0f;
    for (long long r = 0; r < rows; ++r)
      for (long long j = 0; j < columns; ++j) {
        const long long row = embedding_math::table_row(x[r * in + passed + j], categories);
        if (row >= 0) table_gradient[row * dim + d] += dy[r * width + passed + j * dim + d];
      }
  }
}

__global__ void embedding_input_gradient_kernel(const float* dy, long long rows, long long in, long long columns,
                                                long long dim, float* dx) {
  const long long passed = in - columns, width = passed + columns * dim;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < rows * in; i += stride) {
    const long long r = i / in, c = i % in;
    dx[i] = c < passed ? dy[r * width + c] : 0.0f;
  }
}

// in: x, table; out: y; settings: columns.
void launch_forward(const OpArgs& a, cudaStream_t stream) {
  const ConstView x = a.in[0], table = a.in[1];
  const auto columns = static_cast<long long>(a.settings[0]);
  const long long count = a.out[0].size();
  if (count == 0) return;
  launch(embedding_forward_kernel, grid_for(count, 256), 256, 0, stream, x.data, table.data,
         static_cast<long long>(x.rows), static_cast<long long>(x.cols), columns, static_cast<long long>(table.rows),
         static_cast<long long>(table.cols), a.out[0].data);
  check_launch("embedding_forward_kernel", [&] { return count_text(count, "values"); });
}

// in: dy, x; out: table_gradient, dx (optional); settings: columns.
void launch_backward(const OpArgs& a, cudaStream_t stream) {
  const ConstView dy = a.in[0], x = a.in[1];
  const View table_gradient = a.out[0], dx = a.out[1];
  const auto rows = static_cast<long long>(x.rows), in = static_cast<long long>(x.cols);
  const auto columns = static_cast<long long>(a.settings[0]);
  const auto categories = static_cast<long long>(table_gradient.rows),
             dim = static_cast<long long>(table_gradient.cols);
  launch(embedding_table_gradient_kernel, grid_for(dim, 64), 64, 0, stream, dy.data, x.data, rows, in, columns,
         categories, dim, table_gradient.data);
  check_launch("embedding_table_gradient_kernel", [&] { return count_text(categories * dim, "table values"); });
  if (dx.data == nullptr || rows * in == 0) return;
  launch(embedding_input_gradient_kernel, grid_for(rows * in, 256), 256, 0, stream, dy.data, rows, in, columns, dim,
         dx.data);
  check_launch("embedding_input_gradient_kernel", [&] { return count_text(rows * in, "values"); });
}

}  // namespace

EMBER_LAYER_OP_KERNEL("embedding_forward", launch_forward);
EMBER_LAYER_OP_KERNEL("embedding_backward", launch_backward);

}  // namespace ember::kernels
