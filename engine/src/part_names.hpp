#pragma once
// The names of a variant's parts (losses, optimizers, schedules), each spelled once: by its type's
// kName. A part without one does not compile; the lists and lookups follow the variant's order.
#include <fmt/format.h>

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

}  // namespace ember::part_names
