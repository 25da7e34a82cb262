// ember export: a checkpoint as a file another runtime serves (ONNX).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <memory>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember::cli {
namespace {

struct ExportArguments {
  std::string model, format = "onnx", out;
  bool quiet = false;
};

}  // namespace

void add_export_command(CLI::App& app) {
  auto arguments = std::make_shared<ExportArguments>();
  CLI::App* command = app.add_subcommand(
      "export",
      "Write a checkpoint as an ONNX model for ONNX Runtime, TensorRT and other runtimes (docs/deploying.md): "
      "the raw feature columns in (one input per column), the learned preprocessing and the layers, and what "
      "'ember predict' gives out (predictions, or a label and each class's probability)");
  command->add_option("--model", arguments->model, "Checkpoint written by 'ember train --save'")->required();
  command->add_option("--out", arguments->out, "The file to write (replaced whole, never left half-written)")
      ->required();
  command->add_option("--format", arguments->format, "What to write: onnx (opset 17, ai.onnx.ml 2)")
      ->capture_default_str()
      ->check(CLI::IsMember({"onnx"}));
  command->add_flag("--quiet", arguments->quiet, "Print nothing on success");
  command->callback([arguments] {
    if (!onnx_export_available())
      throw InputError(
          "--format onnx: this build of Ember has no ONNX export (it was built without libonnx-dev; install it, "
          "e.g. with scripts/install-deps.sh, and build again)");
    const Sequential model = Sequential::load(arguments->model);
    model.export_onnx(arguments->out);
    if (arguments->quiet) return;
    const std::vector<std::string> features = model.feature_names();
    const std::string inputs = features.empty()
                                   ? fmt::format("one input 'input' of {} floats per row", model.input_width())
                                   : fmt::format("{} input columns ({})", features.size(), fmt::join(features, ", "));
    std::printf("Wrote %s (ONNX opset 17): %s; its outputs are %s\n", arguments->out.c_str(), inputs.c_str(),
                is_classification(model.compile_options().loss) ? "the label and each class's probability"
                                                                : "the predicted targets");
  });
}

}  // namespace ember::cli
