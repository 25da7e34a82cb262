// Dropout's op (engine/src/layers/dropout.hpp holds its CPU loop and operands), the mask of
// dropout_math.hpp applied elementwise: y = x * scale where kept, else 0. Thread t
// takes elements 4t..4t+3, whose keep bits are the four words of one Philox draw, with 16-byte
// accesses when both pointers are 16-byte aligned and the group is whole.
#include <cstdint>

#include "cuda_check.hpp"
#include "dropout_math.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"

namespace ember::kernels {
namespace {

__global__ void dropout_kernel(const float* x, float* y, long long count, bool vector, dropout_math::Mask mask,
                               const std::int32_t* counters) {
  const std::int32_t step_counters[2] = {counters[0], counters[1]};
  const long long groups = (count + 3) / 4;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long g = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; g < groups; g += stride) {
    const unsigned bits = dropout_math::kept_bits(mask, step_counters, static_cast<std::uint64_t>(g));
    const long long first = 4 * g;
    if (vector && first + 4 <= count) {
      const float4 v = reinterpret_cast<const float4*>(x)[g];
      reinterpret_cast<float4*>(y)[g] =
          make_float4((bits & 1u) != 0 ? v.x * mask.scale : 0.0f, (bits & 2u) != 0 ? v.y * mask.scale : 0.0f,
                      (bits & 4u) != 0 ? v.z * mask.scale : 0.0f, (bits & 8u) != 0 ? v.w * mask.scale : 0.0f);
    } else {
      for (long long i = first, j = 0; j < 4 && i < count; ++i, ++j)
        y[i] = (bits >> j & 1u) != 0 ? x[i] * mask.scale : 0.0f;
    }
  }
}

// in: x; out: y (may alias x); settings: rate; draws.
void launch_dropout(const OpArgs& a, cudaStream_t stream) {
  const float* x = a.in[0].data;
  float* y = a.out[0].data;
  const long long count = a.in[0].size();
  if (count == 0) return;
  const bool vector = aligned16(x) && aligned16(y);
  launch(dropout_kernel, grid_for((count + 3) / 4, 256), 256, 0, stream, x, y, count, vector,
         dropout_math::mask_for(a.draws.seed, a.settings[0]), a.draws.counters);
  check_launch("dropout_kernel", [&] { return count_text(count, "elements"); });
}

}  // namespace

EMBER_LAYER_OP_KERNEL("dropout", launch_dropout);

}  // namespace ember::kernels
