#pragma once
// Activations as parts: each is one functor with its name, its forward y = f(x) and its backward
// dx = dy * f'(x), written once for the CPU paths (float, and double in the float64 reference) and
// the CUDA kernels (float). A backward reads the pre-activation x only where needs_input is set;
// the others are computed from the output y, so the forward may run in place. Adding a kind: its
// enum value (ember/activation.hpp), its functor here and its entry in ActivationParts; every
// backend, the name tables and the tests that loop over the parts pick it up.
#include "ember/activation.hpp"
#include "host_device.hpp"

namespace ember::activations {

/// 1 / (1 + exp(-x)): exp(-x) overflows to infinity for very negative x, giving 0, never NaN.
template <typename T>
EMBER_HOST_DEVICE inline T sigmoid_of(T x) {
  return T(1) / (T(1) + exp_of(-x));
}

struct Linear {
  static constexpr Activation kind = Activation::linear;
  static constexpr const char* name = "linear";
  static constexpr bool needs_input = false;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return x;
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T, T) {
    return dy;
  }
};

/// max(x, 0) as a select, so NaN becomes 0; backward passes dy where y > 0.
struct Relu {
  static constexpr Activation kind = Activation::relu;
  static constexpr const char* name = "relu";
  static constexpr bool needs_input = false;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return x > T(0) ? x : T(0);
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T, T y) {
    return y > T(0) ? dy : T(0);
  }
};

/// x > 0 ? x : 0.01 x; the slope's sign keeps y's sign, so backward reads y.
struct LeakyRelu {
  static constexpr Activation kind = Activation::leaky_relu;
  static constexpr const char* name = "leaky_relu";
  static constexpr bool needs_input = false;
  static constexpr double kSlope = 0.01;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return x > T(0) ? x : T(kSlope) * x;
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T, T y) {
    return y > T(0) ? dy : T(kSlope) * dy;
  }
};

/// x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2; f'(x) = Phi(x) + x phi(x).
struct Gelu {
  static constexpr Activation kind = Activation::gelu;
  static constexpr const char* name = "gelu";
  static constexpr bool needs_input = true;
  static constexpr double kInverseSqrt2 = 0.70710678118654752440, kInverseSqrt2Pi = 0.39894228040143267794;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return T(0.5) * x * (T(1) + erf_of(x * T(kInverseSqrt2)));
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T x, T) {
    const T cdf = T(0.5) * (T(1) + erf_of(x * T(kInverseSqrt2)));
    const T pdf = T(kInverseSqrt2Pi) * exp_of(T(-0.5) * x * x);
    return dy * (cdf + x * pdf);
  }
};

/// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), PyTorch's GELU(approximate='tanh').
struct GeluTanh {
  static constexpr Activation kind = Activation::gelu_tanh;
  static constexpr const char* name = "gelu_tanh";
  static constexpr bool needs_input = true;
  static constexpr double kSqrt2OverPi = 0.79788456080286535588, kCubic = 0.044715;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return T(0.5) * x * (T(1) + tanh_of(T(kSqrt2OverPi) * (x + T(kCubic) * x * x * x)));
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T x, T) {
    const T t = tanh_of(T(kSqrt2OverPi) * (x + T(kCubic) * x * x * x));
    const T inner = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * x * x);
    return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * inner);
  }
};

/// x sigmoid(x) (swish); f'(x) = s (1 + x (1 - s)).
struct Silu {
  static constexpr Activation kind = Activation::silu;
  static constexpr const char* name = "silu";
  static constexpr bool needs_input = true;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return x * sigmoid_of(x);
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T x, T) {
    const T s = sigmoid_of(x);
    return dy * s * (T(1) + x * (T(1) - s));
  }
};

/// tanh(x); f'(x) = 1 - y^2.
struct Tanh {
  static constexpr Activation kind = Activation::tanh;
  static constexpr const char* name = "tanh";
  static constexpr bool needs_input = false;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return tanh_of(x);
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T, T y) {
    return dy * (T(1) - y * y);
  }
};

/// 1 / (1 + exp(-x)); f'(x) = y (1 - y).
struct Sigmoid {
  static constexpr Activation kind = Activation::sigmoid;
  static constexpr const char* name = "sigmoid";
  static constexpr bool needs_input = false;
  template <typename T>
  EMBER_HOST_DEVICE static T forward(T x) {
    return sigmoid_of(x);
  }
  template <typename T>
  EMBER_HOST_DEVICE static T backward(T dy, T, T y) {
    return dy * y * (T(1) - y);
  }
};

template <typename... Parts>
struct PartList {};
/// The registry: every activation part, in Activation's order.
using ActivationParts = PartList<Linear, Relu, LeakyRelu, Gelu, GeluTanh, Silu, Tanh, Sigmoid>;

template <typename... Parts>
constexpr bool in_enum_order(PartList<Parts...>) {
  int index = 0;
  return ((static_cast<int>(Parts::kind) == index++) && ...) && index == kActivationCount;
}
static_assert(in_enum_order(ActivationParts{}),
              "ActivationParts must list one part per Activation kind, in the enum's order");

template <typename Visitor, typename First, typename... Rest>
void visit_in(Activation kind, Visitor& visitor, PartList<First, Rest...>) {
  if (kind == First::kind) {
    visitor(First{});
    return;
  }
  if constexpr (sizeof...(Rest) > 0) visit_in(kind, visitor, PartList<Rest...>{});
}

/// Calls visitor(Part{}) with the part of kind (on the host: launchers choose a kernel with it): code written once
/// against a part's interface runs for every kind, and a kind without a part does not compile (the static_assert
/// above).
template <typename Visitor>
void visit(Activation kind, Visitor&& visitor) {
  visit_in(kind, visitor, ActivationParts{});
}

/// Calls visitor(Part{}) for every part, in order.
template <typename Visitor, typename... Parts>
void for_each_part(Visitor&& visitor, PartList<Parts...>) {
  (visitor(Parts{}), ...);
}
template <typename Visitor>
void for_each_part(Visitor&& visitor) {
  for_each_part(visitor, ActivationParts{});
}

/// Whether backward reads the pre-activation x (the plan keeps it for these kinds).
inline bool needs_input(Activation kind) {
  bool needs = false;
  visit(kind, [&](auto part) { needs = decltype(part)::needs_input; });
  return needs;
}

}  // namespace ember::activations
