#pragma once
// The activations a Dense layer applies to its output. Each kind is a part: its formula, backward
// and name live in one functor (kernels/activation_math.hpp), shared by the CPU paths and the CUDA
// kernels; this header only names the kinds, so that the public API needs no kernel code.
#include <string>
#include <vector>

namespace ember {

/// PyTorch's formulas (docs/architecture.md lists them): linear (identity), relu, leaky_relu
/// (negative slope 0.01, torch.nn.LeakyReLU's default), gelu (exact, with erf: torch.nn.GELU()),
/// gelu_tanh (the tanh approximation: GELU(approximate='tanh')), silu (x * sigmoid(x)), tanh,
/// sigmoid.
enum class Activation { linear, relu, leaky_relu, gelu, gelu_tanh, silu, tanh, sigmoid };
/// How many kinds Activation has; the part list is checked against it when it is compiled.
inline constexpr int kActivationCount = 8;

/// The kind's name ("relu", "gelu_tanh", ...), as checkpoints, the CLI and Python spell it.
std::string to_string(Activation activation);
/// The kind a name spells; InputError listing the names otherwise.
Activation parse_activation(const std::string& text);
/// Every kind's name, in Activation's order.
std::vector<std::string> activation_names();

}  // namespace ember
