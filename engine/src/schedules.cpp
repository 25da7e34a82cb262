#include "ember/schedules.hpp"

#include <fmt/format.h>

#include <cmath>

#include "ember/error.hpp"
#include "part_names.hpp"
#include "settings_json.hpp"

namespace ember {
namespace {

void require(bool ok, const char* setting, double value, const char* range) {
  if (!ok || !std::isfinite(value)) throw SettingError(setting, fmt::format("{}: must be {}", value, range));
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
  if (const auto* step = std::get_if<StepDecay>(&schedule)) {
    require(step->step_epochs >= 1, "StepDecay::step_epochs", static_cast<double>(step->step_epochs), "1 or more");
    require(step->gamma > 0.0f && step->gamma <= 1.0f, "StepDecay::gamma", step->gamma, "in (0, 1]");
  } else if (const auto* cosine = std::get_if<CosineDecay>(&schedule)) {
    require(cosine->epochs >= 1, "CosineDecay::epochs", static_cast<double>(cosine->epochs), "1 or more");
    require(cosine->warmup_epochs >= 0 && cosine->warmup_epochs < cosine->epochs, "CosineDecay::warmup_epochs",
            static_cast<double>(cosine->warmup_epochs), "0 or more and below CosineDecay::epochs");
    require(cosine->min_scale >= 0.0f && cosine->min_scale <= 1.0f, "CosineDecay::min_scale", cosine->min_scale,
            "in [0, 1]");
  } else if (const auto* plateau = std::get_if<ReduceOnPlateau>(&schedule)) {
    require(plateau->factor > 0.0f && plateau->factor < 1.0f, "ReduceOnPlateau::factor", plateau->factor, "in (0, 1)");
    require(plateau->patience >= 0, "ReduceOnPlateau::patience", static_cast<double>(plateau->patience), "0 or more");
    require(plateau->threshold >= 0.0 && plateau->threshold < 1.0, "ReduceOnPlateau::threshold", plateau->threshold,
            "in [0, 1)");
    require(plateau->min_scale >= 0.0f && plateau->min_scale <= 1.0f, "ReduceOnPlateau::min_scale", plateau->min_scale,
            "in [0, 1]");
  }
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
  if (const auto* step = std::get_if<StepDecay>(&schedule))
    json.update({{"step_epochs", step->step_epochs}, {"gamma", step->gamma}});
  if (const auto* cosine = std::get_if<CosineDecay>(&schedule))
    json.update(
        {{"epochs", cosine->epochs}, {"warmup_epochs", cosine->warmup_epochs}, {"min_scale", cosine->min_scale}});
  if (const auto* plateau = std::get_if<ReduceOnPlateau>(&schedule))
    json.update({{"factor", plateau->factor},
                 {"patience", plateau->patience},
                 {"threshold", plateau->threshold},
                 {"min_scale", plateau->min_scale}});
  return json;
}

Schedule schedule_from_json(const SettingsJson& json) {
  Schedule schedule = schedule_named(json.at("type").get<std::string>());
  if (auto* step = std::get_if<StepDecay>(&schedule))
    *step = {.step_epochs = json.at("step_epochs").get<std::int64_t>(), .gamma = settings_float(json, "gamma")};
  if (auto* cosine = std::get_if<CosineDecay>(&schedule))
    *cosine = {.epochs = json.at("epochs").get<std::int64_t>(),
               .warmup_epochs = json.at("warmup_epochs").get<std::int64_t>(),
               .min_scale = settings_float(json, "min_scale")};
  if (auto* plateau = std::get_if<ReduceOnPlateau>(&schedule))
    *plateau = {.factor = settings_float(json, "factor"),
                .patience = json.at("patience").get<std::int64_t>(),
                .threshold = json.at("threshold").get<double>(),
                .min_scale = settings_float(json, "min_scale")};
  return schedule;
}

}  // namespace ember
