// Optimizer updates over one flat parameter buffer (PyTorch's formulas, engine/include/ember/optimizers.hpp):
//   SGD:  g = grad + weight_decay * w;  b = momentum * b + g;  g = nesterov ? g + momentum * b : b;
//         w -= lr * g                  (without momentum: w -= lr * g, b untouched)
//   Adam: g = grad + weight_decay * w (AdamW instead: w *= 1 - lr * weight_decay);
//         m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
//         w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// lr is the settings' rate times *lr_scale, and t is *step: both read from device memory when the
// kernel runs, so a captured graph stays valid as a schedule changes the rate and t counts up.
// Thread t updates elements 4t..4t+3 with 16-byte loads and stores; the last count % 4 elements
// are updated one each by the threads after the vector part (the scalar tail), in the same launch.
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

struct SgdStep {
  float lr, momentum, weight_decay;
  bool nesterov;
  __device__ void operator()(float& w, float grad, float* b) const {
    float g = grad + weight_decay * w;
    if (momentum != 0.0f) {
      *b = momentum * *b + g;
      g = nesterov ? g + momentum * *b : *b;
    }
    w -= lr * g;
  }
};

struct AdamStep {
  float beta1, beta2, eps, decay, shrink, step_size, correction2_sqrt;
  __device__ void operator()(float& w, float grad, float* m, float* v) const {
    w *= shrink;
    const float g = grad + decay * w;
    *m = beta1 * *m + (1.0f - beta1) * g;
    *v = beta2 * *v + (1.0f - beta2) * g * g;
    w -= step_size * *m / (sqrtf(*v) / correction2_sqrt + eps);
  }
};

/// Applies step to count elements of w and grad and of each state buffer (none, one or two),
/// 16-byte accesses where every buffer is aligned, else one element per thread.
template <typename Step, int States>
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
      if constexpr (States == 2) {
        step(wv.x, gv.x, &a.x, &b.x);
        step(wv.y, gv.y, &a.y, &b.y);
        step(wv.z, gv.z, &a.z, &b.z);
        step(wv.w, gv.w, &a.w, &b.w);
      } else {
        step(wv.x, gv.x, &a.x);
        step(wv.y, gv.y, &a.y);
        step(wv.z, gv.z, &a.z);
        step(wv.w, gv.w, &a.w);
      }
      reinterpret_cast<float4*>(w)[t] = wv;
      if (States > 0) reinterpret_cast<float4*>(s0)[t] = a;
      if (States > 1) reinterpret_cast<float4*>(s1)[t] = b;
    } else {
      const long long i = vectors * 4 + (t - vectors);
      float none = 0.0f;
      if constexpr (States == 2)
        step(w[i], grad[i], &s0[i], &s1[i]);
      else
        step(w[i], grad[i], States > 0 ? &s0[i] : &none);
    }
  }
}

__global__ void sgd_update_kernel(float* __restrict__ w, const float* __restrict__ grad, float* __restrict__ b,
                                  long long count, SgdStep step, const float* __restrict__ lr_scale, bool vector) {
  step.lr *= *lr_scale;
  if (step.momentum != 0.0f)
    update_elements<SgdStep, 1>(step, w, grad, b, nullptr, count, vector);
  else
    update_elements<SgdStep, 0>(step, w, grad, nullptr, nullptr, count, vector);
}

__global__ void adam_update_kernel(float* __restrict__ w, const float* __restrict__ grad, float* __restrict__ m,
                                   float* __restrict__ v, long long count, float lr, float beta1, float beta2,
                                   float eps, float weight_decay, bool decoupled, const float* __restrict__ lr_scale,
                                   const std::int32_t* __restrict__ step_count, bool vector) {
  const float rate = lr * *lr_scale;
  const auto t = static_cast<float>(*step_count);
  const AdamStep step{beta1,
                      beta2,
                      eps,
                      decoupled ? 0.0f : weight_decay,
                      decoupled ? 1.0f - rate * weight_decay : 1.0f,
                      rate / (1.0f - powf(beta1, t)),
                      sqrtf(1.0f - powf(beta2, t))};
  update_elements<AdamStep, 2>(step, w, grad, m, v, count, vector);
}

}  // namespace

void launch_sgd_update(float* weights, const float* gradients, float* momentum_buffer, std::int64_t count, float lr,
                       float momentum, bool nesterov, float weight_decay, const float* lr_scale, cudaStream_t stream) {
  if (count == 0) return;
  // Every arena region is 256-byte aligned; only buffers from elsewhere take the scalar path.
  const bool vector = aligned16(weights) && aligned16(gradients) && (momentum == 0.0f || aligned16(momentum_buffer));
  const std::int64_t work = vector ? count / 4 + count % 4 : count;
  launch(sgd_update_kernel, grid_for(work, 256), 256, 0, stream, weights, gradients, momentum_buffer, count,
         SgdStep{lr, momentum, weight_decay, nesterov}, lr_scale, vector);
  check_launch("sgd_update_kernel", [&] { return count_text(count, "parameters"); });
}

void launch_adam_update(float* weights, const float* gradients, float* exp_avg, float* exp_avg_sq, std::int64_t count,
                        float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                        const float* lr_scale, const std::int32_t* step, cudaStream_t stream) {
  if (count == 0) return;
  const bool vector = aligned16(weights) && aligned16(gradients) && aligned16(exp_avg) && aligned16(exp_avg_sq);
  const std::int64_t work = vector ? count / 4 + count % 4 : count;
  launch(adam_update_kernel, grid_for(work, 256), 256, 0, stream, weights, gradients, exp_avg, exp_avg_sq, count, lr,
         beta1, beta2, eps, weight_decay, decoupled, lr_scale, step, vector);
  check_launch("adam_update_kernel", [&] { return count_text(count, "parameters"); });
}

}  // namespace ember::kernels
