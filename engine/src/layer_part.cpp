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
#include "layer_parts.hpp"  // generated: every part of layers/
#include "parameter_layout.hpp"
#include "part_names.hpp"
#include "shape_checks.hpp"

namespace ember {
namespace layer_part {
namespace {

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

bool takes_row_weights(const Layer& layer) {
  return visit(layer, [](auto part, const auto&) {
    if constexpr (requires { decltype(part)::row_weights; })
      return decltype(part)::row_weights;
    else
      return false;
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
      json[P::settings[i - 1]] = part_names::spelled_number(items[i], P::settings[i - 1]);
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
  const std::vector<std::string> items = part_names::spelling_items(text);
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
