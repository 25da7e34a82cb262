// MeanSquaredError's kernel (engine/src/losses/mean_squared_error.hpp): e^2, gradient 2 e.
#include "losses/error_loss.cuh"

namespace ember::kernels {
namespace {

struct SquaredError {
  explicit SquaredError(std::span<const float>) {}
  __device__ float add(float e, float sum) const { return fmaf(e, e, sum); }
  __device__ float gradient(float e) const { return 2.0f * e; }
};

}  // namespace

EMBER_LAYER_OP_KERNEL("mse_loss", launch_error_loss<SquaredError>);

}  // namespace ember::kernels
