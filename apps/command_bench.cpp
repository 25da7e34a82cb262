// ember bench: training-step times as a table (and CSV).
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember::cli {
namespace {

struct BenchArguments {
  std::string device = "auto", csv;
  std::int64_t runs = 21;
};

void run_bench(const BenchArguments& a) {
  if (a.runs < 20) throw InputError(fmt::format("--runs {}: at least 20 runs make a median", a.runs));
  if (!a.csv.empty()) check_output_path(a.csv, "--csv");
  const Device device = parse_device(a.device);
  std::string notice;
  const bool gpu = make_backend(device, {}, &notice)->device() == Device::cuda;
  if (!notice.empty()) std::fprintf(stderr, "note: %s\n", notice.c_str());

  std::vector<bench::StepCase> cases;
  if (gpu) {
    for (std::int64_t width : {64, 256, 1024, 4096})
      for (std::int64_t batch : {1024, 8192}) cases.push_back({4, width, batch});
  } else {
    cases = {{4, 64, 32}, {4, 256, 256}};
  }
  std::vector<std::pair<std::string, BackendOptions>> variants;
  if (gpu) {
    variants = {{"graph", {.matmul = MatmulProvider::ember, .cuda_graph = true}},
                {"launches", {.matmul = MatmulProvider::ember, .cuda_graph = false}},
                {"cublas+graph", {.matmul = MatmulProvider::cublas, .cuda_graph = true}}};
  } else {
    variants = {{"cpu", {}}, {"cpu-reference", {.cpu_reference = true}}};
  }

  std::string csv = "depth,width,batch,variant,parameters,step_ms,host_us_per_step,steps_per_s\n";
  std::printf("Training step: MLP depth 4 (ReLU), MSE, SGD momentum 0.9; median of %lld runs of 10 steps\n",
              static_cast<long long>(a.runs));
  std::printf("%-6s %-6s %-13s %11s %12s %13s %11s\n", "width", "batch", "variant", "parameters", "step ms",
              "host us/step", "steps/s");
  for (const bench::StepCase& step : cases)
    for (const auto& [label, options] : variants) {
      auto backend = make_backend(device, options);
      const bench::StepTiming t = bench::time_training_step(*backend, step, a.runs);
      std::printf("%-6lld %-6lld %-13s %11lld %12.4f %13.2f %11.0f\n", static_cast<long long>(step.width),
                  static_cast<long long>(step.batch), label.c_str(), static_cast<long long>(t.parameters),
                  t.median_step_ms, t.host_us_per_step, 1000.0 / t.median_step_ms);
      std::fflush(stdout);
      csv += fmt::format("{},{},{},{},{},{:.6f},{:.3f},{:.1f}\n", step.depth, step.width, step.batch, label,
                         t.parameters, t.median_step_ms, t.host_us_per_step, 1000.0 / t.median_step_ms);
    }
  if (!a.csv.empty()) write_file_atomically(a.csv, csv);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto arguments = std::make_shared<BenchArguments>();
  CLI::App* command = app.add_subcommand("bench", "Time training steps of depth-4 MLPs on the chosen device");
  command->add_option("--device", arguments->device, "auto, cpu or cuda")->capture_default_str();
  command->add_option("--runs", arguments->runs, "Timed runs per row (median; at least 20)")->capture_default_str();
  command->add_option("--csv", arguments->csv, "Also write the table to this CSV file");
  command->callback([arguments] { run_bench(*arguments); });
}

}  // namespace ember::cli
