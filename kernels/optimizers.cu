// Optimizer updates over one flat parameter buffer: one kernel, instantiated per optimizer part
// (optimizer_math.hpp, PyTorch's formulas) and per number of state buffers the settings use. The
// rate factor and the step count are read from device memory (OptimizerScalars) when the kernel
// runs, so a captured graph stays valid as a schedule changes the rate and the step counts up.
// Thread t updates elements 4t..4t+3 with 16-byte loads and stores; the last count % 4 elements
// are updated one each by the threads after the vector part (the scalar tail), in the same launch.
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "optimizer_math.hpp"

namespace ember::kernels {
namespace {

/// Applies step to count elements of w and grad and of each state buffer (States of them: none, one
/// or two), 16-byte accesses where every buffer is aligned, else one element per thread.
template <int States, typename Step>
__device__ void update_elements(const Step& step, float* __restrict__ w, const float* __restrict__ grad,
                                float* __restrict__ s0, float* __restrict__ s1, long long count, bool vector) {
  const long long vectors = vector ? count / 4 : 0;
  const long long tail = count - vectors * 4;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long t = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; t < vectors + tail; t += stride) {
    if (t < vectors) {
      float4 wv = reinterpret_cast<float4*>(w)[t];
      const float4 gv = reinterpret_cast<const float4*>(grad)[t];
      float4 a = States > 0 ? reinterpret_cast<float4*>(s0)[t] : float4{};
      float4 b = States > 1 ? reinterpret_cast<float4*>(s1)[t] : float4{};
      step(wv.x, gv.x, a.x, b.x);
      step(wv.y, gv.y, a.y, b.y);
      step(wv.z, gv.z, a.z, b.z);
      step(wv.w, gv.w, a.w, b.w);
      reinterpret_cast<float4*>(w)[t] = wv;
      if (States > 0) reinterpret_cast<float4*>(s0)[t] = a;
      if (States > 1) reinterpret_cast<float4*>(s1)[t] = b;
    } else {
      const long long i = vectors * 4 + (t - vectors);
      float a = States > 0 ? s0[i] : 0.0f, b = States > 1 ? s1[i] : 0.0f;
      step(w[i], grad[i], a, b);
      if (States > 0) s0[i] = a;
      if (States > 1) s1[i] = b;
    }
  }
}

template <typename Part, int States>
__global__ void update_kernel(typename Part::Settings settings, float* __restrict__ w, const float* __restrict__ grad,
                              float* __restrict__ s0, float* __restrict__ s1, long long count,
                              const OptimizerScalars* __restrict__ scalars, bool vector) {
  const auto step = Part::template prepare<float>(settings, scalars->lr_scale, scalars->step);
  update_elements<States>(step, w, grad, s0, s1, count, vector);
}

template <typename Part, int States>
void launch_update(const typename Part::Settings& settings, float* weights, const float* gradients, float* s0,
                   float* s1, std::int64_t count, const OptimizerScalars* scalars, cudaStream_t stream) {
  // Every arena region is 256-byte aligned; only buffers from elsewhere take the scalar path.
  const bool vector =
      aligned16(weights) && aligned16(gradients) && (States < 1 || aligned16(s0)) && (States < 2 || aligned16(s1));
  const std::int64_t work = vector ? count / 4 + count % 4 : count;
  launch(update_kernel<Part, States>, grid_for(work, 256), 256, 0, stream, settings, weights, gradients, s0, s1, count,
         scalars, vector);
}

}  // namespace

void launch_optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                             std::int64_t region, std::int64_t count, const OptimizerScalars* scalars,
                             cudaStream_t stream) {
  if (count == 0) return;
  optimizer_parts::visit(optimizer, [&](auto part, const auto& settings) {
    using Part = decltype(part);
    switch (Part::states(settings)) {
      case 0:
        return launch_update<Part, 0>(settings, weights, gradients, nullptr, nullptr, count, scalars, stream);
      case 1:
        return launch_update<Part, 1>(settings, weights, gradients, state, nullptr, count, scalars, stream);
      default:
        return launch_update<Part, 2>(settings, weights, gradients, state, state + region, count, scalars, stream);
    }
  });
  check_launch("optimizer update kernel", [&] { return count_text(count, "parameters"); });
}

}  // namespace ember::kernels
