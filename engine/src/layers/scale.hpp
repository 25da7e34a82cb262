#pragma once
// Scale: each feature times a learned factor (RealMLP's scaling layer).
#include "layers/part.hpp"

namespace ember::layer_part {

/// Scale's two ops, their loops written once for float64 (the reference) and float32 (the fast CPU
/// path); kernels/layers/scale.cu is the GPU's. The weight gradient's columns are split among
/// threads, each summed in row order; the rest is elementwise.
struct ScaleOps {
  // forward: in x, weight; out y.
  // backward: in dy, x, weight; out weight_gradient, dx (or null, which may alias dy).
  static void check_forward(const OpArgs& a) {
    check_operand_counts(a, "scale_forward", 2, 1, 0, "no setting");
    check_same_shape(a.in[0], a.out[0], "scale_forward");
    check_bias(a.in[0], a.in[1], "scale_forward");
  }
  static void check_backward(const OpArgs& a) {
    check_operand_counts(a, "scale_backward", 3, 2, 0, "no setting");
    check_same_shape(a.in[0], a.in[1], "scale_backward");
    if (a.out[1].data != nullptr) check_same_shape(a.in[0], a.out[1], "scale_backward");
    check_bias(a.in[0], a.in[2], "scale_backward");
    check_bias(a.in[0], a.out[0], "scale_backward");
  }
  template <typename Real>
  static void forward(const OpArgs& a) {
    scale_columns<Real>(a.in[0], a.in[1], a.out[0]);
  }
  template <typename Real>
  static void backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], weight = a.in[2];
    // The weight gradient first: dx may overwrite dy.
    column_dot<Real>(dy, x, a.out[0]);
    if (a.out[1].data != nullptr) scale_columns<Real>(dy, weight, a.out[1]);
  }

 private:
  /// out = in * weight, the weight broadcast over the rows (Scale's forward and its input gradient).
  template <typename Real>
  static void scale_columns(ConstView in, ConstView weight, View out) {
    for_rows(in, 1.0, [&](std::int64_t r) {
      for (std::int64_t c = 0; c < in.cols; ++c) out(r, c) = static_cast<float>(Real{in(r, c)} * weight(0, c));
    });
  }
};

template <>
struct Part<Scale> {
  static constexpr const char* name = "scale";
  static constexpr const char* keras_name = "Scale";
  static constexpr const char* spelling = "scale[:INIT]";
  static constexpr const char* meaning =
      "multiplies each feature by a learned factor, INIT at first (1 unless given), as RealMLP's first layer";
  static constexpr const char* settings[] = {"init"};
  static constexpr LayerOp kForward{"scale_forward", ScaleOps::check_forward, ScaleOps::forward<double>,
                                    ScaleOps::forward<float>};
  static constexpr LayerOp kBackward{"scale_backward", ScaleOps::check_backward, ScaleOps::backward<double>,
                                     ScaleOps::backward<float>};
  static void check(const Scale& scale) {
    if (!std::isfinite(scale.init))
      throw InputError(fmt::format("a Scale layer's init must be finite, got {}", scale.init));
  }
  static std::int64_t output_width(const Scale&, std::int64_t in) { return in; }
  static std::vector<ParameterShape> parameters(const Scale&, std::int64_t in) { return {{"weight", {in}}}; }
  static void initialize(const Scale& scale, std::int64_t in, std::uint64_t, std::vector<float>& parameters) {
    parameters.insert(parameters.end(), static_cast<std::size_t>(in), scale.init);
  }
  // Backward reads the layer's input, which the plan keeps anyway: no second buffer.
  static Buffers buffers(const Scale&, bool) { return {true, false}; }
  static ConstView forward(const Scale&, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    const ConstView in[] = {input, {slots.parameters, 1, slots.in}};
    const View out[] = {output};
    pass.backend.layer_op(kForward, {in, out, {}});
    return output;
  }
  static bool backward(const Scale&, const Slots& slots, const Pass& pass, ConstView input, ConstView, View dy, bool,
                       std::optional<ConstView>, std::optional<View> dx) {
    const ConstView in[] = {dy, input, {slots.parameters, 1, slots.in}};
    const View out[] = {{slots.gradients, 1, slots.in}, dx.value_or(View{nullptr, pass.rows, slots.in})};
    pass.backend.layer_op(kBackward, {in, out, {}});
    return false;
  }
  static bool folds_relu(const Scale&) { return false; }
  static SettingsJson to_json(const Scale& scale) { return {{"type", name}, {"init", scale.init}}; }
  static Scale from_json(const SettingsJson& json) { return Scale(settings_float(json, "init")); }
  static std::string describe(const Scale& scale) { return fmt::format("Scale({})", scale.init); }
  // x * weight, the weight broadcast over the rows.
  static std::string onnx(const Scale& scale, OnnxGraph& g, const OnnxLayer& at) {
    return g.node("Mul", {at.x, onnx_tensor(scale, g, at, "weight")});
  }
};

}  // namespace ember::layer_part
