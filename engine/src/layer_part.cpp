#include "layer_part.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "activation_math.hpp"
#include "cpu/thread_pool.hpp"
#include "ember/error.hpp"
#include "ember/random.hpp"
#include "parameter_layout.hpp"
#include "shape_checks.hpp"

namespace ember {
namespace layer_part {
namespace {

/// The layer's second buffer (rows, out) where the plan keeps one (Buffers::extra).
std::optional<View> extra(const Slots& slots, const Pass& pass) {
  if (slots.extra == nullptr) return std::nullopt;
  return View{slots.extra, pass.rows, slots.out};
}

/// One part per kind of layer: its name and the members the functions of layer_part.hpp call.
template <typename Settings>
struct Part;

/// text as a whole number 1 or more, or 0 when it is not one.
std::int64_t whole_number(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value > 0 ? value : 0;
}

/// The layer's tensor name as an ONNX constant "layers.{i}.NAME" of its checkpoint's shape.
template <typename Settings>
std::string onnx_tensor(const Settings& settings, OnnxGraph& g, const OnnxLayer& at, const std::string& name) {
  for (const ParameterShape& tensor : Part<Settings>::parameters(settings, at.in))
    if (tensor.name == name) {
      const ConstView values = at.tensor(name);
      return g.floats(fmt::format("layers.{}.{}", at.index, name), tensor.shape, values.data,
                      static_cast<std::size_t>(values.size()));
    }
  throw std::logic_error("onnx_tensor: no tensor " + name);
}

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
    // weight gradient (out, in) = dy^T @ input, bias gradient its column sums; dx (rows, in) =
    // dy @ weight, through the ReLU below when given.
    const bool fold = dx.has_value() && relu_below.has_value();
    pass.backend.dense_backward(dy, input, weight(slots), fold ? relu_below : std::nullopt,
                                View{slots.gradients, slots.out, slots.in},
                                View{slots.gradients + slots.out * slots.in, 1, slots.out}, dx);
    return fold;
  }
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

template <>
struct Part<Embedding> {
  static constexpr const char* name = "embedding";
  static constexpr const char* keras_name = "Embedding";
  // DIM alone: sized by the first fit on a table, for its embedded columns.
  static constexpr const char* spelling = "embedding:DIM or embedding:CATEGORIES:DIM[:COLUMNS]";
  static constexpr const char* meaning =
      "the first layer; DIM alone sets the vector size of the --embed columns' categories, CATEGORIES:DIM[:COLUMNS] "
      "reads the "
      "last COLUMNS inputs (all unless given) as category indices 0 to CATEGORIES - 1 and puts a learned vector of "
      "DIM values in place of each";
  static Embedding from_spelling(std::span<const std::string> items) {
    std::vector<std::int64_t> sizes;
    for (const std::string& item : items.subspan(1)) {
      sizes.push_back(whole_number(item));
      if (sizes.back() == 0) throw InputError(fmt::format("'{}' is not a positive whole number", item));
    }
    if (sizes.empty() || sizes.size() > 3)
      throw InputError("an Embedding takes DIM (for the embedded columns) or CATEGORIES:DIM[:COLUMNS]");
    return sizes.size() == 1 ? Embedding(Embedding::kFromTable, sizes[0])
                             : Embedding(sizes[0], sizes[1], sizes.size() == 3 ? sizes[2] : 0);
  }
  // Indices must be exact in float32: every whole number up to 2^24 is.
  static constexpr std::int64_t kMaxCategories = std::int64_t{1} << 24;
  static void check(const Embedding& embedding) {
    if (embedding.input_dim < 0 || embedding.input_dim > kMaxCategories)
      throw InputError(
          fmt::format("an Embedding layer's input_dim (categories) must be 1 to {} (or 0: sized by "
                      "the first fit on a table), got {}",
                      kMaxCategories, embedding.input_dim));
    if (embedding.output_dim < 1 || embedding.output_dim > ParameterLayout::kMaxWidth)
      throw InputError(fmt::format("an Embedding layer's output_dim must be 1 to {}, got {}",
                                   ParameterLayout::kMaxWidth, embedding.output_dim));
    if (embedding.columns < 0)
      throw InputError(fmt::format("an Embedding layer's columns must be 0 (every input column) or more, got {}",
                                   embedding.columns));
  }
  static std::int64_t index_columns(const Embedding& embedding, std::int64_t in) {
    if (embedding.input_dim == Embedding::kFromTable)
      throw InputError(
          fmt::format("{} is sized by the columns a fit on a table embeds (ColumnSpec::embed); fit it "
                      "on a table, or give its input_dim",
                      describe(embedding)));
    if (embedding.columns > in)
      throw InputError(
          fmt::format("{} reads {} index columns but its input has {}", describe(embedding), embedding.columns, in));
    return embedding.columns == 0 ? in : embedding.columns;
  }
  static std::int64_t output_width(const Embedding& embedding, std::int64_t in) {
    const std::int64_t columns = index_columns(embedding, in);
    const std::int64_t passed = in - columns;
    if (embedding.output_dim > (ParameterLayout::kMaxWidth - passed) / columns)
      throw InputError(fmt::format("{} on {} input columns gives more than {} outputs; use a smaller output_dim",
                                   describe(embedding), in, ParameterLayout::kMaxWidth));
    return passed + columns * embedding.output_dim;
  }
  // As torch.nn.Embedding's state_dict: weight (input_dim, output_dim).
  static std::vector<ParameterShape> parameters(const Embedding& embedding, std::int64_t) {
    return {{"weight", {embedding.input_dim, embedding.output_dim}}};
  }
  static void initialize(const Embedding& embedding, std::int64_t, std::uint64_t seed, std::vector<float>& parameters) {
    Random random(seed);
    for (std::int64_t i = 0; i < embedding.input_dim * embedding.output_dim; ++i)
      parameters.push_back(static_cast<float>(random.normal()));
  }
  static Embedding sized_for_table(const Embedding& embedding, std::int64_t columns, std::int64_t categories) {
    if (embedding.input_dim != Embedding::kFromTable) {
      if (columns > 0 && (embedding.columns != columns || embedding.input_dim < categories))
        throw InputError(
            fmt::format("the table's {} embedded columns need an Embedding of {} index columns and {} "
                        "categories or more, not {}; use Embedding(0, {}), sized by fit",
                        columns, columns, categories, describe(embedding), embedding.output_dim));
      return embedding;
    }
    if (columns == 0)
      throw InputError(
          fmt::format("{} is sized by the columns ColumnSpec::embed names, and it names none; name the "
                      "categorical columns to embed",
                      describe(embedding)));
    return Embedding(categories, embedding.output_dim, columns);
  }
  static Indices indices(const Embedding& embedding, std::int64_t in) {
    return {index_columns(embedding, in), embedding.input_dim};
  }
  static Buffers buffers(const Embedding&, bool) { return {true, false}; }
  static ConstView forward(const Embedding& embedding, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    pass.backend.embedding_forward(input, table(embedding, slots), index_columns(embedding, slots.in), output);
    return output;
  }
  static bool backward(const Embedding& embedding, const Slots& slots, const Pass& pass, ConstView input, ConstView,
                       View dy, bool, std::optional<ConstView>, std::optional<View> dx) {
    pass.backend.embedding_backward(dy, input, index_columns(embedding, slots.in),
                                    View{slots.gradients, embedding.input_dim, embedding.output_dim}, dx);
    return false;
  }
  static bool folds_relu(const Embedding&) { return false; }
  static SettingsJson to_json(const Embedding& embedding) {
    return {{"type", name},
            {"input_dim", embedding.input_dim},
            {"output_dim", embedding.output_dim},
            {"columns", embedding.columns}};
  }
  static Embedding from_json(const SettingsJson& json) {
    return Embedding(json.at("input_dim").get<std::int64_t>(), json.at("output_dim").get<std::int64_t>(),
                     json.at("columns").get<std::int64_t>());
  }
  static std::string describe(const Embedding& embedding) {
    return embedding.columns == 0 ? fmt::format("Embedding({}, {})", embedding.input_dim, embedding.output_dim)
                                  : fmt::format("Embedding({}, {}, columns={})", embedding.input_dim,
                                                embedding.output_dim, embedding.columns);
  }
  // The index columns as int64, Gather's rows of the table, flattened to (rows, columns * dim) after
  // the values that pass through. An index out of range is an error in ONNX Runtime where Ember
  // gives NaNs.
  static std::string onnx(const Embedding& embedding, OnnxGraph& g, const OnnxLayer& at) {
    const std::int64_t columns = index_columns(embedding, at.in), passed = at.in - columns;
    const auto slice = [&](std::int64_t begin, std::int64_t end) {
      return g.node("Slice",
                    {at.x, g.int64s("begin", {1}, {begin}), g.int64s("end", {1}, {end}), g.int64s("axis", {1}, {1})});
    };
    const std::string indices = g.to_int64(passed == 0 ? at.x : slice(passed, at.in));
    const std::string vectors = g.node("Gather", {onnx_tensor(embedding, g, at, "weight"), indices});
    g.attribute("axis", std::int64_t{0});
    const std::string flat = g.node("Reshape", {vectors, g.int64s("shape", {2}, {0, columns * embedding.output_dim})});
    return passed == 0 ? flat : g.columns({slice(0, passed), flat});
  }

 private:
  static ConstView table(const Embedding& embedding, const Slots& slots) {
    return {slots.parameters, embedding.input_dim, embedding.output_dim};
  }
};

/// RMSNorm's two ops, their loops written once for float64 (the reference) and float32 (the fast
/// CPU path); kernels/layers/rms_norm.cu is the GPU's. Rows are split among threads; the weight
/// gradient's columns too, each summed in row order.
struct RmsNormOps {
  // forward: in x, weight; out y, normalized (training; else null); settings epsilon.
  // backward: in dy, x, normalized, weight; out weight_gradient, dx (or null, which may alias dy).
  static void check_forward(const OpArgs& a) {
    check_counts(a, "rms_norm_forward", 2, 2);
    check_layer_norm("rms_norm_forward", a.in[0], {a.out[0], given_or(a.out[1], a.in[0])}, {a.in[1]}, a.settings[0]);
  }
  static void check_backward(const OpArgs& a) {
    check_counts(a, "rms_norm_backward", 4, 2);
    check_layer_norm("rms_norm_backward", a.in[0], {a.in[1], a.in[2], given_or(a.out[1], a.in[0])}, {a.in[3], a.out[0]},
                     a.settings[0]);
  }
  template <typename Real>
  static void forward(const OpArgs& a) {
    const ConstView x = a.in[0], weight = a.in[1];
    const View y = a.out[0], normalized = a.out[1];
    const Real epsilon = a.settings[0];
    rows(x, 4.0, [&](std::int64_t r) {
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
    const double seconds = threads::single_thread_seconds(0, 8.0 * static_cast<double>(dy.size()));
    threads::for_ranges(dy.cols, seconds, 64, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t c = begin; c < end; ++c) {
        Real sum = 0;
        for (std::int64_t r = 0; r < dy.rows; ++r) sum += static_cast<Real>(dy(r, c)) * normalized(r, c);
        weight_gradient(0, c) = static_cast<float>(sum);
      }
    });
    if (dx.data == nullptr) return;
    rows(dy, 8.0, [&](std::int64_t r) {
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
  static void check_counts(const OpArgs& a, const char* op, std::size_t in, std::size_t out) {
    if (a.in.size() != in || a.out.size() != out || a.settings.size() != 1)
      throw Error(fmt::format("{}: takes {} inputs, {} outputs and epsilon", op, in, out));
  }
  static ConstView given_or(View view, ConstView fallback) { return view.data != nullptr ? ConstView(view) : fallback; }
  template <typename Real>
  static Real inverse_rms(const float* row, std::int64_t cols, Real epsilon) {
    Real squares = 0;
    for (std::int64_t c = 0; c < cols; ++c) squares += static_cast<Real>(row[c]) * row[c];
    return 1 / std::sqrt(squares / static_cast<Real>(cols) + epsilon);
  }
  template <typename Body>
  static void rows(ConstView x, double flops_per_element, Body&& body) {
    const double seconds = threads::single_thread_seconds(flops_per_element * static_cast<double>(x.size()),
                                                          8.0 * static_cast<double>(x.size()));
    threads::for_ranges(x.rows, seconds, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) body(r);
    });
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

template <typename Function>
decltype(auto) visit(const Layer& layer, Function&& function) {
  return std::visit(
      [&](const auto& settings) -> decltype(auto) {
        return function(Part<std::decay_t<decltype(settings)>>{}, settings);
      },
      layer);
}

/// Part<K>::name for each kind K of Layer, in its order.
template <std::size_t... I>
std::vector<std::string> names(std::index_sequence<I...>) {
  return {Part<std::variant_alternative_t<I, Layer>>::name...};
}

}  // namespace

std::uint64_t layer_seed(std::uint64_t model_seed, std::size_t l) {
  return derive_seed(model_seed, 0xd0000000u + l);  // streams apart from the initializers' (derive_seed(seed, l))
}

void check(const Layer& layer) {
  visit(layer, [](auto part, const auto& settings) { decltype(part)::check(settings); });
}

std::int64_t output_width(const Layer& layer, std::int64_t in) {
  return visit(layer, [&](auto part, const auto& settings) { return decltype(part)::output_width(settings, in); });
}

std::vector<ParameterShape> parameters(const Layer& layer, std::int64_t in) {
  return visit(layer, [&](auto part, const auto& settings) { return decltype(part)::parameters(settings, in); });
}

void initialize(const Layer& layer, std::int64_t in, std::uint64_t seed, std::vector<float>& parameters) {
  visit(layer, [&](auto part, const auto& settings) { decltype(part)::initialize(settings, in, seed, parameters); });
}

Buffers buffers(const Layer& layer, bool training) {
  return visit(layer, [&](auto part, const auto& settings) { return decltype(part)::buffers(settings, training); });
}

std::int64_t batch_scratch(const Layer& layer, std::int64_t in) {
  return visit(layer, [&](auto part, const auto& settings) -> std::int64_t {
    if constexpr (requires { decltype(part)::batch_scratch(settings, in); })
      return decltype(part)::batch_scratch(settings, in);
    else
      return 0;  // rows apart
  });
}

ConstView forward(const Layer& layer, const Slots& slots, const Pass& pass, ConstView input) {
  return visit(layer,
               [&](auto part, const auto& settings) { return decltype(part)::forward(settings, slots, pass, input); });
}

bool backward(const Layer& layer, const Slots& slots, const Pass& pass, ConstView input, ConstView output, View dy,
              bool folded, std::optional<ConstView> relu_below, std::optional<View> dx) {
  return visit(layer, [&](auto part, const auto& settings) {
    return decltype(part)::backward(settings, slots, pass, input, output, dy, folded, relu_below, dx);
  });
}

void check_values(const Layer& layer, const std::string& name, std::span<const float> values) {
  visit(layer, [&](auto part, const auto& settings) {
    if constexpr (requires { decltype(part)::check_values(settings, name, values); })
      decltype(part)::check_values(settings, name, values);
  });
}

Indices indices(const Layer& layer, std::int64_t in) {
  return visit(layer, [&](auto part, const auto& settings) {
    if constexpr (requires { decltype(part)::indices(settings, in); })
      return decltype(part)::indices(settings, in);
    else
      return Indices{};  // a layer of numbers
  });
}

Layer sized_for_table(const Layer& layer, std::int64_t columns, std::int64_t categories) {
  return visit(layer, [&](auto part, const auto& settings) -> Layer {
    if constexpr (requires { decltype(part)::sized_for_table(settings, columns, categories); }) {
      return decltype(part)::sized_for_table(settings, columns, categories);
    } else {
      if (columns > 0)
        throw InputError(
            fmt::format("the table's {} embedded column{} (ColumnSpec::embed) need{} a first layer that "
                        "embeds {}, Embedding(0, DIM), not {}",
                        columns, columns == 1 ? "" : "s", columns == 1 ? "s" : "", columns == 1 ? "it" : "them",
                        decltype(part)::describe(settings)));
      return settings;
    }
  });
}

bool folds_relu(const Layer& layer) {
  return visit(layer, [](auto part, const auto& settings) { return decltype(part)::folds_relu(settings); });
}

std::string onnx(const Layer& layer, OnnxGraph& graph, const OnnxLayer& at) {
  return visit(layer, [&](auto part, const auto& settings) { return decltype(part)::onnx(settings, graph, at); });
}

SettingsJson to_json(const Layer& layer) {
  return visit(layer, [](auto part, const auto& settings) { return decltype(part)::to_json(settings); });
}

/// The number of the kind named name in Layer's order, or kLayerKinds.
std::size_t kind_named(const std::string& name) {
  const std::vector<std::string> names = layer_names();
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

/// function(std::type_identity<K>{}) for K, Layer's kind number kind (below kLayerKinds).
template <typename Function>
Layer with_kind(std::size_t kind, Function&& function) {
  std::optional<Layer> layer;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((kind == I ? void(layer = function(std::type_identity<std::variant_alternative_t<I, Layer>>{})) : void()), ...);
  }
  (std::make_index_sequence<kLayerKinds>());
  return *layer;
}

Layer from_json(const SettingsJson& json) {
  const std::string type = json.value("type", std::string(Part<Dense>::name));
  const std::size_t kind = kind_named(type);
  if (kind == kLayerKinds)
    throw InputError(fmt::format("unknown layer type '{}'; the types are {}", type, fmt::join(layer_names(), ", ")));
  const Layer layer =
      with_kind(kind, [&](auto k) -> Layer { return Part<typename decltype(k)::type>::from_json(json); });
  check(layer);
  return layer;
}

/// The kind's defaults with the settings in json (numbers, by name) in their place.
template <typename Settings>
Layer with_settings(const SettingsJson& settings) {
  SettingsJson json = Part<Settings>::to_json(Settings{});
  if (settings.is_object()) json.update(settings);
  return Part<Settings>::from_json(json);
}

template <typename Settings>
LayerKind kind_of() {
  using P = Part<Settings>;
  LayerKind kind{P::name, P::spelling, P::meaning, P::keras_name, {}};
  if constexpr (requires { P::settings; }) kind.settings.assign(std::begin(P::settings), std::end(P::settings));
  return kind;
}

/// The part's spelling read: its own from_spelling, or its settings (numbers, in order) over the
/// defaults.
template <typename Settings>
Layer from_spelling(std::span<const std::string> items) {
  using P = Part<Settings>;
  if constexpr (requires { P::from_spelling(items); }) {
    return P::from_spelling(items);
  } else {
    static_assert(
        requires { P::settings; }, "a part is spelled by its settings or its own from_spelling");
    if (items.size() - 1 > std::size(P::settings))
      throw InputError(fmt::format("{} takes {} setting{} at most", P::name, std::size(P::settings),
                                   std::size(P::settings) == 1 ? "" : "s"));
    SettingsJson json;
    for (std::size_t i = 1; i < items.size(); ++i) {
      double value = 0.0;
      const std::string& item = items[i];
      const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
      if (error != std::errc() || end != item.data() + item.size() || std::isnan(value))
        throw InputError(fmt::format("its {} '{}' is not a number", P::settings[i - 1], item));
      json[P::settings[i - 1]] = value;
    }
    return with_settings<Settings>(json);
  }
}

}  // namespace layer_part

std::string layer_name(const Layer& layer) {
  return layer_part::visit(layer, [](auto part, const auto&) { return std::string(decltype(part)::name); });
}

std::vector<std::string> layer_names() {
  return layer_part::names(std::make_index_sequence<kLayerKinds>());
}

void check_layer(const Layer& layer) {
  layer_part::check(layer);
}

std::string settings_json(const Layer& layer) {
  return layer_part::to_json(layer).dump();
}

namespace {
std::vector<std::string> forms() {
  std::vector<std::string> forms;
  for (const LayerKind& kind : layer_kinds()) forms.push_back(kind.form);
  return forms;
}
}  // namespace

Layer parse_layer(const std::string& text) {
  std::vector<std::string> items;
  for (std::size_t begin = 0;;) {
    const std::size_t colon = text.find(':', begin);
    items.push_back(text.substr(begin, colon - begin));
    if (colon == std::string::npos) break;
    begin = colon + 1;
  }
  // A head that is a number is a Dense layer's width; otherwise the kind's name.
  const bool width = !items[0].empty() && std::isdigit(static_cast<unsigned char>(items[0][0])) != 0;
  const std::size_t kind = width ? Layer(Dense(1)).index() : layer_part::kind_named(items[0]);
  if (kind == kLayerKinds)
    throw InputError(
        fmt::format("'{}' is not a layer width or a kind of layer; the forms are {}", text, fmt::join(forms(), ", ")));
  try {
    const Layer layer = layer_part::with_kind(
        kind, [&](auto k) { return layer_part::from_spelling<typename decltype(k)::type>(items); });
    check_layer(layer);
    return layer;
  } catch (const InputError& error) {
    throw InputError(fmt::format("'{}': {}; the form is {}", text, error.what(), forms()[kind]));
  }
}

std::vector<LayerKind> layer_kinds() {
  std::vector<LayerKind> kinds;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (kinds.push_back(layer_part::kind_of<std::variant_alternative_t<I, Layer>>()), ...);
  }
  (std::make_index_sequence<kLayerKinds>());
  return kinds;
}

Layer make_layer(const std::string& name, const std::vector<std::pair<std::string, double>>& settings) {
  const std::size_t kind = layer_part::kind_named(name);
  const LayerKind described = kind < kLayerKinds ? layer_kinds()[kind] : LayerKind{};
  if (described.settings.empty())
    throw InputError(fmt::format("make_layer: '{}' is not a kind of layer made from its settings alone", name));
  SettingsJson json = SettingsJson::object();
  for (const auto& [setting, value] : settings) {
    if (std::find(described.settings.begin(), described.settings.end(), setting) == described.settings.end())
      throw InputError(fmt::format("{} has no setting '{}'; its settings are {}", described.keras_name, setting,
                                   fmt::join(described.settings, ", ")));
    json[setting] = value;
  }
  const Layer layer = layer_part::with_kind(kind, [&](auto k) -> Layer {
    using Settings = typename decltype(k)::type;
    if constexpr (requires { layer_part::Part<Settings>::settings; })
      return layer_part::with_settings<Settings>(json);
    else
      throw std::logic_error("make_layer: a kind without settings");  // refused above
  });
  check_layer(layer);
  return layer;
}

double layer_setting(const Layer& layer, const std::string& name) {
  const SettingsJson json = layer_part::to_json(layer);
  if (name == "type" || !json.contains(name) || !json[name].is_number())
    throw InputError(fmt::format("{} has no setting '{}'", describe(layer), name));
  return json[name].get<double>();
}

Layer layer_from_settings_json(const std::string& text) {
  SettingsJson json;
  try {
    json = SettingsJson::parse(text);
    return layer_part::from_json(json);
  } catch (const SettingsJson::exception& error) {
    throw InputError(fmt::format("a layer's settings {}: {}", text, error.what()));
  }
}

std::string describe(const Layer& layer) {
  return layer_part::visit(layer, [](auto part, const auto& settings) { return decltype(part)::describe(settings); });
}

}  // namespace ember
