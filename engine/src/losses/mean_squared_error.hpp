#pragma once
// MeanSquaredError: torch.nn.MSELoss.
#include "losses/part.hpp"

namespace ember::loss_part {

struct SquaredError {
  template <typename Real>
  static Real loss(Real e, std::span<const float>) {
    return e * e;
  }
  template <typename Real>
  static Real gradient(Real e, std::span<const float>) {
    return 2 * e;
  }
};

template <>
struct Part<MeanSquaredError> {
  static constexpr const char* keras_name = "MeanSquaredError";
  static constexpr const char* meaning = "regression: the mean of squared errors (torch.nn.MSELoss)";
  static constexpr bool classification = false;
  static constexpr std::array<Setting<MeanSquaredError>, 0> settings{};
  static void check(const MeanSquaredError&) {}
  static constexpr LayerOp op{"mse_loss", ErrorLossOps<SquaredError>::check, ErrorLossOps<SquaredError>::reference};
};

}  // namespace ember::loss_part
