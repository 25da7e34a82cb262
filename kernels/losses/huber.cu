// Huber's kernel (engine/src/losses/huber.hpp): 0.5 e^2 where |e| <= delta, else
// delta (|e| - delta / 2); gradient clamp(e, -delta, delta).
#include "losses/error_loss.cuh"

namespace ember::kernels {
namespace {

struct HuberError {
  float delta;
  explicit HuberError(std::span<const float> settings) : delta(settings[0]) {}
  __device__ float add(float e, float sum) const {
    const float size = fabsf(e);
    return size <= delta ? fmaf(0.5f * e, e, sum) : fmaf(delta, size - 0.5f * delta, sum);
  }
  __device__ float gradient(float e) const { return fabsf(e) <= delta ? e : copysignf(delta, e); }
};

}  // namespace

EMBER_LAYER_OP_KERNEL("huber_loss", launch_error_loss<HuberError>);

}  // namespace ember::kernels
