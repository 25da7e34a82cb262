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
    check_counts(a, "scale_forward", 2, 1);
    same_shape("scale_forward", a.in[0], {a.out[0]});
    row_of(a.in[1], a.in[0], "scale_forward");
  }
  static void check_backward(const OpArgs& a) {
    check_counts(a, "scale_backward", 3, 2);
    same_shape("scale_backward", a.in[0], {a.in[1]});
    if (a.out[1].data != nullptr) same_shape("scale_backward", a.in[0], {a.out[1]});
    row_of(a.in[2], a.in[0], "scale_backward");
    row_of(a.out[0], a.in[0], "scale_backward");
  }
  template <typename Real>
  static void forward(const OpArgs& a) {
    const ConstView x = a.in[0], weight = a.in[1];
    const View y = a.out[0];
    elements(x, [&](std::int64_t r, std::int64_t c) { y(r, c) = static_cast<float>(Real{x(r, c)} * weight(0, c)); });
  }
  template <typename Real>
  static void backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], weight = a.in[2];
    const View weight_gradient = a.out[0], dx = a.out[1];
    // The weight gradient first: dx may overwrite dy.
    column_dot<Real>(dy, x, weight_gradient);
    if (dx.data == nullptr) return;
    elements(dy, [&](std::int64_t r, std::int64_t c) { dx(r, c) = static_cast<float>(Real{dy(r, c)} * weight(0, c)); });
  }

 private:
  static void check_counts(const OpArgs& a, const char* op, std::size_t in, std::size_t out) {
    if (a.in.size() != in || a.out.size() != out || !a.settings.empty())
      throw Error(fmt::format("{}: takes {} inputs, {} outputs and no setting", op, in, out));
  }
  static void same_shape(const char* op, ConstView reference, std::initializer_list<ConstView> views) {
    for (const ConstView& view : views)
      if (view.rows != reference.rows || view.cols != reference.cols)
        throw Error(
            fmt::format("{}: operands of {}x{} and {}x{}", op, reference.rows, reference.cols, view.rows, view.cols));
  }
  static void row_of(ConstView weight, ConstView x, const char* op) {
    if (weight.rows != 1 || weight.cols != x.cols)
      throw Error(fmt::format("{}: a weight of 1x{} for {} features", op, weight.cols, x.cols));
  }
  template <typename Body>
  static void elements(ConstView x, Body&& body) {
    const double seconds =
        threads::single_thread_seconds(static_cast<double>(x.size()), 8.0 * static_cast<double>(x.size()));
    threads::for_ranges(x.rows, seconds, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r)
        for (std::int64_t c = 0; c < x.cols; ++c) body(r, c);
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
