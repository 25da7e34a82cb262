// The losses' public functions (ember/losses.hpp) and what the plan needs of one (loss_part.hpp),
// each written once over the parts of losses/ (the generated loss_parts.hpp includes every one).
#include "loss_part.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <type_traits>

#include "ember/error.hpp"
#include "loss_parts.hpp"
#include "part_names.hpp"
#include "settings_json.hpp"

namespace ember {
namespace loss_part {
namespace {

/// f(Part<Kind>{}, settings) for the kind loss holds; a kind without a part does not compile.
template <typename F>
decltype(auto) visit(const Loss& loss, F&& f) {
  return std::visit(
      [&](const auto& settings) -> decltype(auto) { return f(Part<std::decay_t<decltype(settings)>>{}, settings); },
      loss);
}

/// The op's settings: the loss's settings' values, in the part's order (no allocation: the step
/// enqueues the loss each time on the CPU).
template <typename Settings>
auto values(const Settings& settings) {
  constexpr auto& list = Part<Settings>::settings;
  std::array<float, list.size()> out{};
  for (std::size_t i = 0; i < list.size(); ++i) out[i] = settings.*list[i].member;
  return out;
}

/// The kind of loss a name spells with the named settings set (the others at their defaults).
Loss with_settings(const std::string& name, const std::vector<std::pair<std::string, double>>& settings) {
  Loss loss = loss_named(name);
  std::visit(
      [&](auto& kind) {
        using Settings = std::decay_t<decltype(kind)>;
        for (const auto& [setting, value] : settings) {
          const auto& found = part_names::setting_named(Part<Settings>::settings, setting, Part<Settings>::keras_name);
          kind.*(found.member) = setting_float(value, fmt::format("{}::{}", Part<Settings>::keras_name, setting));
        }
      },
      loss);
  return loss;
}

}  // namespace

std::int64_t target_width(const Loss& loss, std::int64_t outputs) {
  return is_classification(loss) ? 1 : outputs;
}

std::int64_t sums_width(const Loss& loss, std::int64_t outputs) {
  return is_classification(loss) ? 2 : 3 * outputs;
}

void enqueue(Backend& backend, const Loss& loss, ConstView prediction, ConstView target, float* sums,
             std::optional<View> gradient) {
  visit(loss, [&](auto part, const auto& settings) {
    const auto operands = values(settings);
    const ConstView in[] = {prediction, target};
    const View out[] = {{sums, 1, sums_width(loss, prediction.cols)},
                        gradient.value_or(View{nullptr, prediction.rows, prediction.cols})};
    backend.layer_op(decltype(part)::op, {in, out, {operands.data(), operands.size()}});
  });
}

Figures figures(const Loss& loss, const std::vector<float>& sums, std::int64_t rows, const std::vector<double>& scale,
                const std::vector<double>& totals) {
  Figures out;
  const auto n = static_cast<double>(rows);
  if (is_classification(loss)) {
    out.loss = sums[0] / n;
    out.accuracy = sums[1] / n;
    return out;
  }
  const std::size_t cols = scale.size();
  const double elements = n * static_cast<double>(cols);
  double mae = 0.0, r2 = 0.0;
  for (std::size_t c = 0; c < cols; ++c) {
    out.loss += sums[c] / elements;
    mae += scale[c] * sums[2 * cols + c] / elements;
    // scikit-learn's r2_score: a constant target scores 1 when predicted exactly, else 0.
    const double residual = sums[cols + c];
    r2 += (totals[c] > 0.0 ? 1.0 - residual / totals[c] : (residual == 0.0 ? 1.0 : 0.0)) / static_cast<double>(cols);
  }
  out.mae = mae;
  out.r2 = r2;
  return out;
}

}  // namespace loss_part

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
  loss_part::visit(loss, [](auto part, const auto& settings) { decltype(part)::check(settings); });
}

bool is_classification(const Loss& loss) {
  return loss_part::visit(loss, [](auto part, const auto&) { return decltype(part)::classification; });
}

std::int64_t outputs_for_classes(std::int64_t classes) {
  if (classes < 2)
    throw InputError(fmt::format("classification needs at least two classes, the target has {}", classes));
  return classes == 2 ? 1 : classes;
}

std::vector<LossKind> loss_kinds() {
  std::vector<LossKind> kinds;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          using Settings = std::variant_alternative_t<I, Loss>;
          using P = loss_part::Part<Settings>;
          LossKind kind{Settings::kName, Settings::kName, P::keras_name, P::meaning, {}, P::classification};
          for (const auto& setting : P::settings) {
            kind.settings.emplace_back(setting.name);
            std::string upper = setting.name;
            std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
            kind.form += "[:" + upper + "]";
          }
          kinds.push_back(std::move(kind));
        }(),
        ...);
  }
  (std::make_index_sequence<kLossKinds>());
  return kinds;
}

Loss make_loss(const std::string& name, const std::vector<std::pair<std::string, double>>& settings) {
  const Loss loss = loss_part::with_settings(name, settings);
  check_loss(loss);
  return loss;
}

Loss parse_loss(const std::string& text) {
  const std::vector<std::string> items = part_names::spelling_items(text);
  const std::vector<LossKind> kinds = loss_kinds();
  const auto kind = std::find_if(kinds.begin(), kinds.end(), [&](const LossKind& k) { return k.name == items[0]; });
  if (kind == kinds.end()) {
    std::vector<std::string> forms;
    for (const LossKind& k : kinds) forms.push_back(k.form);
    throw InputError(fmt::format("'{}' is not a loss; the forms are {}", text, fmt::join(forms, ", ")));
  }
  const std::string& form = kind->form;
  if (items.size() - 1 > kind->settings.size())
    throw InputError(fmt::format("'{}': too many values; the form is {}", text, form));
  std::vector<std::pair<std::string, double>> settings;
  try {
    for (std::size_t i = 1; i < items.size(); ++i)
      settings.emplace_back(kind->settings[i - 1], part_names::spelled_number(items[i], kind->settings[i - 1]));
    return make_loss(kind->name, settings);
  } catch (const InputError& error) {
    throw InputError(fmt::format("'{}': {}; the form is {}", text, error.what(), form));
  }
}

double loss_setting(const Loss& loss, const std::string& name) {
  return loss_part::visit(loss, [&](auto part, const auto& settings) -> double {
    for (const auto& setting : decltype(part)::settings)
      if (name == setting.name) return settings.*setting.member;
    throw InputError(fmt::format("{} has no setting '{}'", describe(loss), name));
  });
}

std::string describe(const Loss& loss) {
  return loss_part::visit(loss, [](auto part, const auto& settings) {
    std::vector<std::string> items;
    for (const auto& setting : decltype(part)::settings)
      items.push_back(fmt::format("{}={}", setting.name, settings.*setting.member));
    return fmt::format("{}({})", decltype(part)::keras_name, fmt::join(items, ", "));
  });
}

SettingsJson to_json(const Loss& loss) {
  return loss_part::visit(loss, [&](auto part, const auto& settings) {
    SettingsJson json = {{"type", loss_name(loss)}};
    for (const auto& setting : decltype(part)::settings) json[setting.name] = settings.*setting.member;
    return json;
  });
}

// A setting missing from the entry keeps its default (checkpoints from before it existed).
Loss loss_from_json(const SettingsJson& json) {
  const std::string name = json.at("type").get<std::string>();
  std::vector<std::pair<std::string, double>> settings;
  const std::vector<LossKind> kinds = loss_kinds();
  for (const LossKind& kind : kinds)
    if (kind.name == name)
      for (const std::string& setting : kind.settings)
        if (json.contains(setting)) settings.emplace_back(setting, settings_float(json, setting.c_str()));
  return loss_part::with_settings(name, settings);
}

}  // namespace ember
