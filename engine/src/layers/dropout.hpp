#pragma once
// Dropout: zeroes a share of the inputs while training, by a counter-based mask.
#include "dropout_math.hpp"
#include "layers/part.hpp"

namespace ember::layer_part {

/// Dropout's one op, run forward and backward (kernels/layers/dropout.cu is the GPU's): y[i] = x[i]
/// * scale where element i is kept, else 0, scale = 1 / (1 - rate) rounded to float. Whether i is
/// kept is a draw of Philox4x32-10 keyed by the draws' seed over (i, counters[0], counters[1])
/// (kernels/dropout_math.hpp, which every backend calls: the masks are identical). x and y may be
/// the same memory. One float product per element: exact, so the fast CPU path runs it too.
struct DropoutOps {
  // in x; out y; settings rate; draws.
  static void check(const OpArgs& a) {
    check_operand_counts(a, "dropout", 1, 1, 1, "rate");
    check_same_shape(a.in[0], a.out[0], "dropout");
    const float rate = a.settings[0];
    if (!(rate >= 0.0f && rate < 1.0f)) throw Error(fmt::format("dropout: rate {} is not in [0, 1)", rate));
    if (a.draws.counters == nullptr) throw Error("dropout: no counters to key its draws");
  }
  static void apply(const OpArgs& a) {
    const ConstView x = a.in[0];
    const View y = a.out[0];
    const dropout_math::Mask mask = dropout_math::mask_for(a.draws.seed, a.settings[0]);
    const std::int32_t step_counters[2] = {a.draws.counters[0], a.draws.counters[1]};
    const std::int64_t count = x.size(), groups = (count + 3) / 4;
    const double seconds =
        threads::single_thread_seconds(40.0 * static_cast<double>(groups), 8.0 * static_cast<double>(count));
    threads::for_ranges(groups, seconds, 64, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t group = begin; group < end; ++group) {
        const unsigned bits = dropout_math::kept_bits(mask, step_counters, static_cast<std::uint64_t>(group));
        for (std::int64_t i = 4 * group, j = 0; j < 4 && i < count; ++i, ++j)
          y.data[i] = (bits >> j & 1u) != 0 ? x.data[i] * mask.scale : 0.0f;
      }
    });
  }
};

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
  static constexpr LayerOp kOp{"dropout", DropoutOps::check, DropoutOps::apply};
  static ConstView forward(const Dropout& dropout, const Slots& slots, const Pass& pass, ConstView input) {
    if (!pass.training) return input;
    const View output{slots.output, pass.rows, slots.out};
    pass.backend.layer_op(kOp, {{&input, 1}, {&output, 1}, {&dropout.rate, 1}, {slots.seed, pass.counters}});
    return output;
  }
  // The same mask (the same draws: the counters have not moved since forward) on the gradient.
  static bool backward(const Dropout& dropout, const Slots& slots, const Pass& pass, ConstView, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    const ConstView gradient = dy;
    if (dx) pass.backend.layer_op(kOp, {{&gradient, 1}, {&*dx, 1}, {&dropout.rate, 1}, {slots.seed, pass.counters}});
    return false;
  }
  static bool folds_relu(const Dropout&) { return false; }
  static SettingsJson to_json(const Dropout& dropout) { return {{"type", name}, {"rate", dropout.rate}}; }
  static Dropout from_json(const SettingsJson& json) { return Dropout(settings_float(json, "rate")); }
  static std::string describe(const Dropout& dropout) { return fmt::format("Dropout({})", dropout.rate); }
  static std::string onnx(const Dropout&, OnnxGraph&, const OnnxLayer& at) { return at.x; }  // the identity
};

}  // namespace ember::layer_part
