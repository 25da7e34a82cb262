// ember bench: the GEMM table, the memory-bound table and the training-step table (on the CPU only
// the last), printed as they are measured; --csv writes every figure in one long-format file.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <vector>

#include "cli_common.hpp"
#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/ember.hpp"

namespace ember::cli {
namespace {

struct BenchArguments {
  std::string device = "auto", csv, tables = "gemm,memory,tuning,step";
  std::int64_t runs = 21;
  std::int64_t width = 0;  // 0: every width of the step table
  std::string comm = "auto";
};

/// The CSV: one figure per line, so that every table fits one format.
class CsvRows {
 public:
  void add(const std::string& table, const std::string& name, const std::string& variant, const std::string& metric,
           double value, const std::string& yardstick = "", double ratio = std::nan("")) {
    text_ += fmt::format("{},{},{},{},{:.6g},{},{}\n", table, name, variant, metric, value, yardstick,
                         std::isnan(ratio) ? std::string() : fmt::format("{:.4f}", ratio));
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_ = "table,case,variant,metric,value,yardstick,ratio\n";
};

std::string figure(double value, const char* format = "{:.1f}") {
  return std::isnan(value) ? std::string("-") : fmt::format(fmt::runtime(format), value);
}

/// A relative error, with " WRONG" appended above the tolerance; "-" where the variant did not run.
std::string error_text(double error, double tolerance, int& wrong) {
  if (std::isnan(error)) return "-";
  if (!(error <= tolerance)) ++wrong;
  return fmt::format("{:.0e}{}", error, error <= tolerance ? "" : " WRONG");
}

/// Returns how many Ember products differed from cuBLAS's beyond their tolerance.
int gemm(const BenchArguments& a, CsvRows& csv) {
  std::printf(
      "\nGEMM, TFLOP/s (median of %lld runs, L2 flushed); ratios against cuBLAS in the same precision; "
      "errors of Ember's results against cuBLAS FP32's\n",
      static_cast<long long>(a.runs));
  std::printf("%-26s %-4s %8s %8s %7s %11s %12s %7s %9s %9s %8s %8s  %s\n", "case", "mode", "ember", "cublas", "ratio",
              "ember-tf32", "cublas-tf32", "ratio", "mma.sync", "128x256", "error", "tf32 err", "ember kernel");
  int wrong = 0;
  bench::gemm_table({.runs = a.runs}, [&](const bench::GemmRow& r) {
    const std::string name = fmt::format("{} {}", r.label, r.mode);
    double tf32_error = r.error_tf32;  // the worst of the TF32 kernels that ran
    for (const double e : {r.error_tf32_mma, r.error_tf32_wide})
      if (!std::isnan(e)) tf32_error = std::max(tf32_error, e);
    std::printf("%-26s %-4s %8s %8s %7s %11s %12s %7s %9s %9s %8s %8s  %s\n", r.label.c_str(), r.mode.c_str(),
                figure(r.ember).c_str(), figure(r.cublas).c_str(), figure(r.ember / r.cublas, "{:.2f}").c_str(),
                figure(r.ember_tf32).c_str(), figure(r.cublas_tf32).c_str(),
                figure(r.ember_tf32 / r.cublas_tf32, "{:.2f}").c_str(), figure(r.ember_tf32_mma).c_str(),
                figure(r.ember_tf32_wide).c_str(), error_text(r.error, bench::kFp32GemmTolerance, wrong).c_str(),
                error_text(tf32_error, bench::kTf32GemmTolerance, wrong).c_str(), r.kernel.c_str());
    std::fflush(stdout);
    csv.add("gemm", name, "ember-fp32", "TFLOP/s", r.ember, "cublas-fp32", r.ember / r.cublas);
    csv.add("gemm", name, "ember-fp32", "relative error", r.error);
    csv.add("gemm", name, "cublas-fp32", "TFLOP/s", r.cublas);
    if (!std::isnan(r.ember_tf32)) {
      csv.add("gemm", name, "ember-tf32", "TFLOP/s", r.ember_tf32, "cublas-tf32", r.ember_tf32 / r.cublas_tf32);
      csv.add("gemm", name, "ember-tf32", "relative error", r.error_tf32);
    }
    if (!std::isnan(r.ember_tf32_mma)) {
      csv.add("gemm", name, "ember-tf32-mma-sync", "TFLOP/s", r.ember_tf32_mma, "cublas-tf32",
              r.ember_tf32_mma / r.cublas_tf32);
      csv.add("gemm", name, "ember-tf32-mma-sync", "relative error", r.error_tf32_mma);
    }
    if (!std::isnan(r.ember_tf32_wide)) {
      csv.add("gemm", name, "ember-tf32-wgmma-128x256", "TFLOP/s", r.ember_tf32_wide, "cublas-tf32",
              r.ember_tf32_wide / r.cublas_tf32);
      csv.add("gemm", name, "ember-tf32-wgmma-128x256", "relative error", r.error_tf32_wide);
    }
    csv.add("gemm", name, "cublas-tf32", "TFLOP/s", r.cublas_tf32);
  });
  return wrong;
}

void memory(const BenchArguments& a, CsvRows& csv) {
  std::printf("\nMemory-bound kernels, GB/s over the bytes each must move (1 GiB per operand; median of %lld runs)\n",
              static_cast<long long>(a.runs));
  std::printf("%-16s %10s %10s %-16s %10s %7s\n", "kernel", "MiB moved", "GB/s", "yardstick", "GB/s", "ratio");
  bench::bandwidth_table({.runs = a.runs}, [&](const bench::BandwidthRow& r) {
    std::printf("%-16s %10.0f %10.0f %-16s %10.0f %7.2f\n", r.kernel.c_str(), r.bytes / 1048576.0, r.gb_per_s,
                r.yardstick.c_str(), r.yardstick_gb_per_s, r.gb_per_s / r.yardstick_gb_per_s);
    std::fflush(stdout);
    csv.add("memory", r.kernel, "ember", "GB/s", r.gb_per_s, r.yardstick, r.gb_per_s / r.yardstick_gb_per_s);
  });
}

/// Returns how many plans gave results that differ from the chosen plan's beyond tolerance.
int tuning(const BenchArguments& a, CsvRows& csv) {
  std::printf(
      "\nMatmul plans for the products of the step table's MLPs (FP32, with the step's epilogues), "
      "microseconds (median of %lld runs, L2 flushed)\n",
      static_cast<long long>(a.runs));
  std::printf("%-42s %-18s %-4s %-15s %9s %-15s %9s %7s %s\n", "product", "m x n x k", "mode", "ember plan", "us",
              "fastest plan", "us", "ratio", "errors");
  int wrong = 0;
  std::vector<bench::TuningRow> product;  // the rows of the product being measured
  const auto flush = [&] {
    if (product.empty()) return;
    const auto chosen = std::find_if(product.begin(), product.end(), [](const auto& r) { return r.chosen; });
    const auto fastest = std::min_element(product.begin(), product.end(),
                                          [](const auto& x, const auto& y) { return x.microseconds < y.microseconds; });
    std::string errors;
    for (const bench::TuningRow& r : product)
      if (!(r.error <= bench::kFp32GemmTolerance)) {
        ++wrong;
        errors += fmt::format(" {} WRONG ({:.0e})", r.plan, r.error);
      }
    const bench::TuningRow& c = *chosen;
    std::printf("%-42s %-18s %-4s %-15s %9.1f %-15s %9.1f %7.2f%s\n", c.product.c_str(),
                fmt::format("{}x{}x{}", c.m, c.n, c.k).c_str(), c.mode.c_str(), c.plan.c_str(), c.microseconds,
                fastest->plan.c_str(), fastest->microseconds, c.microseconds / fastest->microseconds,
                errors.empty() ? " ok" : errors.c_str());
    std::fflush(stdout);
    product.clear();
  };
  bench::tuning_table({.runs = a.runs}, [&](const bench::TuningRow& r) {
    if (!product.empty() && product.front().product != r.product) flush();
    product.push_back(r);
    csv.add("tuning", fmt::format("{} {}x{}x{} {}", r.product, r.m, r.n, r.k, r.mode), r.plan, "us", r.microseconds,
            r.chosen ? "" : "ember plan", r.chosen ? std::nan("") : r.microseconds / product.front().microseconds);
  });
  flush();
  return wrong;
}

/// --width: only the cases of that width.
void keep_width(std::vector<bench::StepCase>& cases, std::int64_t width, const char* table) {
  if (width == 0) return;
  std::erase_if(cases, [&](const bench::StepCase& c) { return c.width != width; });
  if (cases.empty())
    throw InputError(fmt::format("--width {}: the {} table on this device has no such width", width, table));
}

void steps(const BenchArguments& a, Device device, bool gpu, CsvRows& csv) {
  std::vector<bench::StepCase> cases;
  std::vector<std::pair<std::string, BackendOptions>> variants;
  if (gpu) {
    for (std::int64_t width : {64, 256, 1024, 4096})
      for (std::int64_t batch : {1024, 8192})
        for (std::int64_t classes : {0, 10}) cases.push_back({4, width, batch, classes});
    variants = {{"graph", {.matmul = MatmulProvider::ember, .cuda_graph = true}},
                {"launches", {.matmul = MatmulProvider::ember, .cuda_graph = false}},
                {"cublas+graph", {.matmul = MatmulProvider::cublas, .cuda_graph = true}},
                {"tf32+graph", {.matmul = MatmulProvider::ember, .cuda_graph = true, .precision = Precision::tf32}}};
  } else {
    cases = {{4, 64, 32}, {4, 64, 32, 10}, {4, 256, 256}, {4, 256, 256, 10}};
    variants = {{"cpu", {}}, {"cpu-reference", {.cpu_reference = true}}};
  }
  keep_width(cases, a.width, "step");
  std::printf(
      "\nTraining step: MLP depth 4 (ReLU); task mse: one output, MSE, SGD momentum 0.9; softmax: 10 classes, "
      "softmax cross-entropy, Adam; median of %lld runs of 10 steps%s\n",
      static_cast<long long>(a.runs), gpu ? "" : ("; cpu: " + cpu_matmul_library()).c_str());
  std::printf("%-6s %-6s %-8s %-13s %11s %12s %13s %11s\n", "width", "batch", "task", "variant", "parameters",
              "step ms", "host us/step", "steps/s");
  for (const bench::StepCase& step : cases)
    for (const auto& [label, options] : variants) {
      std::unique_ptr<Backend> backend;
      try {
        backend = make_backend(device, options);
      } catch (const InputError& e) {  // e.g. TF32 on a GPU without tensor cores: the row says why
        std::printf("%-6lld %-6lld %-8s %-13s skipped: %s\n", static_cast<long long>(step.width),
                    static_cast<long long>(step.batch), step.classes > 0 ? "softmax" : "mse", label.c_str(), e.what());
        continue;
      }
      const bench::StepTiming t = bench::time_training_step(*backend, step, a.runs);
      std::printf("%-6lld %-6lld %-8s %-13s %11lld %12.4f %13.2f %11.0f\n", static_cast<long long>(step.width),
                  static_cast<long long>(step.batch), step.classes > 0 ? "softmax" : "mse", label.c_str(),
                  static_cast<long long>(t.parameters), t.median_step_ms, t.host_us_per_step,
                  1000.0 / t.median_step_ms);
      std::fflush(stdout);
      const std::string name = step.name();
      csv.add("step", name, label, "step ms", t.median_step_ms);
      csv.add("step", name, label, "host us/step", t.host_us_per_step);
    }
}

/// The CPU's threads: the training step and a predict of 100,000 rows with the default threads and
/// with one thread, under whatever load the machine has (bench/contention.py runs it idle and busy).
void threads_table(const BenchArguments& a, CsvRows& csv) {
  constexpr std::int64_t kPredictRows = 100'000;
  // The two variants alternate run by run (a run: 10 steps, or one predict), and each figure is the
  // median of its runs: a machine whose speed changes (other processes, the scheduler moving them
  // between cores, a virtual machine's neighbours) then weighs on both alike.
  const std::int64_t runs = 2 * a.runs, predict_rounds = std::max<std::int64_t>(5, a.runs / 4);
  std::vector<bench::StepCase> cases = {{4, 64, 32}, {4, 64, 256}, {4, 256, 32}, {4, 256, 256}, {4, 1024, 256}};
  keep_width(cases, a.width, "threads");
  std::printf(
      "\nCPU %s\n%s\nTraining step (MLP depth 4, ReLU, MSE, SGD momentum 0.9) and predict of %lld rows (widths 64 "
      "and 256), default threads against one thread, alternating run by run: medians of %lld runs each (predict: "
      "%lld)\n",
      describe_threads().c_str(), cpu_matmul_library().c_str(), static_cast<long long>(kPredictRows),
      static_cast<long long>(a.runs), static_cast<long long>(predict_rounds));
  std::printf("%-6s %-6s %13s %13s %7s %16s %16s %7s\n", "width", "batch", "step ms", "1-thread ms", "ratio",
              "predict ms", "1-thread ms", "ratio");
  const auto median = [](std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  // Even runs with the default threads, odd runs with one.
  const auto by_parity = [](std::int64_t run) { set_num_threads(run % 2 != 0 ? 1 : 0); };
  for (const bench::StepCase& step : cases) {
    const std::unique_ptr<Backend> backend = make_backend(Device::cpu, {});
    const std::int64_t steps_per_run = step.width >= 1024 ? 2 : 10;
    const bench::StepTiming timing =
        bench::time_training_step(*backend, step, runs, steps_per_run, nullptr, GradientSum::automatic, by_parity);
    set_num_threads(0);
    std::vector<double> by_default, one;
    for (std::size_t run = 0; run < timing.run_ms.size(); ++run)
      (run % 2 != 0 ? one : by_default).push_back(timing.run_ms[run]);
    const double step_default = median(by_default), step_one = median(one);
    // Predict alternates call by call.
    std::vector<double> predict_by_default, predict_one_thread;
    if (step.width <= 256 && step.batch == 256)
      for (std::int64_t round = 0; round < predict_rounds; ++round) {
        predict_by_default.push_back(bench::time_predict(Device::cpu, step, kPredictRows, 1));
        set_num_threads(1);
        predict_one_thread.push_back(bench::time_predict(Device::cpu, step, kPredictRows, 1));
        set_num_threads(0);
      }
    const double predict_default = predict_by_default.empty() ? std::nan("") : median(predict_by_default);
    const double predict_one = predict_one_thread.empty() ? std::nan("") : median(predict_one_thread);
    std::printf("%-6lld %-6lld %13.4f %13.4f %7.2f %16s %16s %7s\n", static_cast<long long>(step.width),
                static_cast<long long>(step.batch), step_default, step_one, step_default / step_one,
                figure(predict_default, "{:.2f}").c_str(), figure(predict_one, "{:.2f}").c_str(),
                figure(predict_default / predict_one, "{:.2f}").c_str());
    std::fflush(stdout);
    const std::string name = step.name();
    csv.add("threads", name, "default", "step ms", step_default, "1 thread", step_default / step_one);
    csv.add("threads", name, "1 thread", "step ms", step_one);
    if (!std::isnan(predict_default)) {
      const std::string predict =
          fmt::format("predict {} rows depth {} width {}", kPredictRows, step.depth, step.width);
      csv.add("threads", predict, "default", "predict ms", predict_default, "1 thread", predict_default / predict_one);
      csv.add("threads", predict, "1 thread", "predict ms", predict_one);
    }
  }
}

/// The data-parallel step (under mpirun): the all-reduce of the step's gradients, and the step of
/// one global batch on one rank (rank 0 alone, the others waiting) and on all ranks.
void comm(const BenchArguments& a, Device device, bool gpu, CsvRows& csv) {
  Communicator& world = *distributed::world();
  const bool lead = world.rank() == 0;
  const int ranks = world.size();
  if (ranks == 1) {
    std::printf(
        "\nData-parallel step: one process; start it under the launcher to measure N ranks: "
        "mpirun -np N ember bench --tables comm\n");
    return;
  }
  std::vector<bench::StepCase> cases;
  if (gpu)
    cases = {{4, 256, 8192}, {4, 1024, 8192}, {4, 4096, 8192}};
  else
    cases = {{4, 64, 256}, {4, 256, 1024}, {4, 1024, 1024}};
  keep_width(cases, a.width, "comm");
  const auto slowest = [&](double value) {  // a step waits for the slowest rank
    world.all_reduce({&value, 1}, Reduction::max);
    return value;
  };
  const GradientSum gradient_sum = parse_comm(a.comm);
  for (const bench::StepCase& step : cases) {
    const std::unique_ptr<Backend> backend = make_backend(device, {});
    bench::StepTiming one{};
    if (lead) one = bench::time_training_step(*backend, step, a.runs);
    double parameters = static_cast<double>(one.parameters);
    world.all_reduce({&parameters, 1}, Reduction::max);  // the others wait here while rank 0 runs alone
    const bench::StepTiming together = bench::time_training_step(*backend, step, a.runs, 10, &world, gradient_sum);
    const double together_ms = slowest(together.median_step_ms);
    const bench::SumTiming sum =
        bench::time_gradient_sum(world, together.parameters, a.runs, backend.get(), gradient_sum);
    if (!lead) continue;
    if (&step == &cases.front()) {
      std::printf(
          "\nData-parallel step over %d ranks (%s): MLP depth 4 (ReLU), MSE, SGD momentum 0.9; medians of %lld runs "
          "of 10 steps, the slowest rank's\n",
          ranks, together.data_parallel.c_str(), static_cast<long long>(a.runs));
      std::printf("%-6s %-6s %11s %10s %13s %12s %12s %9s %11s\n", "width", "batch", "parameters", "MB reduced",
                  "all-reduce ms", "1 rank ms", "N ranks ms", "speed-up", "comm share");
    }
    std::printf("%-6lld %-6lld %11lld %10.3f %13.4f %12.4f %12.4f %9.2f %10.0f%%\n", static_cast<long long>(step.width),
                static_cast<long long>(step.batch), static_cast<long long>(together.parameters), sum.megabytes,
                sum.median_ms, one.median_step_ms, together_ms, one.median_step_ms / together_ms,
                100.0 * sum.median_ms / together_ms);
    std::fflush(stdout);
    const std::string name = step.name(), variant = fmt::format("{} ranks", ranks);
    csv.add("comm", name, variant, "all-reduce ms", sum.median_ms);
    csv.add("comm", name, "1 rank", "step ms", one.median_step_ms);
    csv.add("comm", name, variant, "step ms", together_ms, "1 rank", one.median_step_ms / together_ms);
  }
}

void run_bench(const BenchArguments& a) {
  if (a.runs < 20) throw InputError(fmt::format("--runs {}: at least 20 runs make a median", a.runs));
  const std::set<std::string> known{"gemm", "memory", "tuning", "step", "comm", "threads"};
  std::set<std::string> tables;
  for (const std::string& table : split_list(a.tables, "--tables")) {
    if (!known.contains(table))
      throw InputError(
          fmt::format("--tables: unknown table '{}'; use gemm, memory, tuning, step, comm and threads", table));
    tables.insert(table);
  }
  if (tables.empty()) throw InputError("--tables: name at least one of gemm, memory, tuning, step, comm, threads");
  if (tables != std::set<std::string>{"comm"}) require_one_process("ember bench (but for --tables comm)");
  if (!a.csv.empty()) check_output_path(a.csv, "--csv");
  const Device device = parse_device_flag(a.device);
  std::string notice;
  const bool gpu = make_backend(device, {}, &notice)->device() == Device::cuda;
  if (!notice.empty() && distributed::world()->rank() == 0) std::fprintf(stderr, "note: %s\n", notice.c_str());
  if (!gpu && (tables.contains("gemm") || tables.contains("memory") || tables.contains("tuning"))) {
    if (a.tables != BenchArguments{}.tables) {  // asked for by name: say why it cannot be done
      const std::string reason = cuda_unavailable_reason();
      throw InputError(fmt::format("--tables {}: the gemm, memory and tuning tables run on a GPU{}", a.tables,
                                   reason.empty() ? "; drop --device cpu" : ", and " + reason));
    }
    tables = {"step"};  // the default on a CPU-only machine
  }

  CsvRows csv;
  int wrong = tables.contains("gemm") ? gemm(a, csv) : 0;
  if (tables.contains("memory")) memory(a, csv);
  if (tables.contains("tuning")) wrong += tuning(a, csv);
  if (tables.contains("step")) steps(a, device, gpu, csv);
  if (tables.contains("comm")) comm(a, device, gpu, csv);
  if (tables.contains("threads")) threads_table(a, csv);
  if (!a.csv.empty() && distributed::world()->rank() == 0) write_file_atomically(a.csv, csv.text());
  if (wrong > 0)  // a benchmark of wrong results is a failure, reported after all the figures
    throw Error(
        fmt::format("ember bench: {} matmul result(s) differ from their reference beyond tolerance (marked "
                    "WRONG above)",
                    wrong));
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto arguments = std::make_shared<BenchArguments>();
  CLI::App* command = app.add_subcommand(
      "bench", "Measure kernels against cuBLAS, CUB and the copy bandwidth (GPU), and training steps");
  command->add_option("--device", arguments->device, "auto, cpu or cuda")->capture_default_str();
  command
      ->add_option("--tables", arguments->tables,
                   "Comma-separated: gemm, memory, tuning (GPU only), step; comm (the data-parallel step, alone "
                   "under mpirun -np N); threads (CPU: default threads against one thread, step and predict)")
      ->capture_default_str();
  command->add_option("--runs", arguments->runs, "Timed runs per figure (median; at least 20)")->capture_default_str();
  add_comm_option(*command, arguments->comm, "--tables comm: where the ranks sum their gradients");
  command->add_option("--width", arguments->width,
                      "Only the step-table rows of this width (CPU: 64, 256; GPU: 64 to 4096)");
  command->add_option("--csv", arguments->csv,
                      "Also write every figure to this CSV file (table,case,variant,metric,value,yardstick,ratio)");
  command->callback([arguments] { run_bench(*arguments); });
}

}  // namespace ember::cli
