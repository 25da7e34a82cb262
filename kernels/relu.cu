// ReLU forward: y = max(x, 0). Backward: dx = dy where the forward output y > 0, else 0.
// Thread t handles elements 4t..4t+3 with 16-byte accesses when every pointer is 16-byte aligned;
// the last count % 4 elements go one each to the threads after the vector part, in the same launch.
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

struct ReluForward {
  __device__ float operator()(float x, float) const { return fmaxf(x, 0.0f); }
};
struct ReluBackward {  // (dy, y)
  __device__ float operator()(float dy, float y) const { return y > 0.0f ? dy : 0.0f; }
};

/// out[i] = op(in[i], other[i]) (other unused by the forward op, which passes in again).
template <typename Op>
__global__ void relu_kernel(const float* in, const float* other, float* out, long long count, bool vector, Op op) {
  const long long vectors = vector ? count / 4 : 0;
  const long long tail = count - vectors * 4;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long t = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; t < vectors + tail; t += stride) {
    if (t < vectors) {
      const float4 a = reinterpret_cast<const float4*>(in)[t], b = reinterpret_cast<const float4*>(other)[t];
      reinterpret_cast<float4*>(out)[t] = make_float4(op(a.x, b.x), op(a.y, b.y), op(a.z, b.z), op(a.w, b.w));
    } else {
      const long long i = vectors * 4 + (t - vectors);
      out[i] = op(in[i], other[i]);
    }
  }
}

template <typename Op>
void launch_relu(const char* name, const float* in, const float* other, float* out, std::int64_t count,
                 cudaStream_t stream) {
  if (count == 0) return;
  const bool vector = aligned16(in) && aligned16(other) && aligned16(out);
  const std::int64_t work = vector ? count / 4 + count % 4 : count;
  launch(relu_kernel<Op>, grid_for(work, 256), 256, 0, stream, in, other, out, count, vector, Op{});
  check_launch(name, [&] { return count_text(count, "elements"); });
}

}  // namespace

void launch_relu_forward(const float* x, float* y, std::int64_t count, cudaStream_t stream) {
  launch_relu<ReluForward>("relu_forward_kernel", x, x, y, count, stream);
}

void launch_relu_backward(const float* dy, const float* y, float* dx, std::int64_t count, cudaStream_t stream) {
  launch_relu<ReluBackward>("relu_backward_kernel", dy, y, dx, count, stream);
}

}  // namespace ember::kernels
