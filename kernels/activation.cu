// Activations (the parts of activation_math.hpp), forward y = f(x) and backward dx = dy * f'(x):
// one elementwise kernel instantiated per part, so that every part runs here as on the CPU.
// Thread t handles elements 4t..4t+3 with 16-byte accesses when every pointer is 16-byte aligned;
// the last count % 4 elements go one each to the threads after the vector part, in the same launch.
#include <cstdint>

#include "activation_math.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

template <typename Part>
struct Forward {  // (x, unused, unused)
  __device__ float operator()(float x, float, float) const { return Part::forward(x); }
};
template <typename Part>
struct Backward {  // (dy, x, y)
  __device__ float operator()(float dy, float x, float y) const { return Part::backward(dy, x, y); }
};

/// out[i] = op(a[i], b[i], c[i]); b and c may be null (then op reads 0 there), as may be their use.
template <typename Op>
__global__ void pointwise_kernel(const float* a, const float* b, const float* c, float* out, long long count,
                                 bool vector, Op op) {
  const long long vectors = vector ? count / 4 : 0;
  const long long tail = count - vectors * 4;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long t = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; t < vectors + tail; t += stride) {
    if (t < vectors) {
      const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      const float4 x = reinterpret_cast<const float4*>(a)[t];
      const float4 y = b != nullptr ? reinterpret_cast<const float4*>(b)[t] : zero;
      const float4 z = c != nullptr ? reinterpret_cast<const float4*>(c)[t] : zero;
      reinterpret_cast<float4*>(out)[t] =
          make_float4(op(x.x, y.x, z.x), op(x.y, y.y, z.y), op(x.z, y.z, z.z), op(x.w, y.w, z.w));
    } else {
      const long long i = vectors * 4 + (t - vectors);
      out[i] = op(a[i], b != nullptr ? b[i] : 0.0f, c != nullptr ? c[i] : 0.0f);
    }
  }
}

bool aligned_or_null(const float* p) {
  return p == nullptr || aligned16(p);
}

template <typename Op>
void launch_pointwise(const char* name, const float* a, const float* b, const float* c, float* out, std::int64_t count,
                      cudaStream_t stream) {
  if (count == 0) return;
  const bool vector = aligned16(a) && aligned_or_null(b) && aligned_or_null(c) && aligned16(out);
  const std::int64_t work = vector ? count / 4 + count % 4 : count;
  launch(pointwise_kernel<Op>, grid_for(work, 256), 256, 0, stream, a, b, c, out, count, vector, Op{});
  check_launch(name, [&] { return count_text(count, "elements"); });
}

}  // namespace

void launch_activation_forward(Activation kind, const float* x, float* y, std::int64_t count, cudaStream_t stream) {
  activations::visit(kind, [&](auto part) {
    launch_pointwise<Forward<decltype(part)>>("activation_forward_kernel", x, nullptr, nullptr, y, count, stream);
  });
}

void launch_activation_backward(Activation kind, const float* dy, const float* x, const float* y, float* dx,
                                std::int64_t count, cudaStream_t stream) {
  activations::visit(kind, [&](auto part) {
    using Part = decltype(part);
    // One of x and y: a part's backward reads the input or the output, never both, and the
    // pointwise kernel loads whatever operand it is given.
    launch_pointwise<Backward<Part>>("activation_backward_kernel", dy, Part::needs_input ? x : nullptr,
                                     Part::needs_input ? nullptr : y, dx, count, stream);
  });
}

}  // namespace ember::kernels
