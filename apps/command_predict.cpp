// ember predict / ember evaluate: checkpoint + CSV -> predictions or metrics.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember::cli {
namespace {

struct ModelArguments {
  std::string model, data, out, metrics_out, device = "auto", delimiter = ",";
};

/// The checkpoint's feature columns, selected by name (or all columns when it stores no names).
Matrix feature_columns(const Sequential& model, const CsvTable& table) {
  std::vector<std::int64_t> indices;
  if (model.feature_names().empty()) {
    if (static_cast<std::int64_t>(table.header.size()) != model.input_width())
      throw InputError(fmt::format("{}: {} columns, but the model takes {} inputs", table.path, table.header.size(),
                                   model.input_width()));
    for (std::int64_t c = 0; c < model.input_width(); ++c) indices.push_back(c);
  } else {
    for (const std::string& name : model.feature_names()) indices.push_back(table.column_index(name));
  }
  return table.columns(indices);
}

Sequential load_model(const ModelArguments& a) {
  Sequential model = Sequential::load(a.model);
  CompileOptions options = model.compile_options();
  options.device = parse_device(a.device);
  model.compile(options);
  if (!model.backend_notice().empty()) std::fprintf(stderr, "note: %s\n", model.backend_notice().c_str());
  return model;
}

void run_predict(const ModelArguments& a) {
  if (!a.out.empty()) check_output_path(a.out, "--out");
  Sequential model = load_model(a);
  const CsvTable table = read_csv(a.data, {.delimiter = parse_delimiter(a.delimiter)});
  const Matrix prediction = model.predict(feature_columns(model, table));
  std::string text;
  for (std::int64_t c = 0; c < prediction.cols(); ++c) {
    const auto j = static_cast<std::size_t>(c);
    if (c > 0) text += ',';
    text += j < model.target_names().size() ? model.target_names()[j] : fmt::format("output{}", c);
  }
  text += '\n';
  for (std::int64_t r = 0; r < prediction.rows(); ++r) {
    for (std::int64_t c = 0; c < prediction.cols(); ++c) {
      if (c > 0) text += ',';
      text += format_number(prediction(r, c));
    }
    text += '\n';
  }
  if (a.out.empty()) std::fputs(text.c_str(), stdout);
  else write_file_atomically(a.out, text);
}

void run_evaluate(const ModelArguments& a) {
  if (!a.metrics_out.empty()) check_output_path(a.metrics_out, "--metrics-out");
  Sequential model = load_model(a);
  const CsvTable table = read_csv(a.data, {.delimiter = parse_delimiter(a.delimiter)});
  if (model.target_names().empty()) throw InputError(fmt::format("{}: the model stores no target column names", a.model));
  std::vector<std::int64_t> targets;
  for (const std::string& name : model.target_names()) targets.push_back(table.column_index(name));
  const Metrics m = model.evaluate(feature_columns(model, table), table.columns(targets));
  std::printf("mse: %.6g\nmae: %.6g\nr2: %.6f\nrows: %lld\n", m.mse, m.mae, m.r2, static_cast<long long>(m.rows));
  if (!a.metrics_out.empty()) {
    const nlohmann::ordered_json json = {{"mse", m.mse}, {"mae", m.mae}, {"r2", m.r2}, {"rows", m.rows}};
    write_file_atomically(a.metrics_out, json.dump(2) + "\n");
  }
}

void add_common(CLI::App* command, ModelArguments& a) {
  command->add_option("--model", a.model, "Checkpoint written by 'ember train --save'")->required();
  command->add_option("--data", a.data, "CSV file holding the model's feature columns (by name)")->required();
  command->add_option("--device", a.device, "auto, cpu or cuda")->capture_default_str();
  command->add_option("--delimiter", a.delimiter, "CSV field separator (one character, or 'tab')")->capture_default_str();
}

}  // namespace

void add_predict_commands(CLI::App& app) {
  auto predict = std::make_shared<ModelArguments>();
  CLI::App* p = app.add_subcommand("predict", "Predict targets for the rows of a CSV file");
  add_common(p, *predict);
  p->add_option("--out", predict->out, "Write the predictions to this CSV file (default: standard output)");
  p->callback([predict] { run_predict(*predict); });

  auto evaluate = std::make_shared<ModelArguments>();
  CLI::App* e = app.add_subcommand("evaluate", "Report mse, mae and r2 of a model on a CSV file with its target columns");
  add_common(e, *evaluate);
  e->add_option("--metrics-out", evaluate->metrics_out, "Also write the metrics to this JSON file");
  e->callback([evaluate] { run_evaluate(*evaluate); });
}

}  // namespace ember::cli
