#include "ember/optimizers.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>

#include "ember/backend.hpp"
#include "ember/error.hpp"
#include "optimizer_math.hpp"
#include "optimizer_part.hpp"
#include "part_names.hpp"
#include "settings_json.hpp"

namespace ember {
namespace {

/// A setting's range: > 0, >= 0, or [0, 1); every number must be finite too.
enum class Range { positive, non_negative, below_one };

/// An optimizer's setting: its name (the checkpoint's key, the Python keyword), and where it is: a
/// number with its range, or a switch.
template <typename O>
struct Setting {
  const char* name;
  float O::*number = nullptr;
  Range range = Range::non_negative;
  bool O::*flag = nullptr;
};

/// Each optimizer's class name and settings, in its struct's order (Python's positional order),
/// and a check across settings where one needs another.
template <typename O>
struct Settings;

template <>
struct Settings<SGD> {
  static constexpr const char* class_name = "SGD";
  static constexpr std::array<Setting<SGD>, 4> list{{{"lr", &SGD::lr, Range::positive},
                                                     {"momentum", &SGD::momentum},
                                                     {"nesterov", nullptr, Range::non_negative, &SGD::nesterov},
                                                     {"weight_decay", &SGD::weight_decay}}};
  static void check(const SGD& sgd) {
    if (sgd.nesterov && sgd.momentum == 0.0f) throw SettingError("SGD::nesterov", "needs a momentum > 0");
  }
};

// Adam and AdamW share their settings (their defaults differ in weight_decay).
template <typename AdamLike>
struct AdamSettings {
  static constexpr std::array<Setting<AdamLike>, 5> list{{{"lr", &AdamLike::lr, Range::positive},
                                                          {"beta1", &AdamLike::beta1, Range::below_one},
                                                          {"beta2", &AdamLike::beta2, Range::below_one},
                                                          {"eps", &AdamLike::eps, Range::positive},
                                                          {"weight_decay", &AdamLike::weight_decay}}};
  static void check(const AdamLike&) {}
};
template <>
struct Settings<Adam> : AdamSettings<Adam> {
  static constexpr const char* class_name = "Adam";
};
template <>
struct Settings<AdamW> : AdamSettings<AdamW> {
  static constexpr const char* class_name = "AdamW";
};

template <>
struct Settings<RMSprop> {
  static constexpr const char* class_name = "RMSprop";
  static constexpr std::array<Setting<RMSprop>, 5> list{{{"lr", &RMSprop::lr, Range::positive},
                                                         {"alpha", &RMSprop::alpha, Range::below_one},
                                                         {"eps", &RMSprop::eps, Range::positive},
                                                         {"weight_decay", &RMSprop::weight_decay},
                                                         {"momentum", &RMSprop::momentum}}};
  static void check(const RMSprop&) {}
};

template <>
struct Settings<Adagrad> {
  static constexpr const char* class_name = "Adagrad";
  static constexpr std::array<Setting<Adagrad>, 3> list{{{"lr", &Adagrad::lr, Range::positive},
                                                         {"weight_decay", &Adagrad::weight_decay},
                                                         {"eps", &Adagrad::eps, Range::positive}}};
  static void check(const Adagrad&) {}
};

/// f(Settings<Kind>{}, optimizer's settings) for the kind it holds; a kind without its Settings does
/// not compile.
template <typename Variant, typename F>
decltype(auto) visit(Variant&& optimizer, F&& f) {
  return std::visit(
      [&](auto& settings) -> decltype(auto) { return f(Settings<std::decay_t<decltype(settings)>>{}, settings); },
      optimizer);
}

void require(bool ok, const char* type, const char* field, float value, const char* range) {
  if (!ok || !std::isfinite(value))
    throw SettingError(fmt::format("{}::{}", type, field), fmt::format("{}: must be {}", value, range));
}

}  // namespace

std::string settings_json(const Optimizer& optimizer) {
  return to_json(optimizer).dump();
}

std::string optimizer_name(const Optimizer& optimizer) {
  return part_names::name_of(optimizer);
}

std::vector<std::string> optimizer_names() {
  return part_names::names<Optimizer>();
}

Optimizer optimizer_named(const std::string& name) {
  return part_names::named<Optimizer>(name, "optimizer");
}

void check_optimizer(const Optimizer& optimizer) {
  visit(optimizer, [](auto kind, const auto& settings) {
    for (const auto& setting : decltype(kind)::list) {
      if (setting.number == nullptr) continue;
      const float value = settings.*setting.number;
      switch (setting.range) {
        case Range::positive:
          require(value > 0.0f, decltype(kind)::class_name, setting.name, value, "a finite number > 0");
          break;
        case Range::non_negative:
          require(value >= 0.0f, decltype(kind)::class_name, setting.name, value, "a finite number >= 0");
          break;
        case Range::below_one:
          require(value >= 0.0f && value < 1.0f, decltype(kind)::class_name, setting.name, value, "in [0, 1)");
          break;
      }
    }
    decltype(kind)::check(settings);
  });
}

std::vector<OptimizerKind> optimizer_kinds() {
  std::vector<OptimizerKind> kinds;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          using O = std::variant_alternative_t<I, Optimizer>;
          OptimizerKind kind{O::kName, Settings<O>::class_name, {}, {}};
          for (const auto& setting : Settings<O>::list) {
            kind.settings.emplace_back(setting.name);
            if (setting.flag != nullptr) kind.switches.emplace_back(setting.name);
          }
          kinds.push_back(std::move(kind));
        }(),
        ...);
  }
  (std::make_index_sequence<std::variant_size_v<Optimizer>>());
  return kinds;
}

Optimizer make_optimizer(const std::string& name, const std::vector<std::pair<std::string, double>>& settings) {
  Optimizer optimizer = optimizer_named(name);
  visit(optimizer, [&](auto kind, auto& values) {
    for (const auto& [setting, value] : settings) {
      const auto& found = part_names::setting_named(decltype(kind)::list, setting, decltype(kind)::class_name);
      if (found.flag != nullptr)
        values.*(found.flag) = value != 0.0;
      else
        values.*(found.number) = setting_float(value, fmt::format("{}::{}", decltype(kind)::class_name, setting));
    }
  });
  check_optimizer(optimizer);
  return optimizer;
}

double optimizer_setting(const Optimizer& optimizer, const std::string& name) {
  return visit(optimizer, [&](auto kind, const auto& values) -> double {
    const auto& setting = part_names::setting_named(decltype(kind)::list, name, decltype(kind)::class_name);
    return setting.flag != nullptr ? (values.*setting.flag ? 1.0 : 0.0) : values.*setting.number;
  });
}

std::string describe(const Optimizer& optimizer) {
  return visit(optimizer, [](auto kind, const auto& values) {
    std::vector<std::string> items;
    for (const auto& setting : decltype(kind)::list)
      items.push_back(setting.flag != nullptr
                          ? fmt::format("{}={}", setting.name, values.*setting.flag ? "True" : "False")
                          : fmt::format("{}={}", setting.name, values.*setting.number));
    return fmt::format("{}({})", decltype(kind)::class_name, fmt::join(items, ", "));
  });
}

float learning_rate(const Optimizer& optimizer) {
  return std::visit([](const auto& settings) { return settings.lr; }, optimizer);
}

std::vector<std::string> optimizer_state_names(const Optimizer& optimizer) {
  return optimizer_parts::visit(optimizer, [](auto part, const auto& settings) {
    using Part = decltype(part);
    return std::vector<std::string>(Part::state_names, Part::state_names + Part::states(settings));
  });
}

SettingsJson to_json(const Optimizer& optimizer) {
  SettingsJson json = {{"type", optimizer_name(optimizer)}};
  visit(optimizer, [&](auto kind, const auto& values) {
    for (const auto& setting : decltype(kind)::list) {
      if (setting.flag != nullptr)
        json[setting.name] = values.*setting.flag;
      else
        json[setting.name] = values.*setting.number;
    }
  });
  return json;
}

Optimizer optimizer_from_json(const SettingsJson& json) {
  Optimizer optimizer = optimizer_named(json.value("type", std::string(SGD::kName)));
  visit(optimizer, [&](auto kind, auto& values) {
    for (const auto& setting : decltype(kind)::list) {
      if (setting.flag != nullptr)
        values.*setting.flag = json.at(setting.name).template get<bool>();
      else
        values.*setting.number = settings_float(json, setting.name);
    }
  });
  return optimizer;
}

namespace optimizer_part {

void enqueue_update(Backend& backend, const Optimizer& optimizer, float* parameters, const float* gradients,
                    float* state, std::int64_t region, std::int64_t count, OptimizerScalars* scalars) {
  // The step count first (Adam's bias correction), on the backend.
  if (counts_steps(optimizer)) backend.advance_cursor(&scalars->step, 1);
  backend.optimizer_update(optimizer, parameters, gradients, state, region, count, scalars);
}

bool counts_steps(const Optimizer& optimizer) {
  return optimizer_parts::visit(optimizer, [](auto part, const auto&) { return decltype(part)::counts_steps; });
}

}  // namespace optimizer_part

}  // namespace ember
