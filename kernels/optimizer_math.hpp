#pragma once
// Optimizers as parts: each is one struct with its settings type (ember/optimizers.hpp), its state
// buffers' names and its per-element step, written once for the CPU paths (float, and double in the
// float64 reference) and the CUDA kernel (float). prepare() turns the settings, the schedule's rate
// factor and the step count into one step's constants where it runs (on the GPU, inside the kernel,
// from device memory, so that a captured graph stays valid); the step then updates a weight and up
// to two state values in place. Adding an optimizer: its settings in the Optimizer variant, its part
// here and its entry in OptimizerParts (in the variant's order); every backend, the state names and
// the tests that loop over the parts pick it up.
#include <cstdint>
#include <type_traits>
#include <utility>
#include <variant>

#include "ember/optimizers.hpp"
#include "host_device.hpp"

namespace ember::optimizer_parts {

/// g = grad + weight_decay w; with momentum b = momentum b + g, then g = b (g + momentum b with
/// Nesterov); w -= lr g. State: b, with momentum only.
struct SgdPart {
  using Settings = SGD;
  static constexpr const char* state_names[2] = {"momentum_buffer", ""};
  static constexpr bool counts_steps = false;
  static constexpr int flops = 6;  // per element, for the CPU's threading policy
  static int states(const SGD& s) { return s.momentum != 0.0f ? 1 : 0; }
  template <typename T>
  struct Step {
    T lr, momentum, decay;
    bool nesterov;
    EMBER_HOST_DEVICE void operator()(T& w, T grad, T& b, T&) const {
      T g = grad + decay * w;
      if (momentum != T(0)) {
        b = momentum * b + g;
        g = nesterov ? g + momentum * b : b;
      }
      w -= lr * g;
    }
  };
  template <typename T>
  EMBER_HOST_DEVICE static Step<T> prepare(const SGD& s, T lr_scale, std::int32_t) {
    return {T(s.lr) * lr_scale, T(s.momentum), T(s.weight_decay), s.nesterov};
  }
};

/// Adam and AdamW (decoupled): g = grad + weight_decay w (AdamW instead: w *= 1 - lr weight_decay);
/// m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; w -= lr / (1 - beta1^t) m /
/// (sqrt(v) / sqrt(1 - beta2^t) + eps), as torch.optim.Adam computes it. State: m, v and t.
template <typename AdamSettings, bool decoupled>
struct AdamPartOf {
  using Settings = AdamSettings;
  static constexpr const char* state_names[2] = {"exp_avg", "exp_avg_sq"};
  static constexpr bool counts_steps = true;
  static constexpr int flops = 14;
  static int states(const Settings&) { return 2; }
  template <typename T>
  struct Step {
    T beta1, beta2, eps, decay, shrink, step_size, correction2_sqrt;
    EMBER_HOST_DEVICE void operator()(T& w, T grad, T& m, T& v) const {
      w *= shrink;
      const T g = grad + decay * w;
      m = beta1 * m + (T(1) - beta1) * g;
      v = beta2 * v + (T(1) - beta2) * g * g;
      w -= step_size * m / (sqrt_of(v) / correction2_sqrt + eps);
    }
  };
  template <typename T>
  EMBER_HOST_DEVICE static Step<T> prepare(const Settings& s, T lr_scale, std::int32_t step) {
    const T rate = T(s.lr) * lr_scale, t = T(step), beta1 = T(s.beta1), beta2 = T(s.beta2);
    return {beta1,
            beta2,
            T(s.eps),
            decoupled ? T(0) : T(s.weight_decay),
            decoupled ? T(1) - rate * T(s.weight_decay) : T(1),
            rate / (T(1) - pow_of(beta1, t)),
            sqrt_of(T(1) - pow_of(beta2, t))};
  }
};
using AdamPart = AdamPartOf<Adam, false>;
using AdamWPart = AdamPartOf<AdamW, true>;

/// torch.optim.RMSprop (not centered): g = grad + weight_decay w; v = alpha v + (1 - alpha) g^2;
/// d = g / (sqrt(v) + eps); with momentum b = momentum b + d, w -= lr b; else w -= lr d.
/// State: v, and b with momentum.
struct RmspropPart {
  using Settings = RMSprop;
  static constexpr const char* state_names[2] = {"square_avg", "momentum_buffer"};
  static constexpr bool counts_steps = false;
  static constexpr int flops = 12;
  static int states(const RMSprop& s) { return s.momentum != 0.0f ? 2 : 1; }
  template <typename T>
  struct Step {
    T lr, alpha, eps, decay, momentum;
    EMBER_HOST_DEVICE void operator()(T& w, T grad, T& v, T& b) const {
      const T g = grad + decay * w;
      v = alpha * v + (T(1) - alpha) * g * g;
      const T d = g / (sqrt_of(v) + eps);
      if (momentum != T(0)) {
        b = momentum * b + d;
        w -= lr * b;
      } else {
        w -= lr * d;
      }
    }
  };
  template <typename T>
  EMBER_HOST_DEVICE static Step<T> prepare(const RMSprop& s, T lr_scale, std::int32_t) {
    return {T(s.lr) * lr_scale, T(s.alpha), T(s.eps), T(s.weight_decay), T(s.momentum)};
  }
};

/// torch.optim.Adagrad (lr_decay 0, initial_accumulator_value 0): g = grad + weight_decay w;
/// s += g^2; w -= lr g / (sqrt(s) + eps). State: s.
struct AdagradPart {
  using Settings = Adagrad;
  static constexpr const char* state_names[2] = {"sum", ""};
  static constexpr bool counts_steps = false;
  static constexpr int flops = 8;
  static int states(const Adagrad&) { return 1; }
  template <typename T>
  struct Step {
    T lr, decay, eps;
    EMBER_HOST_DEVICE void operator()(T& w, T grad, T& s, T&) const {
      const T g = grad + decay * w;
      s += g * g;
      w -= lr * g / (sqrt_of(s) + eps);
    }
  };
  template <typename T>
  EMBER_HOST_DEVICE static Step<T> prepare(const Adagrad& s, T lr_scale, std::int32_t) {
    return {T(s.lr) * lr_scale, T(s.weight_decay), T(s.eps)};
  }
};

template <typename... Parts>
struct PartList {};
/// The registry: every optimizer part, in the Optimizer variant's order.
using OptimizerParts = PartList<SgdPart, AdamPart, AdamWPart, RmspropPart, AdagradPart>;

template <typename... Parts, std::size_t... I>
constexpr bool in_variant_order(PartList<Parts...>, std::index_sequence<I...>) {
  return (std::is_same_v<typename Parts::Settings, std::variant_alternative_t<I, Optimizer>> && ...);
}
static_assert(in_variant_order(OptimizerParts{}, std::make_index_sequence<std::variant_size_v<Optimizer>>{}),
              "OptimizerParts must list one part per Optimizer alternative, in the variant's order");

template <typename Settings, typename First, typename... Rest>
constexpr auto part_of(PartList<First, Rest...>) {
  if constexpr (std::is_same_v<Settings, typename First::Settings>)
    return First{};
  else
    return part_of<Settings>(PartList<Rest...>{});
}

/// Calls visitor(Part{}, settings) with the optimizer's part and settings (on the host: launchers
/// choose a kernel with it). An Optimizer alternative without a part does not compile.
template <typename Visitor>
decltype(auto) visit(const Optimizer& optimizer, Visitor&& visitor) {
  return std::visit(
      [&](const auto& settings) -> decltype(auto) {
        return visitor(part_of<std::decay_t<decltype(settings)>>(OptimizerParts{}), settings);
      },
      optimizer);
}

/// Calls visitor(Part{}) for every part, in order.
template <typename Visitor, typename... Parts>
void for_each_part(Visitor&& visitor, PartList<Parts...>) {
  (visitor(Parts{}), ...);
}
template <typename Visitor>
void for_each_part(Visitor&& visitor) {
  for_each_part(visitor, OptimizerParts{});
}

}  // namespace ember::optimizer_parts
