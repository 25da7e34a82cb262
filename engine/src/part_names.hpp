#pragma once
// The names of a variant's parts (losses, optimizers, schedules), each spelled once: by its type's
// kName. A part without one does not compile; the lists and lookups follow the variant's order.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ember/error.hpp"

namespace ember::part_names {

/// The name of the part a variant holds.
template <typename Variant>
std::string name_of(const Variant& part) {
  return std::visit([](const auto& p) { return std::string(std::decay_t<decltype(p)>::kName); }, part);
}

/// Every part's name, in the variant's order.
template <typename Variant>
std::vector<std::string> names() {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::vector<std::string>{std::string(std::variant_alternative_t<I, Variant>::kName)...};
  }
  (std::make_index_sequence<std::variant_size_v<Variant>>{});
}

/// The part a name spells, with its default settings; InputError listing the names otherwise
/// (what: "loss", "optimizer", ...).
template <typename Variant>
Variant named(const std::string& name, const char* what) {
  Variant found{};
  bool known = false;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((!known && name == std::variant_alternative_t<I, Variant>::kName
          ? (found = std::variant_alternative_t<I, Variant>{}, known = true)
          : false),
     ...);
  }
  (std::make_index_sequence<std::variant_size_v<Variant>>{});
  if (!known) throw InputError(fmt::format("unknown {} '{}': use {}", what, name, fmt::join(names<Variant>(), ", ")));
  return found;
}

/// The entry of a part's settings list (entries with a `name`) that name spells; InputError ("SGD
/// has no setting 'x'; its settings are lr, ...") otherwise.
template <typename List>
const auto& setting_named(const List& list, const std::string& name, const std::string& class_name) {
  for (const auto& setting : list)
    if (name == setting.name) return setting;
  std::vector<std::string> names;
  for (const auto& setting : list) names.emplace_back(setting.name);
  throw InputError(fmt::format(
      "{} has no setting '{}'; {}", class_name, name,
      names.empty() ? std::string("it has none") : fmt::format("its settings are {}", fmt::join(names, ", "))));
}

/// A command-line spelling's items, split at its colons: "huber:0.5" is {"huber", "0.5"}
/// (parse_layer's and parse_loss's NAME[:SETTING...]).
inline std::vector<std::string> spelling_items(const std::string& text) {
  std::vector<std::string> items;
  for (std::size_t begin = 0;;) {
    const std::size_t colon = text.find(':', begin);
    items.push_back(text.substr(begin, colon - begin));
    if (colon == std::string::npos) return items;
    begin = colon + 1;
  }
}

/// A spelling's item as the number of the setting it gives; InputError ("its delta 'x' is not a
/// number") otherwise.
inline double spelled_number(const std::string& item, const std::string& setting) {
  double value = 0.0;
  const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
  if (error != std::errc() || end != item.data() + item.size() || std::isnan(value))
    throw InputError(fmt::format("its {} '{}' is not a number", setting, item));
  return value;
}

}  // namespace ember::part_names
