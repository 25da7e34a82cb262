#pragma once
// RMSNorm: each row divided by its root mean square, then a learned scale.
#include "layers/part.hpp"

namespace ember::layer_part {

/// RMSNorm's two ops, their loops written once for float64 (the reference) and float32 (the fast
/// CPU path); kernels/layers/rms_norm.cu is the GPU's. Rows are split among threads; the weight
/// gradient's columns too, each summed in row order.
struct RmsNormOps {
  // forward: in x, weight; out y, normalized (training; else null); settings epsilon.
  // backward: in dy, x, normalized, weight; out weight_gradient, dx (or null, which may alias dy).
  static void check_forward(const OpArgs& a) {
    check_operand_counts(a, "rms_norm_forward", 2, 2, 1, "epsilon");
    check_layer_norm("rms_norm_forward", a.in[0], {a.out[0], given_or(a.out[1], a.in[0])}, {a.in[1]}, a.settings[0]);
  }
  static void check_backward(const OpArgs& a) {
    check_operand_counts(a, "rms_norm_backward", 4, 2, 1, "epsilon");
    check_layer_norm("rms_norm_backward", a.in[0], {a.in[1], a.in[2], given_or(a.out[1], a.in[0])}, {a.in[3], a.out[0]},
                     a.settings[0]);
  }
  template <typename Real>
  static void forward(const OpArgs& a) {
    const ConstView x = a.in[0], weight = a.in[1];
    const View y = a.out[0], normalized = a.out[1];
    const Real epsilon = a.settings[0];
    for_rows(x, 4.0, [&](std::int64_t r) {
      const Real inverse = inverse_rms<Real>(&x(r, 0), x.cols, epsilon);
      for (std::int64_t c = 0; c < x.cols; ++c) {
        const Real n = x(r, c) * inverse;
        y(r, c) = static_cast<float>(n * weight(0, c));
        if (normalized.data != nullptr) normalized(r, c) = static_cast<float>(n);
      }
    });
  }
  template <typename Real>
  static void backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], normalized = a.in[2], weight = a.in[3];
    const View weight_gradient = a.out[0], dx = a.out[1];
    const Real epsilon = a.settings[0];
    // The weight gradient first: dx may overwrite dy.
    column_dot<Real>(dy, normalized, weight_gradient);
    if (dx.data == nullptr) return;
    for_rows(dy, 8.0, [&](std::int64_t r) {
      const Real inverse = inverse_rms<Real>(&x(r, 0), x.cols, epsilon);
      Real gn_sum = 0;
      for (std::int64_t c = 0; c < dy.cols; ++c)
        gn_sum += static_cast<Real>(dy(r, c)) * weight(0, c) * (x(r, c) * inverse);
      const Real gn_mean = gn_sum / static_cast<Real>(dy.cols);
      for (std::int64_t c = 0; c < dy.cols; ++c)
        dx(r, c) =
            static_cast<float>((static_cast<Real>(dy(r, c)) * weight(0, c) - x(r, c) * inverse * gn_mean) * inverse);
    });
  }

 private:
  template <typename Real>
  static Real inverse_rms(const float* row, std::int64_t cols, Real epsilon) {
    Real squares = 0;
    for (std::int64_t c = 0; c < cols; ++c) squares += static_cast<Real>(row[c]) * row[c];
    return 1 / std::sqrt(squares / static_cast<Real>(cols) + epsilon);
  }
};

template <>
struct Part<RMSNorm> {
  static constexpr const char* name = "rmsnorm";
  static constexpr const char* keras_name = "RMSNormalization";
  static constexpr const char* spelling = "rmsnorm[:EPSILON]";
  static constexpr const char* meaning =
      "divides each row by its root mean square, as PyTorch's RMSNorm (epsilon 1e-6 unless given)";
  static constexpr const char* settings[] = {"epsilon"};
  static constexpr LayerOp kForward{"rms_norm_forward", RmsNormOps::check_forward, RmsNormOps::forward<double>,
                                    RmsNormOps::forward<float>};
  static constexpr LayerOp kBackward{"rms_norm_backward", RmsNormOps::check_backward, RmsNormOps::backward<double>,
                                     RmsNormOps::backward<float>};
  static void check(const RMSNorm& norm) {
    if (!(norm.epsilon > 0.0f && std::isfinite(norm.epsilon)))
      throw InputError(fmt::format("an RMSNorm layer's epsilon must be positive and finite, got {}", norm.epsilon));
  }
  static std::int64_t output_width(const RMSNorm&, std::int64_t in) { return in; }
  // As torch.nn.RMSNorm's state_dict: weight (the scale).
  static std::vector<ParameterShape> parameters(const RMSNorm&, std::int64_t in) { return {{"weight", {in}}}; }
  static void initialize(const RMSNorm&, std::int64_t in, std::uint64_t, std::vector<float>& parameters) {
    parameters.insert(parameters.end(), static_cast<std::size_t>(in), 1.0f);
  }
  // Training, extra keeps the normalized input, which the weight gradient reads.
  static Buffers buffers(const RMSNorm&, bool training) { return {true, training}; }
  static ConstView forward(const RMSNorm& norm, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    const ConstView in[] = {input, {slots.parameters, 1, slots.in}};
    const View out[] = {output, {slots.extra, pass.rows, slots.out}};
    pass.backend.layer_op(kForward, {in, out, {&norm.epsilon, 1}});
    return output;
  }
  static bool backward(const RMSNorm& norm, const Slots& slots, const Pass& pass, ConstView input, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    const ConstView in[] = {dy, input, {slots.extra, pass.rows, slots.out}, {slots.parameters, 1, slots.in}};
    const View out[] = {{slots.gradients, 1, slots.in}, dx.value_or(View{nullptr, pass.rows, slots.in})};
    pass.backend.layer_op(kBackward, {in, out, {&norm.epsilon, 1}});
    return false;
  }
  static bool folds_relu(const RMSNorm&) { return false; }
  static SettingsJson to_json(const RMSNorm& norm) { return {{"type", name}, {"epsilon", norm.epsilon}}; }
  static RMSNorm from_json(const SettingsJson& json) { return RMSNorm(settings_float(json, "epsilon")); }
  static std::string describe(const RMSNorm& norm) { return fmt::format("RMSNorm({})", norm.epsilon); }
  // x / sqrt(mean(x^2) + epsilon) * weight, the row means a product with a column of 1 / width
  // (RMSNormalization is an operator from opset 23 on).
  static std::string onnx(const RMSNorm& norm, OnnxGraph& g, const OnnxLayer& at) {
    const std::vector<float> means(static_cast<std::size_t>(at.in), 1.0f / static_cast<float>(at.in));
    const std::string mean_square =
        g.node("MatMul", {g.node("Mul", {at.x, at.x}), g.floats("row_mean", {at.in, 1}, means.data(), means.size())});
    const std::string rms = g.node("Sqrt", {g.node("Add", {mean_square, g.floats("epsilon", {}, &norm.epsilon, 1)})});
    return g.node("Mul", {g.node("Div", {at.x, rms}), onnx_tensor(norm, g, at, "weight")});
  }
};

}  // namespace ember::layer_part
