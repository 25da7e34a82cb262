#include "ember/losses.hpp"

#include <fmt/format.h>

#include <cmath>

#include "ember/error.hpp"
#include "part_names.hpp"
#include "settings_json.hpp"

namespace ember {

std::string settings_json(const Loss& loss) {
  return to_json(loss).dump();
}

std::string loss_name(const Loss& loss) {
  return part_names::name_of(loss);
}

std::vector<std::string> loss_names() {
  return part_names::names<Loss>();
}

Loss loss_named(const std::string& name) {
  return part_names::named<Loss>(name, "loss");
}

void check_loss(const Loss& loss) {
  if (const auto* huber = std::get_if<Huber>(&loss);
      huber != nullptr && !(huber->delta > 0.0f && std::isfinite(huber->delta)))
    throw SettingError("Huber::delta", fmt::format("{}: must be a finite number > 0", huber->delta));
  if (const auto* cross_entropy = std::get_if<CrossEntropy>(&loss);
      cross_entropy != nullptr && !(cross_entropy->label_smoothing >= 0.0f && cross_entropy->label_smoothing < 1.0f))
    throw SettingError("CrossEntropy::label_smoothing",
                       fmt::format("{}: must be in [0, 1)", cross_entropy->label_smoothing));
}

bool is_classification(const Loss& loss) {
  return std::holds_alternative<CrossEntropy>(loss);
}

std::int64_t outputs_for_classes(std::int64_t classes) {
  if (classes < 2)
    throw InputError(fmt::format("classification needs at least two classes, the target has {}", classes));
  return classes == 2 ? 1 : classes;
}

SettingsJson to_json(const Loss& loss) {
  SettingsJson json = {{"type", loss_name(loss)}};
  if (const auto* huber = std::get_if<Huber>(&loss)) json["delta"] = huber->delta;
  if (const auto* cross_entropy = std::get_if<CrossEntropy>(&loss))
    json["label_smoothing"] = cross_entropy->label_smoothing;
  return json;
}

Loss loss_from_json(const SettingsJson& json) {
  Loss loss = loss_named(json.at("type").get<std::string>());
  if (auto* huber = std::get_if<Huber>(&loss)) huber->delta = settings_float(json, "delta");
  if (auto* cross_entropy = std::get_if<CrossEntropy>(&loss);
      cross_entropy != nullptr && json.contains("label_smoothing"))
    cross_entropy->label_smoothing = settings_float(json, "label_smoothing");
  return loss;
}

}  // namespace ember
