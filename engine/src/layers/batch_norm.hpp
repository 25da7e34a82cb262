#pragma once
// BatchNorm: each column normalized by the batch's statistics while training, by running ones after.
#include "layers/part.hpp"

namespace ember::layer_part {

/// BatchNorm's two ops: float64 loops (the reference) and float32 SIMD loops (the fast CPU path);
/// kernels/layers/batch_norm.cu is the GPU's. Threads take disjoint blocks of columns; a column's
/// figures do not depend on the split.
///   forward:  training, mean and var (biased) of each column over the batch's rows, y = (x - mean)
///             / sqrt(var + epsilon) * scale + shift, and, when the batch has more than one row,
///             running_mean = (1 - momentum) * running_mean + momentum * mean and running_var
///             likewise with the unbiased var * n / (n - 1), n the batch's rows. Predicting, y = (x -
///             running_mean) / sqrt(running_var + epsilon) * scale + shift, the running figures only
///             read. y may alias x.
///   backward: through training's statistics (recomputed from x): scale_gradient = the column sums
///             of dy * normalized, shift_gradient those of dy, dx = scale / sqrt(var + epsilon) * (dy
///             - mean(dy) - normalized * mean(dy * normalized)), the means over each column's rows.
///             dx may alias dy.
/// A batch across ranks (OpArgs::ranks, training only): the statistics are every rank's rows', and
/// the ranks' scratch holds 4 * cols + 1 floats: forward leaves [0, cols) the column sums of x and
/// [cols] the rows, then [cols + 1, 2 * cols + 1) the column sums of (x - mean)^2, each summed over
/// the ranks in turn; backward reads them, puts this rank's parameter gradients in [2 * cols + 1, 4
/// * cols + 1) and sums them (scaled) over the ranks, and dx takes those totals over this rank's
/// rows for the two means (each rank's dy is the gradient of the mean loss over its own rows).
struct BatchNormOps {
  // forward: in x, scale, shift; out y, running_mean, running_var (read; updated while training);
  //          settings epsilon, momentum, training (1 or 0).
  // backward: in dy, x, scale; out scale_gradient, shift_gradient, dx (or null); settings epsilon.
  static void check_forward(const OpArgs& a) {
    check_operand_counts(a, "batch_norm_forward", 3, 3, 3, "epsilon, momentum and training");
    check_layer_norm("batch_norm_forward", a.in[0], {a.out[0]}, {a.in[1], a.in[2], a.out[1], a.out[2]}, a.settings[0]);
    if (!(a.settings[1] >= 0.0f && a.settings[1] <= 1.0f))
      throw Error(fmt::format("batch_norm_forward: momentum {} is not 0 to 1", a.settings[1]));
    if (a.ranks != nullptr && a.settings[2] == 0.0f)
      throw Error("batch_norm_forward: a batch across ranks when not training");
    check_ranks("batch_norm_forward", a.ranks);
  }
  static void check_backward(const OpArgs& a) {
    check_operand_counts(a, "batch_norm_backward", 3, 3, 1, "epsilon");
    check_layer_norm("batch_norm_backward", a.in[0], {a.in[1], given_or(a.out[2], a.in[0])},
                     {a.in[2], a.out[0], a.out[1]}, a.settings[0]);
    check_ranks("batch_norm_backward", a.ranks);
  }

  static void reference_forward(const OpArgs& a) {
    const ConstView x = a.in[0], scale = a.in[1], shift = a.in[2];
    const View y = a.out[0], running_mean = a.out[1], running_var = a.out[2];
    const float epsilon = a.settings[0], momentum = a.settings[1];
    const BatchAcrossRanks* ranks = a.ranks;
    if (ranks != nullptr) sum_moments_over_ranks(x, *ranks);  // a rank without rows takes part too
    const double rows = ranks != nullptr ? ranks->scratch[x.cols] : static_cast<double>(x.rows);
    if (x.rows == 0 && ranks == nullptr) return;
    for_columns(x, 8.0, [&](std::int64_t c) {
      ColumnMoments m{running_mean(0, c), 1.0 / std::sqrt(static_cast<double>(running_var(0, c)) + epsilon), 0};
      if (a.settings[2] != 0.0f) {
        m = ranks != nullptr ? total_moments(ranks->scratch, x.cols, c, epsilon) : column_moments(x, c, epsilon);
        if (rows > 1) {
          const double unbiased = m.variance * rows / (rows - 1);
          running_mean(0, c) = static_cast<float>((1.0 - momentum) * running_mean(0, c) + momentum * m.mean);
          running_var(0, c) = static_cast<float>((1.0 - momentum) * running_var(0, c) + momentum * unbiased);
        }
      }
      for (std::int64_t r = 0; r < x.rows; ++r)
        y(r, c) = static_cast<float>((x(r, c) - m.mean) * m.inverse_std * scale(0, c) + shift(0, c));
    });
  }
  static void reference_backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], scale = a.in[2];
    const View scale_gradient = a.out[0], shift_gradient = a.out[1], dx = a.out[2];
    const float epsilon = a.settings[0];
    const BatchAcrossRanks* ranks = a.ranks;
    const std::int64_t cols = dy.cols;
    // The parameter gradients: this rank's sums of dy and dy * normalized.
    std::vector<ColumnMoments> moments(static_cast<std::size_t>(cols));
    std::vector<double> g_sums(static_cast<std::size_t>(cols)), g_centred_sums(static_cast<std::size_t>(cols));
    for_columns(dy, 12.0, [&](std::int64_t c) {
      const auto i = static_cast<std::size_t>(c);
      if (dy.rows == 0) {
        scale_gradient(0, c) = shift_gradient(0, c) = 0.0f;
        return;
      }
      moments[i] = ranks != nullptr ? total_moments(ranks->scratch, cols, c, epsilon) : column_moments(x, c, epsilon);
      for (std::int64_t r = 0; r < dy.rows; ++r) {
        g_sums[i] += dy(r, c);
        g_centred_sums[i] += static_cast<double>(dy(r, c)) * (x(r, c) - moments[i].mean) * moments[i].inverse_std;
      }
      scale_gradient(0, c) = static_cast<float>(g_centred_sums[i]);
      shift_gradient(0, c) = static_cast<float>(g_sums[i]);
    });
    // dx's two means: over this batch's rows, or of the sums over the ranks over this rank's rows.
    if (ranks != nullptr) {
      float* totals = gradient_totals(*ranks, cols);
      std::copy(shift_gradient.data, shift_gradient.data + cols, totals);
      std::copy(scale_gradient.data, scale_gradient.data + cols, totals + cols);
      ranks->sum(totals, 2 * cols, true);
      std::copy(totals, totals + cols, g_sums.begin());
      std::copy(totals + cols, totals + 2 * cols, g_centred_sums.begin());
    }
    if (dx.data == nullptr || dy.rows == 0) return;
    const auto rows = static_cast<double>(dy.rows);
    for_columns(dy, 8.0, [&](std::int64_t c) {
      const auto i = static_cast<std::size_t>(c);
      for (std::int64_t r = 0; r < dy.rows; ++r) {
        const double centred = (x(r, c) - moments[i].mean) * moments[i].inverse_std;
        dx(r, c) = static_cast<float>(scale(0, c) * moments[i].inverse_std *
                                      (dy(r, c) - g_sums[i] / rows - centred * g_centred_sums[i] / rows));
      }
    });
  }

  static void fast_forward(const OpArgs& a) {
    const ConstView x = a.in[0], scale = a.in[1], shift = a.in[2];
    const View y = a.out[0], running_mean = a.out[1], running_var = a.out[2];
    const float epsilon = a.settings[0], momentum = a.settings[1];
    const BatchAcrossRanks* ranks = a.ranks;
    if (ranks != nullptr) fast_sum_moments_over_ranks(x, *ranks);  // a rank without rows takes part too
    if (x.rows == 0 && ranks == nullptr) return;
    const float rows = ranks != nullptr ? ranks->scratch[x.cols] : static_cast<float>(x.rows);
    for_column_blocks(x, 16.0, [&](std::int64_t begin, std::int64_t end) {
      BlockMoments m;
      if (a.settings[2] != 0.0f) {
        m = ranks != nullptr ? block_total_moments(ranks->scratch, x.cols, begin, end, epsilon)
                             : block_moments(x, begin, end, epsilon);
        if (rows > 1.0f) {
          const float unbiased = rows / (rows - 1.0f);
          for (std::int64_t c = begin; c < end; ++c) {
            const auto j = static_cast<std::size_t>(c - begin);
            running_mean.data[c] = (1.0f - momentum) * running_mean.data[c] + momentum * m.mean[j];
            running_var.data[c] = (1.0f - momentum) * running_var.data[c] + momentum * (m.variance[j] * unbiased);
          }
        }
      } else {
        m.mean.assign(running_mean.data + begin, running_mean.data + end);
        for (std::int64_t c = begin; c < end; ++c)
          m.inverse_std.push_back(1.0f / std::sqrt(running_var.data[c] + epsilon));
      }
      const float* mean = m.mean.data();
      const float* inverse_std = m.inverse_std.data();
      for (std::int64_t r = 0; r < x.rows; ++r) {
        const float* in = x.data + r * x.cols + begin;
        float* out = y.data + r * x.cols + begin;
#pragma omp simd
        for (std::int64_t j = 0; j < end - begin; ++j)
          out[j] = (in[j] - mean[j]) * inverse_std[j] * scale.data[begin + j] + shift.data[begin + j];
      }
    });
  }
  static void fast_backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1], scale = a.in[2];
    const View scale_gradient = a.out[0], shift_gradient = a.out[1], dx = a.out[2];
    const float epsilon = a.settings[0];
    const BatchAcrossRanks* ranks = a.ranks;
    const std::int64_t cols = dy.cols;
    const auto moments_of = [&](std::int64_t begin, std::int64_t end) {
      return ranks != nullptr ? block_total_moments(ranks->scratch, cols, begin, end, epsilon)
                              : block_moments(x, begin, end, epsilon);
    };
    // dx's two means: of this batch's sums over its rows, or of the sums over the ranks (each rank's
    // gradients times its share of the rows) over this rank's rows.
    const auto input_gradient = [&](std::int64_t begin, std::int64_t end, const BlockMoments& m, const float* g_sum,
                                    const float* g_centred_sum) {
      const auto rows = static_cast<float>(dy.rows);
      const float* mean = m.mean.data();
      const float* inverse_std = m.inverse_std.data();
      for (std::int64_t r = 0; r < dy.rows; ++r) {
        const float* g = dy.data + r * cols + begin;
        const float* in = x.data + r * cols + begin;
        float* out = dx.data + r * cols + begin;
#pragma omp simd
        for (std::int64_t j = 0; j < end - begin; ++j) {
          const float centred = (in[j] - mean[j]) * inverse_std[j];
          out[j] =
              scale.data[begin + j] * inverse_std[j] * (g[j] - g_sum[j] / rows - centred * (g_centred_sum[j] / rows));
        }
      }
    };
    for_column_blocks(dy, 24.0, [&](std::int64_t begin, std::int64_t end) {
      float* g_sum = shift_gradient.data + begin;
      float* g_centred_sum = scale_gradient.data + begin;
      std::fill(g_sum, g_sum + (end - begin), 0.0f);
      std::fill(g_centred_sum, g_centred_sum + (end - begin), 0.0f);
      if (dy.rows == 0) return;
      const BlockMoments m = moments_of(begin, end);
      const float* mean = m.mean.data();
      const float* inverse_std = m.inverse_std.data();
      for (std::int64_t r = 0; r < dy.rows; ++r) {
        const float* g = dy.data + r * cols + begin;
        const float* in = x.data + r * cols + begin;
#pragma omp simd
        for (std::int64_t j = 0; j < end - begin; ++j) {
          g_sum[j] += g[j];
          g_centred_sum[j] += g[j] * ((in[j] - mean[j]) * inverse_std[j]);
        }
      }
      if (dx.data != nullptr && ranks == nullptr) input_gradient(begin, end, m, g_sum, g_centred_sum);
    });
    if (ranks == nullptr) return;
    float* totals = gradient_totals(*ranks, cols);
    std::copy(shift_gradient.data, shift_gradient.data + cols, totals);
    std::copy(scale_gradient.data, scale_gradient.data + cols, totals + cols);
    ranks->sum(totals, 2 * cols, true);
    if (dx.data == nullptr || dy.rows == 0) return;
    for_column_blocks(dy, 24.0, [&](std::int64_t begin, std::int64_t end) {
      input_gradient(begin, end, moments_of(begin, end), totals + begin, totals + cols + begin);
    });
  }

 private:
  static void check_ranks(const char* op, const BatchAcrossRanks* ranks) {
    if (ranks != nullptr && (ranks->scratch == nullptr || !ranks->sum))
      throw Error(fmt::format("{}: a batch across ranks needs scratch memory and a sum", op));
  }
  /// Where backward puts this rank's parameter gradients to sum them over the ranks.
  static float* gradient_totals(const BatchAcrossRanks& ranks, std::int64_t cols) {
    return ranks.scratch + 2 * cols + 1;
  }
  /// body(c) for each column of x, the columns split among threads as the bytes per element make worth it.
  template <typename Body>
  static void for_columns(ConstView x, double bytes_per_element, Body&& body) {
    for_column_blocks(x, bytes_per_element, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t c = begin; c < end; ++c) body(c);
    });
  }
  template <typename Body>
  static void for_column_blocks(ConstView x, double bytes_per_element, Body&& body) {
    const double seconds = threads::single_thread_seconds(0, bytes_per_element * static_cast<double>(x.size()));
    threads::for_ranges(x.cols, seconds, 16, body);
  }

  // The reference's figures, a column at a time in float64.
  struct ColumnMoments {
    double mean, inverse_std, variance;
  };
  /// Column c's sum of x - center, or of its square.
  static double column_sum(ConstView x, std::int64_t c, double center = 0.0, bool squared = false) {
    double sum = 0.0;
    for (std::int64_t r = 0; r < x.rows; ++r)
      sum += squared ? (x(r, c) - center) * (x(r, c) - center) : x(r, c) - center;
    return sum;
  }
  static ColumnMoments column_moments(ConstView x, std::int64_t c, float epsilon) {
    const double mean = column_sum(x, c) / static_cast<double>(x.rows);
    const double variance = column_sum(x, c, mean, true) / static_cast<double>(x.rows);
    return {mean, 1.0 / std::sqrt(variance + epsilon), variance};
  }
  /// Column c's figures from the totals over the ranks in the scratch.
  static ColumnMoments total_moments(const float* scratch, std::int64_t cols, std::int64_t c, float epsilon) {
    const double rows = scratch[cols];
    const double variance = scratch[cols + 1 + c] / rows;
    return {scratch[c] / rows, 1.0 / std::sqrt(variance + epsilon), variance};
  }
  /// The batch's statistics over the ranks into the scratch: the column sums and the rows, then the
  /// squared deviations from the mean, each summed over the ranks.
  static void sum_moments_over_ranks(ConstView x, const BatchAcrossRanks& ranks) {
    float* scratch = ranks.scratch;
    for (std::int64_t c = 0; c < x.cols; ++c) scratch[c] = static_cast<float>(column_sum(x, c));
    scratch[x.cols] = static_cast<float>(x.rows);
    ranks.sum(scratch, x.cols + 1, false);
    for (std::int64_t c = 0; c < x.cols; ++c)
      scratch[x.cols + 1 + c] =
          static_cast<float>(column_sum(x, c, scratch[c] / static_cast<double>(scratch[x.cols]), true));
    ranks.sum(scratch + x.cols + 1, x.cols, false);
  }

  // The fast path's figures, a block of columns at a time in float.
  struct BlockMoments {
    std::vector<float> mean, inverse_std, variance;
  };
  /// Columns [begin, end) of x summed into sums (end - begin floats, zeroed first), or, given their
  /// means, the squared deviations from them: in float in row order, rows outer so that x is read
  /// in order.
  static void block_sums(ConstView x, std::int64_t begin, std::int64_t end, float* sums, const float* means = nullptr) {
    const auto width = static_cast<std::size_t>(end - begin);
    std::fill(sums, sums + width, 0.0f);
    for (std::int64_t r = 0; r < x.rows; ++r) {
      const float* row = x.data + r * x.cols + begin;
      if (means == nullptr) {
#pragma omp simd
        for (std::size_t j = 0; j < width; ++j) sums[j] += row[j];
      } else {
#pragma omp simd
        for (std::size_t j = 0; j < width; ++j) sums[j] += (row[j] - means[j]) * (row[j] - means[j]);
      }
    }
  }
  static BlockMoments block_moments(ConstView x, std::int64_t begin, std::int64_t end, float epsilon) {
    const auto width = static_cast<std::size_t>(end - begin);
    BlockMoments m{std::vector<float>(width), std::vector<float>(width), std::vector<float>(width)};
    block_sums(x, begin, end, m.mean.data());
    const auto rows = static_cast<float>(x.rows);
    for (float& mean : m.mean) mean /= rows;
    block_sums(x, begin, end, m.variance.data(), m.mean.data());
    for (std::size_t j = 0; j < width; ++j) {
      m.variance[j] /= rows;
      m.inverse_std[j] = 1.0f / std::sqrt(m.variance[j] + epsilon);
    }
    return m;
  }
  static BlockMoments block_total_moments(const float* scratch, std::int64_t cols, std::int64_t begin, std::int64_t end,
                                          float epsilon) {
    BlockMoments m;
    const float rows = scratch[cols];
    for (std::int64_t c = begin; c < end; ++c) {
      const float variance = scratch[cols + 1 + c] / rows;
      m.mean.push_back(scratch[c] / rows);
      m.variance.push_back(variance);
      m.inverse_std.push_back(1.0f / std::sqrt(variance + epsilon));
    }
    return m;
  }
  static void fast_sum_moments_over_ranks(ConstView x, const BatchAcrossRanks& ranks) {
    float* scratch = ranks.scratch;
    for_column_blocks(x, 8.0,
                      [&](std::int64_t begin, std::int64_t end) { block_sums(x, begin, end, scratch + begin); });
    scratch[x.cols] = static_cast<float>(x.rows);
    ranks.sum(scratch, x.cols + 1, false);
    for_column_blocks(x, 8.0, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> mean(scratch + begin, scratch + end);
      for (float& value : mean) value /= scratch[x.cols];
      block_sums(x, begin, end, scratch + x.cols + 1 + begin, mean.data());
    });
    ranks.sum(scratch + x.cols + 1, x.cols, false);
  }
};

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
  static constexpr LayerOp kForward{"batch_norm_forward", BatchNormOps::check_forward, BatchNormOps::reference_forward,
                                    BatchNormOps::fast_forward};
  static constexpr LayerOp kBackward{"batch_norm_backward", BatchNormOps::check_backward,
                                     BatchNormOps::reference_backward, BatchNormOps::fast_backward};
  static ConstView forward(const BatchNorm& norm, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    const std::optional<BatchAcrossRanks> ranks = across_ranks(slots, pass);
    const ConstView in[] = {input, scale(slots), shift(slots)};
    const View out[] = {output, {slots.state, 1, slots.in}, {slots.state + slots.in, 1, slots.in}};
    const float settings[] = {norm.epsilon, norm.momentum, pass.training ? 1.0f : 0.0f};
    pass.backend.layer_op(kForward, {in, out, settings, {}, ranks ? &*ranks : nullptr});
    return output;
  }
  static bool backward(const BatchNorm& norm, const Slots& slots, const Pass& pass, ConstView input, ConstView, View dy,
                       bool, std::optional<ConstView>, std::optional<View> dx) {
    const std::optional<BatchAcrossRanks> ranks = across_ranks(slots, pass);
    const ConstView in[] = {dy, input, scale(slots)};
    const View out[] = {{slots.gradients, 1, slots.in},
                        {slots.gradients + slots.in, 1, slots.in},
                        dx.value_or(View{nullptr, pass.rows, slots.in})};
    pass.backend.layer_op(kBackward, {in, out, {&norm.epsilon, 1}, {}, ranks ? &*ranks : nullptr});
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
