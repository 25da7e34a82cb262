#pragma once
// LayerNorm: each row centred and scaled by its own statistics, then a learned scale and shift.
#include <type_traits>
#include <utility>

#include "layers/part.hpp"

namespace ember::layer_part {

/// LayerNorm's two ops: float64 loops (the reference), float32 loops for the fast CPU path (SIMD
/// sums); kernels/layers/layer_norm.cu is the GPU's. Rows split among threads; the parameter
/// gradients' columns too, each summed in row order whatever the split.
///   forward:  y = (x - mean) / sqrt(var + epsilon) * scale + shift, mean and var (biased) of each
///             row; normalized (training) = (x - mean) / sqrt(var + epsilon).
///   backward: scale_gradient = the column sums of dy * normalized, shift_gradient = those of dy,
///             dx = (g - mean(g) - normalized * mean(g * normalized)) / sqrt(var + epsilon) with
///             g = dy * scale, the means over each row, var recomputed from x; dx may alias dy.
struct LayerNormOps {
  // forward: in x, scale, shift; out y, normalized (or null); settings epsilon.
  // backward: in dy, x, normalized, scale; out scale_gradient, shift_gradient, dx (or null).
  static void check_forward(const OpArgs& a) {
    check_operand_counts(a, "layer_norm_forward", 3, 2, 1, "epsilon");
    check_layer_norm("layer_norm_forward", a.in[0], {a.out[0], given_or(a.out[1], a.out[0])}, {a.in[1], a.in[2]},
                     a.settings[0]);
  }
  static void check_backward(const OpArgs& a) {
    check_operand_counts(a, "layer_norm_backward", 4, 3, 1, "epsilon");
    check_layer_norm("layer_norm_backward", a.in[0], {a.in[1], a.in[2], given_or(a.out[2], a.in[0])},
                     {a.in[3], a.out[0], a.out[1]}, a.settings[0]);
  }
  static void reference_forward(const OpArgs& a) {
    const ConstView x = a.in[0], scale = a.in[1], shift = a.in[2];
    const View y = a.out[0], normalized = a.out[1];
    for_rows(x, 10.0, [&](std::int64_t r) {
      const auto [mean, inverse_std] = moments<double>(&x(r, 0), x.cols, a.settings[0]);
      for (std::int64_t c = 0; c < x.cols; ++c) {
        const double centred = (x(r, c) - mean) * inverse_std;
        y(r, c) = static_cast<float>(centred * scale(0, c) + shift(0, c));
        if (normalized.data != nullptr) normalized(r, c) = static_cast<float>(centred);
      }
    });
  }
  static void reference_backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], normalized = a.in[2], scale = a.in[3];
    const View scale_gradient = a.out[0], shift_gradient = a.out[1], dx = a.out[2];
    // The parameter gradients first: dx may overwrite dy.
    column_dot<double>(dy, normalized, scale_gradient);
    column_sum(dy, shift_gradient);
    if (dx.data == nullptr) return;
    for_rows(dy, 20.0, [&](std::int64_t r) {
      const auto [mean, inverse_std] = moments<double>(&x(r, 0), x.cols, a.settings[0]);
      double g_sum = 0.0, g_centred_sum = 0.0;
      for (std::int64_t c = 0; c < dy.cols; ++c) {
        const double g = static_cast<double>(dy(r, c)) * scale(0, c);
        g_sum += g;
        g_centred_sum += g * (x(r, c) - mean) * inverse_std;
      }
      const double g_mean = g_sum / static_cast<double>(dy.cols),
                   g_centred_mean = g_centred_sum / static_cast<double>(dy.cols);
      for (std::int64_t c = 0; c < dy.cols; ++c) {
        const double centred = (x(r, c) - mean) * inverse_std;
        dx(r, c) = static_cast<float>(
            (static_cast<double>(dy(r, c)) * scale(0, c) - g_mean - centred * g_centred_mean) * inverse_std);
      }
    });
  }
  static void fast_forward(const OpArgs& a) {
    const ConstView x = a.in[0], scale = a.in[1], shift = a.in[2];
    const View y = a.out[0], normalized = a.out[1];
    for_rows(x, 4.0, [&](std::int64_t r) {
      const float* row = &x(r, 0);
      const auto [mean, inverse_std] = moments<float>(row, x.cols, a.settings[0]);
      float* out = &y(r, 0);
      float* kept = normalized.data != nullptr ? &normalized(r, 0) : nullptr;
#pragma omp simd
      for (std::int64_t c = 0; c < x.cols; ++c) {
        const float centred = (row[c] - mean) * inverse_std;
        out[c] = centred * scale.data[c] + shift.data[c];
        if (kept != nullptr) kept[c] = centred;
      }
    });
  }
  static void fast_backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], normalized = a.in[2], scale = a.in[3];
    const View scale_gradient = a.out[0], shift_gradient = a.out[1], dx = a.out[2];
    // The parameter gradients first (dx may overwrite dy), rows outer so that dy is read in order;
    // threads take disjoint blocks of columns, each summed in row order whatever the split.
    const double seconds = threads::single_thread_seconds(0, 8.0 * static_cast<double>(dy.size()));
    threads::for_ranges(dy.cols, seconds, 64, [&](std::int64_t begin, std::int64_t end) {
      float* scale_sum = scale_gradient.data;
      float* shift_sum = shift_gradient.data;
      for (std::int64_t c = begin; c < end; ++c) scale_sum[c] = shift_sum[c] = 0.0f;
      for (std::int64_t r = 0; r < dy.rows; ++r) {
        const float* g = &dy(r, 0);
        const float* n = &normalized(r, 0);
#pragma omp simd
        for (std::int64_t c = begin; c < end; ++c) {
          scale_sum[c] += g[c] * n[c];
          shift_sum[c] += g[c];
        }
      }
    });
    if (dx.data == nullptr) return;
    for_rows(dy, 6.0, [&](std::int64_t r) {
      const float* row = &x(r, 0);
      const float* g = &dy(r, 0);
      const auto [mean, inverse_std] = moments<float>(row, x.cols, a.settings[0]);
      float g_sum = 0.0f, g_centred_sum = 0.0f;
#pragma omp simd reduction(+ : g_sum, g_centred_sum)
      for (std::int64_t c = 0; c < dy.cols; ++c) {
        const float scaled = g[c] * scale.data[c];
        g_sum += scaled;
        g_centred_sum += scaled * (row[c] - mean) * inverse_std;
      }
      const float g_mean = g_sum / static_cast<float>(dy.cols);
      const float g_centred_mean = g_centred_sum / static_cast<float>(dy.cols);
      float* out = &dx(r, 0);
#pragma omp simd
      for (std::int64_t c = 0; c < dy.cols; ++c) {
        const float centred = (row[c] - mean) * inverse_std;
        out[c] = (g[c] * scale.data[c] - g_mean - centred * g_centred_mean) * inverse_std;
      }
    });
  }

 private:
  /// A row's mean and 1 / sqrt(var + epsilon): the mean, then the variance of the centred values
  /// (no cancellation of E[x^2] - mean^2). Plain float64 sums for the reference, SIMD float32 sums
  /// for the fast path.
  template <typename Real>
  static std::pair<Real, Real> moments(const float* row, std::int64_t cols, float epsilon) {
    Real sum = 0, squares = 0;
    if constexpr (std::is_same_v<Real, double>) {
      for (std::int64_t c = 0; c < cols; ++c) sum += row[c];
    } else {
#pragma omp simd reduction(+ : sum)
      for (std::int64_t c = 0; c < cols; ++c) sum += row[c];
    }
    const Real mean = sum / static_cast<Real>(cols);
    if constexpr (std::is_same_v<Real, double>) {
      for (std::int64_t c = 0; c < cols; ++c) squares += (row[c] - mean) * (row[c] - mean);
    } else {
#pragma omp simd reduction(+ : squares)
      for (std::int64_t c = 0; c < cols; ++c) squares += (row[c] - mean) * (row[c] - mean);
    }
    return {mean, 1 / std::sqrt(squares / static_cast<Real>(cols) + static_cast<Real>(epsilon))};
  }
  /// sums(0, c) = the sum over rows of a(r, c), in float64.
  static void column_sum(ConstView a, View sums) {
    const double seconds =
        threads::single_thread_seconds(static_cast<double>(a.size()), 4.0 * static_cast<double>(a.size()));
    threads::for_ranges(a.cols, seconds, 64, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t c = begin; c < end; ++c) {
        double sum = 0.0;
        for (std::int64_t r = 0; r < a.rows; ++r) sum += a(r, c);
        sums(0, c) = static_cast<float>(sum);
      }
    });
  }
};

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
  static constexpr LayerOp kForward{"layer_norm_forward", LayerNormOps::check_forward, LayerNormOps::reference_forward,
                                    LayerNormOps::fast_forward};
  static constexpr LayerOp kBackward{"layer_norm_backward", LayerNormOps::check_backward,
                                     LayerNormOps::reference_backward, LayerNormOps::fast_backward};
  static ConstView forward(const LayerNorm& norm, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    const ConstView in[] = {input, scale(slots), shift(slots)};
    const View out[] = {output, {slots.extra, pass.rows, slots.out}};
    pass.backend.layer_op(kForward, {in, out, {&norm.epsilon, 1}});
    return output;
  }
  static bool backward(const LayerNorm& norm, const Slots& slots, const Pass& pass, ConstView input, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    const ConstView in[] = {dy, input, {slots.extra, pass.rows, slots.out}, scale(slots)};
    const View out[] = {{slots.gradients, 1, slots.in},
                        {slots.gradients + slots.in, 1, slots.in},
                        dx.value_or(View{nullptr, pass.rows, slots.in})};
    pass.backend.layer_op(kBackward, {in, out, {&norm.epsilon, 1}});
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
