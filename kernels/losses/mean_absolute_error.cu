// MeanAbsoluteError's kernel (engine/src/losses/mean_absolute_error.hpp): |e|, gradient sign(e)
// (0 at e = 0, as torch's).
#include "losses/error_loss.cuh"

namespace ember::kernels {
namespace {

struct AbsoluteError {
  explicit AbsoluteError(std::span<const float>) {}
  __device__ float add(float e, float sum) const { return sum + fabsf(e); }
  __device__ float gradient(float e) const { return e > 0.0f ? 1.0f : (e < 0.0f ? -1.0f : 0.0f); }
};

}  // namespace

EMBER_LAYER_OP_KERNEL("mae_loss", launch_error_loss<AbsoluteError>);

}  // namespace ember::kernels
