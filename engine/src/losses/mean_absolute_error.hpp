#pragma once
// MeanAbsoluteError: torch.nn.L1Loss.
#include "losses/part.hpp"

namespace ember::loss_part {

struct AbsoluteError {
  template <typename Real>
  static Real loss(Real e, std::span<const float>) {
    return std::abs(e);
  }
  // torch's sign: 0 at e = 0.
  template <typename Real>
  static Real gradient(Real e, std::span<const float>) {
    return e > 0 ? Real(1) : (e < 0 ? Real(-1) : Real(0));
  }
};

template <>
struct Part<MeanAbsoluteError> {
  static constexpr const char* keras_name = "MeanAbsoluteError";
  static constexpr const char* meaning = "regression toward the median: the mean of absolute errors (torch.nn.L1Loss)";
  static constexpr bool classification = false;
  static constexpr std::array<Setting<MeanAbsoluteError>, 0> settings{};
  static void check(const MeanAbsoluteError&) {}
  static constexpr LayerOp op{"mae_loss", ErrorLossOps<AbsoluteError>::check, ErrorLossOps<AbsoluteError>::reference};
};

}  // namespace ember::loss_part
