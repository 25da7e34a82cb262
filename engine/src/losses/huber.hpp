#pragma once
// Huber: torch.nn.HuberLoss.
#include "losses/part.hpp"

namespace ember::loss_part {

struct HuberError {
  template <typename Real>
  static Real loss(Real e, std::span<const float> settings) {
    const Real delta = settings[0], size = std::abs(e);
    return size <= delta ? e * e / 2 : delta * (size - delta / 2);
  }
  template <typename Real>
  static Real gradient(Real e, std::span<const float> settings) {
    const Real delta = settings[0];
    return std::clamp(e, -delta, delta);
  }
};

template <>
struct Part<Huber> {
  static constexpr const char* keras_name = "Huber";
  static constexpr const char* meaning =
      "robust regression: squared errors up to delta, linear beyond (torch.nn.HuberLoss; delta 1 unless given, in "
      "standardized target units when normalizing)";
  static constexpr bool classification = false;
  static constexpr std::array<Setting<Huber>, 1> settings{{{"delta", &Huber::delta}}};
  static void check(const Huber& huber) {
    if (!(huber.delta > 0.0f && std::isfinite(huber.delta)))
      throw SettingError("Huber::delta", fmt::format("{}: must be a finite number > 0", huber.delta));
  }
  static constexpr LayerOp op{"huber_loss", ErrorLossOps<HuberError>::check, ErrorLossOps<HuberError>::reference};
};

}  // namespace ember::loss_part
