#pragma once
// Dropout: zeroes a share of the inputs while training, by a counter-based mask.
#include "layers/part.hpp"

namespace ember::layer_part {

template <>
struct Part<Dropout> {
  static constexpr const char* name = "dropout";
  static constexpr const char* keras_name = "Dropout";
  static constexpr const char* spelling = "dropout[:RATE]";
  static constexpr const char* meaning = "zeroes that share of its inputs while training (0.5 unless given)";
  static constexpr const char* settings[] = {"rate"};
  static void check(const Dropout& dropout) {
    if (!(dropout.rate >= 0.0f && dropout.rate < 1.0f))
      throw InputError(fmt::format("a Dropout layer's rate must be 0 to below 1, got {}", dropout.rate));
  }
  static std::int64_t output_width(const Dropout&, std::int64_t in) { return in; }
  static std::vector<ParameterShape> parameters(const Dropout&, std::int64_t) { return {}; }
  static void initialize(const Dropout&, std::int64_t, std::uint64_t, std::vector<float>&) {}
  // Predicting, the input passes through: no buffer.
  static Buffers buffers(const Dropout&, bool training) { return {training, false}; }
  static ConstView forward(const Dropout& dropout, const Slots& slots, const Pass& pass, ConstView input) {
    if (!pass.training) return input;
    const View output{slots.output, pass.rows, slots.out};
    pass.backend.dropout(input, output, dropout.rate, slots.seed, pass.counters);
    return output;
  }
  // The same mask (the same draws: the counters have not moved since forward) on the gradient.
  static bool backward(const Dropout& dropout, const Slots& slots, const Pass& pass, ConstView, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    if (dx) pass.backend.dropout(dy, *dx, dropout.rate, slots.seed, pass.counters);
    return false;
  }
  static bool folds_relu(const Dropout&) { return false; }
  static SettingsJson to_json(const Dropout& dropout) { return {{"type", name}, {"rate", dropout.rate}}; }
  static Dropout from_json(const SettingsJson& json) { return Dropout(settings_float(json, "rate")); }
  static std::string describe(const Dropout& dropout) { return fmt::format("Dropout({})", dropout.rate); }
  static std::string onnx(const Dropout&, OnnxGraph&, const OnnxLayer& at) { return at.x; }  // the identity
};

}  // namespace ember::layer_part
