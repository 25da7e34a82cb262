#pragma once
// BatchNorm: each column normalized by the batch's statistics while training, by running ones after.
#include "layers/part.hpp"

namespace ember::layer_part {

template <>
struct Part<BatchNorm> {
  static constexpr const char* name = "batchnorm";
  static constexpr const char* keras_name = "BatchNormalization";
  static constexpr const char* spelling = "batchnorm[:MOMENTUM[:EPSILON]]";
  static constexpr const char* meaning =
      "normalizes each column over the batch while training and by its running figures when predicting, as "
      "PyTorch's BatchNorm1d (momentum 0.1, epsilon 1e-5 unless given)";
  static constexpr const char* settings[] = {"momentum", "epsilon"};
  static void check(const BatchNorm& norm) {
    if (!(norm.epsilon > 0.0f && std::isfinite(norm.epsilon)))
      throw InputError(fmt::format("a BatchNorm layer's epsilon must be positive and finite, got {}", norm.epsilon));
    if (!(norm.momentum >= 0.0f && norm.momentum <= 1.0f))
      throw InputError(fmt::format("a BatchNorm layer's momentum must be 0 to 1, got {}", norm.momentum));
  }
  static std::int64_t output_width(const BatchNorm&, std::int64_t in) { return in; }
  // As torch.nn.BatchNorm1d's state_dict: weight (the scale), bias (the shift), then the running
  // figures, which are state.
  static std::vector<ParameterShape> parameters(const BatchNorm&, std::int64_t in) {
    return {{"weight", {in}}, {"bias", {in}}, {"running_mean", {in}, true}, {"running_var", {in}, true}};
  }
  static void check_values(const BatchNorm&, const std::string& name, std::span<const float> values) {
    if (name != "running_var") return;
    for (std::size_t c = 0; c < values.size(); ++c)
      if (values[c] < 0.0f)
        throw InputError(
            fmt::format("a BatchNorm layer's running variance cannot be negative: {} in column {}", values[c], c));
  }
  static void initialize(const BatchNorm&, std::int64_t in, std::uint64_t, std::vector<float>& parameters) {
    for (const float value : {1.0f, 0.0f, 0.0f, 1.0f})
      parameters.insert(parameters.end(), static_cast<std::size_t>(in), value);
  }
  // Its output only: backward recomputes the batch's statistics from the input (or, over ranks,
  // reads the totals forward left in the scratch).
  static Buffers buffers(const BatchNorm&, bool) { return {true, false}; }
  static std::int64_t batch_scratch(const BatchNorm&, std::int64_t in) { return 4 * in + 1; }
  static ConstView forward(const BatchNorm& norm, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    const std::optional<BatchAcrossRanks> ranks = across_ranks(slots, pass);
    pass.backend.batch_norm_forward(input, scale(slots), shift(slots), View{slots.state, 1, slots.in},
                                    View{slots.state + slots.in, 1, slots.in}, norm.epsilon, norm.momentum,
                                    pass.training, output, ranks ? &*ranks : nullptr);
    return output;
  }
  static bool backward(const BatchNorm& norm, const Slots& slots, const Pass& pass, ConstView input, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    const std::optional<BatchAcrossRanks> ranks = across_ranks(slots, pass);
    pass.backend.batch_norm_backward(dy, input, scale(slots), norm.epsilon, View{slots.gradients, 1, slots.in},
                                     View{slots.gradients + slots.in, 1, slots.in}, dx, ranks ? &*ranks : nullptr);
    return false;
  }
  static bool folds_relu(const BatchNorm&) { return false; }
  static SettingsJson to_json(const BatchNorm& norm) {
    return {{"type", name}, {"momentum", norm.momentum}, {"epsilon", norm.epsilon}};
  }
  static BatchNorm from_json(const SettingsJson& json) {
    return BatchNorm(settings_float(json, "momentum"), settings_float(json, "epsilon"));
  }
  static std::string describe(const BatchNorm& norm) {
    return fmt::format("BatchNorm(momentum={}, epsilon={})", norm.momentum, norm.epsilon);
  }
  // Predicting: the running figures (ONNX's BatchNormalization on (N, C), training_mode 0).
  static std::string onnx(const BatchNorm& norm, OnnxGraph& g, const OnnxLayer& at) {
    std::vector<std::string> inputs{at.x};
    for (const char* name : {"weight", "bias", "running_mean", "running_var"})
      inputs.push_back(onnx_tensor(norm, g, at, name));
    const std::string y = g.node("BatchNormalization", inputs);
    g.attribute("epsilon", norm.epsilon);
    return y;
  }

 private:
  static ConstView scale(const Slots& slots) { return {slots.parameters, 1, slots.in}; }
  static ConstView shift(const Slots& slots) { return {slots.parameters + slots.in, 1, slots.in}; }
  static std::optional<BatchAcrossRanks> across_ranks(const Slots& slots, const Pass& pass) {
    if (!pass.training || pass.ranks == nullptr) return std::nullopt;
    return BatchAcrossRanks{slots.scratch, *pass.ranks};
  }
};

}  // namespace ember::layer_part
