#pragma once
// LayerNorm: each row centred and scaled by its own statistics, then a learned scale and shift.
#include "layers/part.hpp"

namespace ember::layer_part {

template <>
struct Part<LayerNorm> {
  static constexpr const char* name = "layernorm";
  static constexpr const char* keras_name = "LayerNormalization";
  static constexpr const char* spelling = "layernorm[:EPSILON]";
  static constexpr const char* meaning = "normalizes each row, as PyTorch's LayerNorm (epsilon 1e-5 unless given)";
  static constexpr const char* settings[] = {"epsilon"};
  static void check(const LayerNorm& norm) {
    if (!(norm.epsilon > 0.0f && std::isfinite(norm.epsilon)))
      throw InputError(fmt::format("a LayerNorm layer's epsilon must be positive and finite, got {}", norm.epsilon));
  }
  static std::int64_t output_width(const LayerNorm&, std::int64_t in) { return in; }
  // As torch.nn.LayerNorm's state_dict: weight (the scale), then bias (the shift).
  static std::vector<ParameterShape> parameters(const LayerNorm&, std::int64_t in) {
    return {{"weight", {in}}, {"bias", {in}}};
  }
  static void initialize(const LayerNorm&, std::int64_t in, std::uint64_t, std::vector<float>& parameters) {
    parameters.insert(parameters.end(), static_cast<std::size_t>(in), 1.0f);
    parameters.insert(parameters.end(), static_cast<std::size_t>(in), 0.0f);
  }
  // Training, extra keeps the normalized input, which the parameter gradients read.
  static Buffers buffers(const LayerNorm&, bool training) { return {true, training}; }
  static ConstView forward(const LayerNorm& norm, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    pass.backend.layer_norm_forward(input, scale(slots), shift(slots), norm.epsilon, output, extra(slots, pass));
    return output;
  }
  static bool backward(const LayerNorm& norm, const Slots& slots, const Pass& pass, ConstView input, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    pass.backend.layer_norm_backward(dy, input, ConstView{slots.extra, pass.rows, slots.out}, scale(slots),
                                     norm.epsilon, View{slots.gradients, 1, slots.in},
                                     View{slots.gradients + slots.in, 1, slots.in}, dx);
    return false;
  }
  static bool folds_relu(const LayerNorm&) { return false; }
  static SettingsJson to_json(const LayerNorm& norm) { return {{"type", name}, {"epsilon", norm.epsilon}}; }
  static LayerNorm from_json(const SettingsJson& json) { return LayerNorm(settings_float(json, "epsilon")); }
  static std::string describe(const LayerNorm& norm) { return fmt::format("LayerNorm({})", norm.epsilon); }
  static std::string onnx(const LayerNorm& norm, OnnxGraph& g, const OnnxLayer& at) {
    const std::string y =
        g.node("LayerNormalization", {at.x, onnx_tensor(norm, g, at, "weight"), onnx_tensor(norm, g, at, "bias")});
    g.attribute("axis", std::int64_t{-1}).attribute("epsilon", norm.epsilon);
    return y;
  }

 private:
  static ConstView scale(const Slots& slots) { return {slots.parameters, 1, slots.in}; }
  static ConstView shift(const Slots& slots) { return {slots.parameters + slots.in, 1, slots.in}; }
};

}  // namespace ember::layer_part
