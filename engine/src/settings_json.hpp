#pragma once
// Each part's settings as checkpoint JSON (docs/formats.md, "ember.optimizer", "ember.loss",
// "ember.schedule"), written and read beside the part (optimizers.cpp, losses.cpp, schedules.cpp),
// so that a new optimizer, loss or schedule brings its own entry and the checkpoint is unchanged.
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "ember/error.hpp"
#include "ember/losses.hpp"
#include "ember/optimizers.hpp"
#include "ember/schedules.hpp"

namespace ember {

using SettingsJson = nlohmann::ordered_json;

/// {"type": ..., the settings}. The readers throw InputError for an unknown type or a value out of
/// float32's range, and nlohmann's exceptions for a missing or mistyped key.
SettingsJson to_json(const Optimizer& optimizer);
Optimizer optimizer_from_json(const SettingsJson& json);
SettingsJson to_json(const Loss& loss);
Loss loss_from_json(const SettingsJson& json);
SettingsJson to_json(const Schedule& schedule);
Schedule schedule_from_json(const SettingsJson& json);

/// A setting's value as a float32: InputError naming the setting when it is not finite or beyond
/// float32's range.
inline float setting_float(double value, const std::string& name) {
  if (!(std::abs(value) <= std::numeric_limits<float>::max()))
    throw InputError(fmt::format("{} {} is not a float32 number", name, value));
  return static_cast<float>(value);
}

/// json[key] as a float32 (setting_float).
inline float settings_float(const SettingsJson& json, const char* key) {
  return setting_float(json.at(key).get<double>(), key);
}

}  // namespace ember
