// SGD update over one flat parameter buffer (torch.optim.SGD):
//   g = grad + weight_decay * w;  v = momentum * v + g;  g = nesterov ? g + momentum * v : v;
//   w -= lr * g            (without momentum: w -= lr * g, v untouched)
// Thread t updates elements 4t..4t+3 with 16-byte loads and stores; the last count % 4 elements
// are updated one each by the threads after the vector part (the scalar tail), in the same launch.
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

struct SgdSettings {
  float lr, momentum, weight_decay;
  bool nesterov;
};

__device__ __forceinline__ float sgd_step(float& w, float grad, float* v, const SgdSettings& s) {
  float g = grad + s.weight_decay * w;
  if (s.momentum != 0.0f) {
    *v = s.momentum * *v + g;
    g = s.nesterov ? g + s.momentum * *v : *v;
  }
  w -= s.lr * g;
  return w;
}

__global__ void sgd_update_vectorized_kernel(float* __restrict__ w, const float* __restrict__ grad,
                                             float* __restrict__ v, long long count, SgdSettings s) {
  const long long vectors = count / 4;
  const long long tail = count - vectors * 4;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long t = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; t < vectors + tail; t += stride) {
    if (t < vectors) {
      float4 wv = reinterpret_cast<float4*>(w)[t];
      const float4 gv = reinterpret_cast<const float4*>(grad)[t];
      float4 vv = s.momentum != 0.0f ? reinterpret_cast<float4*>(v)[t] : float4{};
      sgd_step(wv.x, gv.x, &vv.x, s);
      sgd_step(wv.y, gv.y, &vv.y, s);
      sgd_step(wv.z, gv.z, &vv.z, s);
      sgd_step(wv.w, gv.w, &vv.w, s);
      reinterpret_cast<float4*>(w)[t] = wv;
      if (s.momentum != 0.0f) reinterpret_cast<float4*>(v)[t] = vv;
    } else {
      const long long i = vectors * 4 + (t - vectors);
      float scratch = 0.0f;
      sgd_step(w[i], grad[i], s.momentum != 0.0f ? &v[i] : &scratch, s);
    }
  }
}

__global__ void sgd_update_scalar_kernel(float* w, const float* grad, float* v, long long count, SgdSettings s) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float scratch = 0.0f;
    sgd_step(w[i], grad[i], s.momentum != 0.0f ? &v[i] : &scratch, s);
  }
}

}  // namespace

void launch_sgd_update(float* weights, const float* gradients, float* velocity, std::int64_t count, float lr,
                       float momentum, bool nesterov, float weight_decay, cudaStream_t stream) {
  if (count == 0) return;
  const SgdSettings settings{lr, momentum, weight_decay, nesterov};
  const bool vectorizable = aligned16(weights) && aligned16(gradients) && (momentum == 0.0f || aligned16(velocity));
  if (vectorizable) {
    const std::int64_t work = count / 4 + count % 4;
    launch(sgd_update_vectorized_kernel, grid_for(work, 256), 256, 0, stream, weights, gradients, velocity, count,
           settings);
    check_launch("sgd_update_vectorized_kernel", [&] { return count_text(count, "parameters"); });
  } else {
    // Only reachable for buffers not carved from an arena (every arena region is 256-byte aligned).
    launch(sgd_update_scalar_kernel, grid_for(count, 256), 256, 0, stream, weights, gradients, velocity, count,
           settings);
    check_launch("sgd_update_scalar_kernel", [&] { return count_text(count, "parameters"); });
  }
}

}  // namespace ember::kernels
