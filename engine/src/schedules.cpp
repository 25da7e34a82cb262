#include "ember/schedules.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ember/error.hpp"
#include "part_names.hpp"
#include "settings_json.hpp"

namespace ember {
namespace {

/// Where a setting's values lie: between low and high, each end open or closed (an infinite end is
/// no bound); every value must be finite too.
struct Bounds {
  double low = -std::numeric_limits<double>::infinity();
  bool low_open = false;
  double high = std::numeric_limits<double>::infinity();
  bool high_open = false;
};
constexpr Bounds at_least(double low) {
  return {.low = low};
}
constexpr Bounds between(double low, bool low_open, double high, bool high_open) {
  return {.low = low, .low_open = low_open, .high = high, .high_open = high_open};
}

/// A schedule's setting: its name (the checkpoint's key, the Python keyword), where it is (a whole
/// count, a float32 or a float64 number) and its bounds.
template <typename S>
struct Setting {
  const char* name;
  std::variant<std::int64_t S::*, float S::*, double S::*> member;
  Bounds bounds;
};

/// Each schedule's class name, what it does, its settings in its struct's order (Python's
/// positional order), and a check across settings where one bounds another.
template <typename S>
struct Settings;

template <>
struct Settings<ConstantRate> {
  static constexpr const char* class_name = "ConstantRate";
  static constexpr const char* meaning = "the optimizer's rate in every epoch (the default schedule)";
  static constexpr std::array<Setting<ConstantRate>, 0> list{};
  static void check(const ConstantRate&) {}
};

template <>
struct Settings<StepDecay> {
  static constexpr const char* class_name = "StepDecay";
  static constexpr const char* meaning = "torch's StepLR: the rate times gamma every step_epochs epochs";
  static constexpr std::array<Setting<StepDecay>, 2> list{{{"step_epochs", &StepDecay::step_epochs, at_least(1)},
                                                           {"gamma", &StepDecay::gamma, between(0, true, 1, false)}}};
  static void check(const StepDecay&) {}
};

template <>
struct Settings<CosineDecay> {
  static constexpr const char* class_name = "CosineDecay";
  static constexpr const char* meaning =
      "a linear warm-up over warmup_epochs, then torch's CosineAnnealingLR down to min_scale times the rate at "
      "epoch `epochs`";
  static constexpr std::array<Setting<CosineDecay>, 3> list{
      {{"epochs", &CosineDecay::epochs, at_least(1)},
       {"warmup_epochs", &CosineDecay::warmup_epochs, at_least(0)},
       {"min_scale", &CosineDecay::min_scale, between(0, false, 1, false)}}};
  static void check(const CosineDecay& cosine) {
    if (cosine.warmup_epochs >= cosine.epochs)
      throw SettingError("CosineDecay::warmup_epochs", fmt::format("{}: must be below CosineDecay::epochs ({})",
                                                                   cosine.warmup_epochs, cosine.epochs));
  }
};

template <>
struct Settings<ReduceOnPlateau> {
  static constexpr const char* class_name = "ReduceOnPlateau";
  static constexpr const char* meaning = "torch's ReduceLROnPlateau on the validation loss (else the training loss)";
  static constexpr std::array<Setting<ReduceOnPlateau>, 4> list{
      {{"factor", &ReduceOnPlateau::factor, between(0, true, 1, true)},
       {"patience", &ReduceOnPlateau::patience, at_least(0)},
       {"threshold", &ReduceOnPlateau::threshold, between(0, false, 1, true)},
       {"min_scale", &ReduceOnPlateau::min_scale, between(0, false, 1, false)}}};
  static void check(const ReduceOnPlateau&) {}
};

/// f(Settings<Kind>{}, schedule's settings) for the kind it holds; a kind without its Settings does
/// not compile.
template <typename Variant, typename F>
decltype(auto) visit(Variant&& schedule, F&& f) {
  return std::visit(
      [&](auto& settings) -> decltype(auto) { return f(Settings<std::decay_t<decltype(settings)>>{}, settings); },
      schedule);
}

/// "1 or more", "in (0, 1]", "> 0": the bounds as a message says them.
std::string bounds_text(const Bounds& b, bool whole) {
  if (std::isinf(b.high))
    return b.low_open ? fmt::format("> {}", b.low)
                      : (whole ? fmt::format("{} or more", b.low) : fmt::format(">= {}", b.low));
  return fmt::format("in {}{}, {}{}", b.low_open ? '(' : '[', b.low, b.high, b.high_open ? ')' : ']');
}

template <typename S>
double value_of(const S& settings, const Setting<S>& setting) {
  return std::visit([&](auto member) { return static_cast<double>(settings.*member); }, setting.member);
}

template <typename S>
bool is_whole(const Setting<S>& setting) {
  return std::holds_alternative<std::int64_t S::*>(setting.member);
}

/// Sets a setting from a number: a count must be whole, a float32 within its range.
template <typename S>
void assign(S& settings, const Setting<S>& setting, double value, const std::string& token) {
  std::visit(
      [&]<typename T>(T S::*member) {
        if constexpr (std::is_same_v<T, std::int64_t>) {
          if (!(std::trunc(value) == value && std::abs(value) < 9.0e18))
            throw InputError(fmt::format("{} {} is not a whole number", token, value));
          settings.*member = static_cast<std::int64_t>(value);
        } else if constexpr (std::is_same_v<T, float>) {
          settings.*member = setting_float(value, token);
        } else {
          settings.*member = value;
        }
      },
      setting.member);
}

}  // namespace

std::string settings_json(const Schedule& schedule) {
  return to_json(schedule).dump();
}

std::string schedule_name(const Schedule& schedule) {
  return part_names::name_of(schedule);
}

std::vector<std::string> schedule_names() {
  return part_names::names<Schedule>();
}

Schedule schedule_named(const std::string& name) {
  return part_names::named<Schedule>(name, "schedule");
}

void check_schedule(const Schedule& schedule) {
  visit(schedule, [](auto kind, const auto& settings) {
    for (const auto& setting : decltype(kind)::list) {
      const double value = value_of(settings, setting);
      const Bounds& b = setting.bounds;
      const bool ok = std::isfinite(value) && (b.low_open ? value > b.low : value >= b.low) &&
                      (b.high_open ? value < b.high : value <= b.high);
      if (!ok)
        throw SettingError(fmt::format("{}::{}", decltype(kind)::class_name, setting.name),
                           fmt::format("{}: must be {}", value, bounds_text(b, is_whole(setting))));
    }
    decltype(kind)::check(settings);
  });
}

std::vector<ScheduleKind> schedule_kinds() {
  std::vector<ScheduleKind> kinds;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          using S = std::variant_alternative_t<I, Schedule>;
          ScheduleKind kind{S::kName, Settings<S>::class_name, Settings<S>::meaning, {}, {}};
          for (const auto& setting : Settings<S>::list) {
            kind.settings.emplace_back(setting.name);
            if (is_whole(setting)) kind.whole.emplace_back(setting.name);
          }
          kinds.push_back(std::move(kind));
        }(),
        ...);
  }
  (std::make_index_sequence<std::variant_size_v<Schedule>>());
  return kinds;
}

Schedule make_schedule(const std::string& name, const std::vector<std::pair<std::string, double>>& settings) {
  Schedule schedule = schedule_named(name);
  visit(schedule, [&](auto kind, auto& values) {
    for (const auto& [setting, value] : settings)
      assign(values, part_names::setting_named(decltype(kind)::list, setting, decltype(kind)::class_name), value,
             fmt::format("{}::{}", decltype(kind)::class_name, setting));
  });
  check_schedule(schedule);
  return schedule;
}

double schedule_setting(const Schedule& schedule, const std::string& name) {
  return visit(schedule, [&](auto kind, const auto& values) -> double {
    return value_of(values, part_names::setting_named(decltype(kind)::list, name, decltype(kind)::class_name));
  });
}

std::string describe(const Schedule& schedule) {
  return visit(schedule, [](auto kind, const auto& values) {
    std::vector<std::string> items;
    for (const auto& setting : decltype(kind)::list)
      std::visit([&](auto member) { items.push_back(fmt::format("{}={}", setting.name, values.*member)); },
                 setting.member);
    return fmt::format("{}({})", decltype(kind)::class_name, fmt::join(items, ", "));
  });
}

float schedule_scale(const Schedule& schedule, std::int64_t epoch, const ScheduleState& state) {
  if (const auto* step = std::get_if<StepDecay>(&schedule))
    return static_cast<float>(
        std::pow(static_cast<double>(step->gamma), static_cast<double>(epoch / step->step_epochs)));
  if (const auto* cosine = std::get_if<CosineDecay>(&schedule)) {
    if (epoch < cosine->warmup_epochs)
      return static_cast<float>(static_cast<double>(epoch + 1) / static_cast<double>(cosine->warmup_epochs));
    const double span = static_cast<double>(cosine->epochs - cosine->warmup_epochs);
    const double t = std::min(static_cast<double>(epoch - cosine->warmup_epochs), span);
    constexpr double kPi = 3.14159265358979323846;
    return static_cast<float>(cosine->min_scale + (1.0 - cosine->min_scale) * 0.5 * (1.0 + std::cos(kPi * t / span)));
  }
  if (std::holds_alternative<ReduceOnPlateau>(schedule)) return state.scale;
  return 1.0f;
}

void schedule_observe(const Schedule& schedule, double loss, ScheduleState& state) {
  const auto* plateau = std::get_if<ReduceOnPlateau>(&schedule);
  if (plateau == nullptr) return;
  if (loss < state.best * (1.0 - plateau->threshold)) {
    state.best = loss;
    state.bad_epochs = 0;
    return;
  }
  if (++state.bad_epochs > plateau->patience) {
    state.scale = std::max(state.scale * plateau->factor, plateau->min_scale);
    state.bad_epochs = 0;
  }
}

SettingsJson to_json(const Schedule& schedule) {
  SettingsJson json = {{"type", schedule_name(schedule)}};
  visit(schedule, [&](auto kind, const auto& values) {
    for (const auto& setting : decltype(kind)::list)
      std::visit([&](auto member) { json[setting.name] = values.*member; }, setting.member);
  });
  return json;
}

Schedule schedule_from_json(const SettingsJson& json) {
  Schedule schedule = schedule_named(json.at("type").get<std::string>());
  visit(schedule, [&](auto kind, auto& values) {
    for (const auto& setting : decltype(kind)::list)
      std::visit(
          [&](auto member) {
            using Value = std::decay_t<decltype(values.*member)>;
            if constexpr (std::is_same_v<Value, float>)
              values.*member = settings_float(json, setting.name);
            else
              values.*member = json.at(setting.name).template get<Value>();
          },
          setting.member);
  });
  return schedule;
}

}  // namespace ember
