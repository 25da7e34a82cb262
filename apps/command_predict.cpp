// ember predict / ember evaluate: checkpoint + CSV -> predictions or metrics.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember::cli {
namespace {

struct ModelArguments {
  std::string model, data, out, metrics_out, keep, device = "auto", delimiter = ",", comment;
  bool quiet = false;
};

Sequential load_model(const ModelArguments& a) {
  Sequential model = Sequential::load(a.model);
  CompileOptions options = model.compile_options();
  options.device = parse_device_flag(a.device);
  model.compile(options);
  if (!model.backend_notice().empty() && !a.quiet) std::fprintf(stderr, "note: %s\n", model.backend_notice().c_str());
  return model;
}

/// Only the columns the model uses (and those to keep) are read: any other column may hold anything.
CsvTable read_model_columns(const Sequential& model, const ModelArguments& a, bool with_targets,
                            const std::vector<std::string>& keep) {
  const char delimiter = parse_delimiter(a.delimiter);
  CsvOptions options = model.preprocessing().empty() ? CsvOptions{.delimiter = delimiter}
                                                     : model.preprocessing().csv_options(delimiter, with_targets);
  options.comment = parse_comment(a.comment);
  if (!options.columns.empty()) options.columns.insert(options.columns.end(), keep.begin(), keep.end());
  options.text_columns.insert(options.text_columns.end(), keep.begin(), keep.end());
  return read_data(a.data, options);
}

PredictOptions predict_options(const CsvTable& table) {
  return {.on_warning = [path = table.path](const std::string& message) {
    std::fprintf(stderr, "warning: %s: %s\n", path.c_str(), in_flags(message).c_str());
  }};
}

/// "price_predicted": a prediction column is never mistaken for the target it estimates. A
/// classifier writes the predicted label, then each class's probability ("species_probability_setosa").
std::vector<std::string> prediction_columns(const Sequential& model) {
  std::vector<std::string> names;
  if (is_classification(model.compile_options().loss)) {
    const std::string target = model.target_names().empty() ? "class" : model.target_names()[0];
    names.push_back(target + "_predicted");
    for (const std::string& label : model.classes()) names.push_back(target + "_probability_" + label);
    return names;
  }
  for (std::int64_t c = 0; c < model.output_width(); ++c) {
    const auto j = static_cast<std::size_t>(c);
    names.push_back((j < model.target_names().size() ? model.target_names()[j] : fmt::format("output{}", c)) +
                    "_predicted");
  }
  return names;
}

void run_predict(const ModelArguments& a) {
  if (!a.out.empty()) check_output_path(a.out, "--out");
  const std::vector<std::string> keep = a.keep.empty() ? std::vector<std::string>{} : split_list(a.keep, "--keep");
  Sequential model = load_model(a);
  const std::vector<std::string> outputs = prediction_columns(model);
  for (const std::string& name : keep)
    if (std::find(outputs.begin(), outputs.end(), name) != outputs.end())
      throw InputError(
          fmt::format("--keep {}: the predictions are written under that name; rename the column", printable(name)));
  const CsvTable table = read_model_columns(model, a, false, keep);
  std::vector<const CsvColumn*> kept;
  for (const std::string& name : keep) kept.push_back(&table.column(name));
  const Matrix prediction = model.predict(table, predict_options(table));
  const bool classification = is_classification(model.compile_options().loss);
  const std::vector<std::string> classes = model.classes();

  std::string text;
  for (const CsvColumn* column : kept) text += csv_field(column->name) + ',';
  for (std::size_t c = 0; c < outputs.size(); ++c) text += (c > 0 ? "," : "") + csv_field(outputs[c]);
  text += '\n';
  for (std::int64_t r = 0; r < prediction.rows(); ++r) {
    for (const CsvColumn* column : kept) text += csv_field(column->cell(r)) + ',';
    const bool predicted = !std::isnan(prediction(r, 0));  // else no prediction: empty cells
    if (classification) {
      std::int64_t best = 0;
      for (std::int64_t c = 1; c < prediction.cols(); ++c)
        if (prediction(r, c) > prediction(r, best)) best = c;
      if (predicted) text += csv_field(classes[static_cast<std::size_t>(best)]);
      text += ',';
    }
    for (std::int64_t c = 0; c < prediction.cols(); ++c) {
      if (c > 0) text += ',';
      if (predicted) text += format_number(prediction(r, c));
    }
    text += '\n';
  }
  if (a.out.empty())
    std::fputs(text.c_str(), stdout);
  else
    write_file_atomically(a.out, text);
}

/// Accuracy, log-loss, macro-F1 and the confusion matrix (rows: true class, columns: predicted).
void report_classification(const ModelArguments& a, const Metrics& m) {
  std::printf("accuracy: %.6f\nlog_loss: %.6g\nmacro_f1: %.6f\nrows: %lld\n", m.accuracy, m.log_loss, m.macro_f1,
              static_cast<long long>(m.rows));
  if (m.dropped_rows > 0) std::printf("dropped rows: %lld (missing values)\n", static_cast<long long>(m.dropped_rows));
  std::printf("confusion (rows: true class, columns: predicted):\n");
  std::size_t width = 5;
  for (const std::string& name : m.classes) width = std::max(width, name.size());
  std::printf("%*s", static_cast<int>(width), "");
  for (const std::string& name : m.classes) std::printf(" %*s", static_cast<int>(width), name.c_str());
  std::printf("\n");
  for (std::size_t t = 0; t < m.classes.size(); ++t) {
    std::printf("%*s", static_cast<int>(width), m.classes[t].c_str());
    for (const std::int64_t count : m.confusion[t])
      std::printf(" %*lld", static_cast<int>(width), static_cast<long long>(count));
    std::printf("\n");
  }
  if (!a.metrics_out.empty()) {
    const nlohmann::ordered_json json = {
        {"accuracy", m.accuracy},         {"log_loss", m.log_loss}, {"macro_f1", m.macro_f1},  {"rows", m.rows},
        {"dropped_rows", m.dropped_rows}, {"classes", m.classes},   {"confusion", m.confusion}};
    write_file_atomically(a.metrics_out, json.dump(2) + "\n");
  }
}

void run_evaluate(const ModelArguments& a) {
  if (!a.metrics_out.empty()) check_output_path(a.metrics_out, "--metrics-out");
  Sequential model = load_model(a);
  if (model.target_names().empty())
    throw InputError(fmt::format("{}: the model stores no target column names", a.model));
  const CsvTable table = read_model_columns(model, a, true, {});
  const Metrics m = model.evaluate(table, predict_options(table));
  if (is_classification(model.compile_options().loss)) return report_classification(a, m);
  std::printf("mse: %.6g\nmae: %.6g\nr2: %.6f\nrows: %lld\n", m.mse, m.mae, m.r2, static_cast<long long>(m.rows));
  if (m.dropped_rows > 0) std::printf("dropped rows: %lld (missing values)\n", static_cast<long long>(m.dropped_rows));
  if (m.targets.size() > 1)
    for (const TargetMetrics& t : m.targets)
      std::printf("%s: mse %.6g, mae %.6g, r2 %.6f\n", t.name.c_str(), t.mse, t.mae, t.r2);
  if (!a.metrics_out.empty()) {
    nlohmann::ordered_json targets = nlohmann::ordered_json::object();
    for (const TargetMetrics& t : m.targets) targets[t.name] = {{"mse", t.mse}, {"mae", t.mae}, {"r2", t.r2}};
    const nlohmann::ordered_json json = {
        {"mse", m.mse},      {"mae", m.mae}, {"r2", m.r2}, {"rows", m.rows}, {"dropped_rows", m.dropped_rows},
        {"targets", targets}};
    write_file_atomically(a.metrics_out, json.dump(2) + "\n");
  }
}

void add_common(CLI::App* command, ModelArguments& a) {
  command->add_option("--model", a.model, "Checkpoint written by 'ember train --save'")->required();
  command
      ->add_option("--data", a.data,
                   "CSV file holding the model's feature columns (by name; other columns are not read); - reads "
                   "standard input")
      ->required();
  command->add_option("--device", a.device, "auto, cpu or cuda")->capture_default_str();
  add_csv_options(*command, a.delimiter, a.comment);
  command->add_flag("--quiet,-q", a.quiet, "Print no notes (warnings and errors still go to standard error)");
}

}  // namespace

void add_predict_commands(CLI::App& app) {
  auto predict = std::make_shared<ModelArguments>();
  CLI::App* p = app.add_subcommand("predict", "Predict targets for the rows of a CSV file");
  add_common(p, *predict);
  p->add_option("--out", predict->out, "Write the predictions to this CSV file (default: standard output)");
  p->add_option("--keep", predict->keep,
                "Columns copied unchanged into the output before the predictions (ids), comma-separated");
  p->footer(
      "Output: the --keep columns, then for a regression model one column per target named TARGET_predicted; for "
      "a classifier TARGET_predicted (the most probable class) and one TARGET_probability_CLASS column per class "
      "(the softmax or sigmoid probabilities, summing to 1). A row with a missing feature under a model trained "
      "with --missing drop gets empty cells.");
  p->callback([predict] {
    require_one_process("ember predict");
    run_predict(*predict);
  });

  auto evaluate = std::make_shared<ModelArguments>();
  CLI::App* e = app.add_subcommand(
      "evaluate",
      "Report a model's metrics on a CSV file with its target columns: mse, mae and r2 (per target too) for "
      "regression; accuracy, log-loss, macro-F1 and the confusion matrix for classification");
  add_common(e, *evaluate);
  e->add_option("--metrics-out", evaluate->metrics_out, "Also write the metrics to this JSON file");
  e->callback([evaluate] {
    require_one_process("ember evaluate");
    run_evaluate(*evaluate);
  });
}

}  // namespace ember::cli
