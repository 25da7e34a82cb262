// ember inspect: what a checkpoint holds, for people (text) and programs (--json).
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"
#include "progress.hpp"

namespace ember::cli {
namespace {

using Json = nlohmann::ordered_json;

struct InspectArguments {
  std::string model;
  bool json = false;
};

/// One entry per feature column: how it becomes inputs, with the scaler's figures per input.
Json columns_json(const Sequential& model) {
  const Preprocessing& p = model.preprocessing();
  const Scaler& scaler = model.scaler();
  Json columns = Json::array();
  std::size_t input = 0;
  for (const FeatureColumn& feature : p.features) {
    Json entry = {{"name", feature.name},
                  {"kind", feature.embedded  ? "embedded"
                           : feature.one_hot ? "one-hot"
                                             : "number"}};
    const std::size_t inputs = feature.inputs();
    if (feature.one_hot) entry["categories"] = feature.categories;
    if (!feature.fill.empty()) entry["fill"] = feature.fill;
    if (feature.missing_indicator) entry["missing_indicator"] = true;
    if (!feature.bin_edges.empty()) entry["bin_edges"] = feature.bin_edges;
    if (feature.levels) entry["levels"] = true;
    if (scaler.enabled && input + inputs <= scaler.x.mean.size()) {
      entry["mean"] = std::vector<double>(scaler.x.mean.begin() + static_cast<std::ptrdiff_t>(input),
                                          scaler.x.mean.begin() + static_cast<std::ptrdiff_t>(input + inputs));
      entry["std"] = std::vector<double>(scaler.x.std.begin() + static_cast<std::ptrdiff_t>(input),
                                         scaler.x.std.begin() + static_cast<std::ptrdiff_t>(input + inputs));
    }
    input += inputs;
    columns.push_back(std::move(entry));
  }
  return columns;
}

Json model_json(const Sequential& model, const std::string& path) {
  const CompileOptions& options = model.compile_options();
  const bool classification = is_classification(options.loss);
  Json layers = Json::array();
  for (const Layer& layer : model.layers()) layers.push_back(Json::parse(settings_json(layer)));
  Json json = {{"file", path},
               {"task", classification ? "classification" : "regression"},
               {"inputs", model.input_width()},
               {"layers", layers},
               {"parameters", model.parameter_count()},
               {"seed", model.seed()},
               {"missing", to_string(model.preprocessing().missing)},
               {"columns", columns_json(model)},
               {"targets", model.target_names()}};
  if (classification) json["classes"] = model.classes();
  const Scaler& scaler = model.scaler();
  json["scaler"] = {{"enabled", scaler.enabled}};
  if (scaler.enabled && !classification) json["scaler"].update({{"y_mean", scaler.y.mean}, {"y_std", scaler.y.std}});
  json["loss"] = Json::parse(settings_json(options.loss));
  json["optimizer"] = Json::parse(settings_json(options.optimizer));
  json["schedule"] = Json::parse(settings_json(options.schedule));
  if (options.clip_norm > 0.0f) json["clip_norm"] = options.clip_norm;
  json["epochs"] = model.epochs_completed();
  json["optimizer_step"] = model.optimizer_step();
  if (model.epoch_record()) {
    Json figures = {{"epoch", model.epoch_record()->epoch}};
    for (const auto& [name, value] : epoch_figures(*model.epoch_record())) figures[name] = value;
    figures["lr"] = model.epoch_record()->lr;
    json["figures"] = figures;
  }
  // An ensemble's further members: their seeds, epochs and figures (the model's own are member 1's).
  if (model.member_count() > 1) {
    Json members = Json::array();
    for (std::int64_t k = 1; k < model.member_count(); ++k) {
      Json member = {{"seed", model.member_seed(k)}};
      if (const auto& record = model.member_record(k)) {
        member["epoch"] = record->epoch;
        for (const auto& [name, value] : epoch_figures(*record)) member[name] = value;
      }
      members.push_back(std::move(member));
    }
    json["members"] = members;
  }
  // A blend's linear model (compare_linear): its share, optimizer, epochs and networks.
  if (model.linear_share() > 0.0) {
    const Sequential& linear = model.blended_linear();
    json["linear"] = {{"share", model.linear_share()},
                      {"optimizer", Json::parse(settings_json(linear.compile_options().optimizer))},
                      {"epochs", linear.epochs_completed()},
                      {"members", linear.member_count()}};
  }
  return json;
}

/// A settings object as "sgd (lr 0.01, momentum 0.9, ...)".
std::string settings_text(const Json& settings) {
  std::string text = settings.at("type").get<std::string>(), details;
  for (const auto& [key, value] : settings.items())
    if (key != "type" && key != "state")
      details += fmt::format("{}{} {}", details.empty() ? "" : ", ", key,
                             value.is_number_float() ? format_number(value.get<double>()) : value.dump());
  return details.empty() ? text : fmt::format("{} ({})", text, details);
}

std::string numbers_text(const Json& values) {
  std::string text;
  for (const Json& value : values) text += (text.empty() ? "" : " ") + format_number(value.get<double>());
  return text;
}

void print_text(const Json& m) {
  std::string out =
      fmt::format("{}: an Ember model for {}\n", m["file"].get<std::string>(), m["task"].get<std::string>());
  std::string layers;
  for (const Json& layer : m["layers"]) {
    if (layer["type"] != "dense") {  // as the library describes it: "LayerNorm(1e-05)"
      layers += " -> " + describe(layer_from_settings_json(layer.dump()));
      continue;
    }
    const std::string activation = layer["activation"].get<std::string>();
    layers += fmt::format(" -> Dense {}{}", layer["units"].get<std::int64_t>(),
                          activation == "linear" ? "" : " " + activation);
  }
  out += fmt::format("Architecture: {} inputs{}; {} parameters (seed {})\n", m["inputs"].get<std::int64_t>(), layers,
                     m["parameters"].get<std::int64_t>(), m["seed"].get<std::uint64_t>());
  if (m["columns"].empty()) {
    out += "Columns: none recorded (trained on matrices without column names)\n";
  } else {
    out += fmt::format("Columns ({} features; a missing cell: {}):\n", m["columns"].size(),
                       m["missing"].get<std::string>());
    for (const Json& column : m["columns"]) {
      std::string line = fmt::format("  {}: {}", column["name"].get<std::string>(), column["kind"].get<std::string>());
      if (column.contains("categories")) {
        std::string categories;
        for (const Json& c : column["categories"])
          categories += (categories.empty() ? "" : ", ") + printable(c.get<std::string>());
        line += fmt::format(" ({} categories: {})", column["categories"].size(), categories);
      }
      if (column.contains("bin_edges"))
        line += fmt::format("; {} bins between {} (inputs after the value)", column["bin_edges"].size() - 1,
                            numbers_text(column["bin_edges"]));
      if (column.contains("levels"))
        line +=
            fmt::format("; an indicator for each of its {} values (inputs after the bins)", column["bin_edges"].size());
      if (column.contains("mean"))
        line += fmt::format("; mean {}, std {}", numbers_text(column["mean"]), numbers_text(column["std"]));
      if (column.contains("fill")) line += fmt::format("; fills {}", numbers_text(column["fill"]));
      if (column.contains("missing_indicator")) line += "; an input for missing cells (the last)";
      out += line + "\n";
    }
  }
  std::string targets;
  for (const Json& t : m["targets"]) targets += (targets.empty() ? "" : ", ") + t.get<std::string>();
  if (!targets.empty()) out += fmt::format("Target: {}\n", targets);
  if (m.contains("classes")) {
    std::string classes;
    for (const Json& c : m["classes"]) classes += (classes.empty() ? "" : ", ") + printable(c.get<std::string>());
    out += fmt::format("Classes ({}): {}\n", m["classes"].size(), classes);
  }
  const Json& scaler = m["scaler"];
  out += fmt::format("Scaler: {}", scaler["enabled"].get<bool>() ? "standardizes the inputs" : "off");
  if (scaler.contains("y_mean"))
    out += fmt::format(" and targets (mean {}, std {})", numbers_text(scaler["y_mean"]), numbers_text(scaler["y_std"]));
  out += "\n";
  out += fmt::format("Loss: {}\nOptimizer: {}\nSchedule: {}\n", settings_text(m["loss"]), settings_text(m["optimizer"]),
                     settings_text(m["schedule"]));
  if (m.contains("clip_norm"))
    out += fmt::format("Gradients: clipped to norm {}\n", format_number(m["clip_norm"].get<double>()));
  out += fmt::format("Epochs trained: {}\n", m["epochs"].get<std::int64_t>());
  if (m.contains("figures")) {
    std::string figures;
    for (const auto& [name, value] : m["figures"].items())
      if (name != "epoch")
        figures += fmt::format("{}{} {:.6g}", figures.empty() ? "" : ", ", name, value.get<double>());
    out += fmt::format("Figures at epoch {}: {}\n", m["figures"]["epoch"].get<std::int64_t>(), figures);
  }
  if (m.contains("members")) {
    out += fmt::format(
        "Members: {} networks of this architecture, whose predictions are averaged; the figures above "
        "are the first's, the others':\n",
        m["members"].size() + 1);
    for (const Json& member : m["members"]) {
      std::string figures;
      for (const auto& [name, value] : member.items())
        if (name != "seed" && name != "epoch") figures += fmt::format(", {} {:.6g}", name, value.get<double>());
      out += fmt::format("  seed {}{}{}\n", member["seed"].get<std::uint64_t>(),
                         member.contains("epoch") ? fmt::format(": epoch {}", member["epoch"].get<std::int64_t>()) : "",
                         figures);
    }
  }
  if (m.contains("linear")) {
    const Json& linear = m["linear"];
    const double share = linear["share"].get<double>();
    out += fmt::format(
        "Blend: the predictions are {} times these layers' plus {} times a linear model's (the last layer alone: "
        "{}, {} epochs, {} network{})\n",
        format_number(1.0 - share), format_number(share), settings_text(linear["optimizer"]),
        linear["epochs"].get<std::int64_t>(), linear["members"].get<std::int64_t>(),
        linear["members"].get<std::int64_t>() == 1 ? "" : "s");
  }
  std::fputs(out.c_str(), stdout);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto arguments = std::make_shared<InspectArguments>();
  CLI::App* command = app.add_subcommand(
      "inspect",
      "Show what a checkpoint holds: architecture, columns and their handling, classes, scaler, loss, optimizer, "
      "schedule, epochs and the figures of its last epoch");
  command->add_option("model", arguments->model, "Checkpoint written by 'ember train --save'")->required();
  command->add_flag("--json", arguments->json, "Print one JSON object instead of text");
  command->callback([arguments] {
    const Sequential model = Sequential::load(arguments->model);
    const Json json = model_json(model, arguments->model);
    if (arguments->json)
      std::fputs((json.dump(2) + "\n").c_str(), stdout);
    else
      print_text(json);
  });
}

}  // namespace ember::cli
