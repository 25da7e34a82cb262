#pragma once
// Dense: a matrix product, a bias and an activation (the plan folds ReLU into the layer above).
#include "layers/part.hpp"

namespace ember::layer_part {

template <>
struct Part<Dense> {
  static constexpr const char* name = "dense";
  static constexpr const char* keras_name = "Dense";
  // Spelled by its width: a spelling whose head is a number (parse_layer).
  static constexpr const char* spelling = "WIDTH[:ACTIVATION]";
  static constexpr const char* meaning = "a Dense layer of that width (ReLU unless an activation is named)";
  static Dense from_spelling(std::span<const std::string> items) {
    if (items.size() > 2) throw InputError("a Dense layer takes a width and an activation at most");
    const std::int64_t units = whole_number(items[0]);
    if (units == 0) throw InputError(fmt::format("'{}' is not a positive layer width", items[0]));
    return Dense(units, items.size() == 2 ? parse_activation(items[1]) : Activation::relu);
  }
  static void check(const Dense& dense) {
    if (dense.units <= 0 || dense.units > ParameterLayout::kMaxWidth)
      throw InputError(
          fmt::format("a Dense layer needs 1 to {} units, got {}", ParameterLayout::kMaxWidth, dense.units));
  }
  static std::int64_t output_width(const Dense& dense, std::int64_t) { return dense.units; }
  static std::vector<ParameterShape> parameters(const Dense& dense, std::int64_t in) {
    return {{"weight", {dense.units, in}}, {"bias", {dense.units}}};
  }
  static void initialize(const Dense& dense, std::int64_t in, std::uint64_t seed, std::vector<float>& parameters) {
    // Glorot uniform, as Keras: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)); zero bias.
    const std::int64_t out = dense.units;
    const double limit = std::sqrt(6.0 / static_cast<double>(in + out));
    Random random(seed);
    for (std::int64_t i = 0; i < out * in; ++i)
      parameters.push_back(static_cast<float>((2.0 * random.uniform() - 1.0) * limit));
    parameters.insert(parameters.end(), static_cast<std::size_t>(out), 0.0f);
  }
  static Buffers buffers(const Dense& dense, bool training) {
    return {true, training && activations::needs_input(dense.activation)};
  }
  static ConstView forward(const Dense& dense, const Slots& slots, const Pass& pass, ConstView input) {
    // output (rows, out) = act(input (rows, in) @ weight (out, in)^T + bias)
    const View output{slots.output, pass.rows, slots.out};
    pass.backend.dense_forward(input, weight(slots), bias(slots), dense.activation, output, extra(slots, pass));
    return output;
  }
  static bool backward(const Dense& dense, const Slots& slots, const Pass& pass, ConstView input, ConstView output,
                       View dy, bool folded, std::optional<ConstView> relu_below, std::optional<View> dx) {
    // The activation's backward, unless the layer above folded it (ReLU) into its input gradient.
    if (dense.activation != Activation::linear && !folded)
      pass.backend.activation_backward(dense.activation, dy, ConstView{slots.extra, pass.rows, slots.out}, output, dy);
    // weight gradient (out, in) = dy^T @ input, bias gradient its column sums (with row weights,
    // their weighted means); dx (rows, in) = dy @ weight, through the ReLU below when given.
    const bool fold = dx.has_value() && relu_below.has_value();
    const View weight_gradient{slots.gradients, slots.out, slots.in};
    const View bias_gradient{slots.gradients + slots.out * slots.in, 1, slots.out};
    if (!pass.row_weights) {
      pass.backend.dense_backward(dy, input, weight(slots), fold ? relu_below : std::nullopt, weight_gradient,
                                  bias_gradient, dx);
      return fold;
    }
    pass.backend.dense_parameter_gradients(dy, input, *pass.row_weights, weight_gradient, bias_gradient);
    if (dx) pass.backend.dense_input_gradient(dy, weight(slots), fold ? relu_below : std::nullopt, *dx);
    return fold;
  }
  // Each row apart; the parameter gradients are sums over the rows.
  static constexpr bool row_weights = true;
  static bool folds_relu(const Dense& dense) { return dense.activation == Activation::relu; }
  static SettingsJson to_json(const Dense& dense) {
    return {{"type", name}, {"units", dense.units}, {"activation", to_string(dense.activation)}};
  }
  static Dense from_json(const SettingsJson& json) {
    return Dense(json.at("units").get<std::int64_t>(), parse_activation(json.at("activation").get<std::string>()));
  }
  static std::string describe(const Dense& dense) {
    return fmt::format("Dense({}, {})", dense.units, to_string(dense.activation));
  }
  static std::string onnx(const Dense& dense, OnnxGraph& g, const OnnxLayer& at) {
    const std::string y =
        g.node("Gemm", {at.x, onnx_tensor(dense, g, at, "weight"), onnx_tensor(dense, g, at, "bias")});
    g.attribute("transB", std::int64_t{1});
    return g.activation(dense.activation, y);
  }

 private:
  static ConstView weight(const Slots& slots) { return {slots.parameters, slots.out, slots.in}; }
  static ConstView bias(const Slots& slots) { return {slots.parameters + slots.out * slots.in, 1, slots.out}; }
};

}  // namespace ember::layer_part
