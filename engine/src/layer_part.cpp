#include "layer_part.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <type_traits>
#include <variant>

#include "activation_math.hpp"
#include "ember/error.hpp"
#include "ember/random.hpp"
#include "parameter_layout.hpp"

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

template <>
struct Part<Dense> {
  static constexpr const char* name = "dense";
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

 private:
  static ConstView weight(const Slots& slots) { return {slots.parameters, slots.out, slots.in}; }
  static ConstView bias(const Slots& slots) { return {slots.parameters + slots.out * slots.in, 1, slots.out}; }
};

template <>
struct Part<Dropout> {
  static constexpr const char* name = "dropout";
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
};

template <>
struct Part<LayerNorm> {
  static constexpr const char* name = "layernorm";
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

 private:
  static ConstView scale(const Slots& slots) { return {slots.parameters, 1, slots.in}; }
  static ConstView shift(const Slots& slots) { return {slots.parameters + slots.in, 1, slots.in}; }
};

template <>
struct Part<BatchNorm> {
  static constexpr const char* name = "batchnorm";
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

 private:
  static ConstView table(const Embedding& embedding, const Slots& slots) {
    return {slots.parameters, embedding.input_dim, embedding.output_dim};
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

SettingsJson to_json(const Layer& layer) {
  return visit(layer, [](auto part, const auto& settings) { return decltype(part)::to_json(settings); });
}

Layer from_json(const SettingsJson& json) {
  const std::string type = json.value("type", std::string(Part<Dense>::name));
  std::optional<Layer> layer;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((type == Part<std::variant_alternative_t<I, Layer>>::name
          ? void(layer = Part<std::variant_alternative_t<I, Layer>>::from_json(json))
          : void()),
     ...);
  }
  (std::make_index_sequence<kLayerKinds>());
  if (!layer)
    throw InputError(fmt::format("unknown layer type '{}'; the types are {}", type, fmt::join(layer_names(), ", ")));
  check(*layer);
  return *layer;
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

std::string describe(const Layer& layer) {
  return layer_part::visit(layer, [](auto part, const auto& settings) { return decltype(part)::describe(settings); });
}

}  // namespace ember
