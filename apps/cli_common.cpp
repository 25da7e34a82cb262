#include "cli_common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include "ember/losses.hpp"
#include "ember/optimizers.hpp"
#include "ember/schedules.hpp"

namespace ember::cli {

void check_output_path(const std::string& path, const std::string& flag) {
  if (path.empty()) throw InputError(fmt::format("{} needs a file name", flag));
  try {
    check_writable(path);
  } catch (const InputError& error) {
    throw InputError(fmt::format("{} {}", flag, error.what()));
  }
}

char parse_comment(const std::string& text) {
  if (text.empty()) return '\0';
  if (text.size() != 1 || text == "\"" || text == "\n" || text == "\r")
    throw InputError(
        fmt::format("--comment {}: give one character that starts comment lines, such as #", printable(text)));
  return text[0];
}

void add_csv_options(CLI::App& command, std::string& delimiter, std::string& comment) {
  command.add_option("--delimiter", delimiter, "CSV field separator (one character, or 'tab')")->capture_default_str();
  command.add_option("--comment", comment,
                     "Skip lines whose first non-blank character is this one (e.g. '#'); whole lines only");
}

std::vector<std::string> split_list(const std::string& text, const std::string& flag) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = text.find(',', begin);
    const std::string part = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (part.empty())
      throw InputError(
          fmt::format("{} {}: an empty item; separate the names or numbers with single commas", flag, printable(text)));
    parts.push_back(part);
    if (end == std::string::npos) return parts;
    begin = end + 1;
  }
}

Device parse_device_flag(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  Device device = Device::automatic;
  try {
    device = parse_device(lower);
  } catch (const InputError&) {
    throw InputError(fmt::format("--device {}: unknown device; use auto, cpu or cuda", printable(text)));
  }
  if (device == Device::cuda) {
    const std::string reason = cuda_unavailable_reason();
    if (!reason.empty())
      throw InputError(
          fmt::format("--device {}: no usable GPU: {}; use --device cpu or --device auto", printable(text), reason));
  }
  return device;
}

std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size())
    throw InputError(fmt::format("--seed {}: must be a whole number from 0 to {}", printable(text),
                                 std::numeric_limits<std::uint64_t>::max()));
  return seed;
}

const std::vector<ScheduleFlag>& schedule_flags() {
  static const std::vector<ScheduleFlag> table = {
      {"--step-epochs", {{StepDecay::kName, "step_epochs"}}},
      {"--decay", {{StepDecay::kName, "gamma"}, {ReduceOnPlateau::kName, "factor"}}},
      {"--warmup-epochs", {{CosineDecay::kName, "warmup_epochs"}}},
      {"--min-lr-scale", {{CosineDecay::kName, "min_scale"}, {ReduceOnPlateau::kName, "min_scale"}}},
      {"--plateau-patience", {{ReduceOnPlateau::kName, "patience"}}},
      {"--epochs", {{CosineDecay::kName, "epochs"}}, true}};
  return table;
}

std::string in_flags(std::string message) {
  // The library names its settings as Type::member (and a few values); each token here is what
  // the command line calls it. Longer tokens first, so none is replaced inside another.
  static const std::vector<std::pair<std::string, std::string>> flags = [] {
    std::vector<std::pair<std::string, std::string>> table = {
        {"Huber::delta", "--huber-delta"},
        {"CrossEntropy::label_smoothing", "--label-smoothing"},
        {"EarlyStopping::patience", "--early-stopping"},
        {"EarlyStopping::min_delta", "--min-delta"},
        {"FitOptions::checkpoint_every", "--checkpoint-every"},
        {"FitOptions::sample_weight", "--weight"},
        {"FitOptions::normalize = false", "--no-normalize"},
        {"ColumnSpec::targets", "--target"},
        {"ColumnSpec::ignore", "--ignore"},
        {"ColumnSpec::one_hot", "--one-hot"},
        {"ColumnSpec::embed", "--embed"},
        {"ColumnSpec::bins", "--bins"},
        {"ColumnSpec::numeric", "--numeric"},
        {"ColumnSpec::missing", "--missing"},
        {"CsvOptions::delimiter", "--delimiter"},
        {"CsvOptions::comment", "--comment"},
        {"the loss CrossEntropy", "--loss crossentropy"},
        {"Sequential::save", "ember train --save"},
        {"Dense::units", "--layers"},
        {"CompileOptions::clip_norm", "--clip-norm"},
        {"FitOptions::batch_size", "--batch-size"},
        {"FitOptions::validation_split", "--val-split"},
        {"BackendOptions::precision", "--precision"},
        {"GradientSum::nccl", "--comm nccl"},
        {"FitOptions::deterministic_reduction", "--deterministic-reduce"},
        {"Device::cuda", "--device cuda"},
        {"Device::cpu", "--device cpu"},
        {"Device::automatic", "--device auto"}};
    // Every optimizer's settings: the flag of the setting's name (weight_decay: --weight-decay).
    for (const OptimizerKind& kind : optimizer_kinds())
      for (std::string setting : kind.settings) {
        const std::string token = kind.class_name + "::" + setting;
        std::replace(setting.begin(), setting.end(), '_', '-');
        table.emplace_back(token, "--" + setting);
      }
    // Every schedule's settings, by the flag that sets each.
    const std::vector<ScheduleKind> schedules = schedule_kinds();
    for (const ScheduleFlag& entry : schedule_flags())
      for (const auto& [schedule, setting] : entry.settings)
        for (const ScheduleKind& kind : schedules)
          if (kind.name == schedule) table.emplace_back(kind.class_name + "::" + setting, entry.flag);
    // A loss's setting without a flag of its own: its place in --loss's spelling.
    for (const LossKind& kind : loss_kinds())
      for (const std::string& setting : kind.settings) {
        const std::string token = kind.keras_name + "::" + setting;
        if (std::none_of(table.begin(), table.end(), [&](const auto& entry) { return entry.first == token; }))
          table.emplace_back(token, fmt::format("--loss {}'s {}", kind.name, setting));
      }
    std::sort(table.begin(), table.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    return table;
  }();
  for (const auto& [token, flag] : flags)
    for (std::size_t at = message.find(token); at != std::string::npos; at = message.find(token, at + flag.size()))
      message.replace(at, token.size(), flag);
  return message;
}

float to_float(double value, const std::string& flag) {
  if (std::isfinite(value) && std::abs(value) > std::numeric_limits<float>::max())
    throw InputError(fmt::format("{} {}: beyond float32's range (about 3.4e38)", flag, value));
  return static_cast<float>(value);
}

CsvTable read_data(const std::string& data, const CsvOptions& options) {
  if (data != "-") return read_csv(data, options);
  std::ostringstream text;
  text << std::cin.rdbuf();
  return parse_csv(text.str(), "<stdin>", options);
}

std::string csv_field(const std::string& text, char delimiter) {
  if (text.find_first_of(std::string{delimiter, '"', '\n', '\r'}) == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

std::string format_seconds(double seconds) {
  if (seconds >= 1.0) return fmt::format("{:.2f}s", seconds);
  return fmt::format("{:.3g}ms", seconds * 1e3);
}

char parse_delimiter(const std::string& text) {
  if (text == "\\t" || text == "tab") return '\t';
  if (text.size() != 1) throw InputError(fmt::format("--delimiter '{}' must be one character (or 'tab')", text));
  return text[0];
}

std::string format_number(double value) {
  return fmt::format("{}", static_cast<float>(value));
}

void add_comm_option(CLI::App& command, std::string& value, const std::string& purpose) {
  command
      .add_option("--comm", value,
                  purpose +
                      ": nccl (on the GPUs, inside the step's CUDA graph), mpi (on the host), or auto (nccl where "
                      "every rank has a GPU of its own and NCCL)")
      ->check(CLI::IsMember({"auto", "nccl", "mpi"}))
      ->capture_default_str();
}

GradientSum parse_comm(const std::string& text) {
  if (text == "nccl") return GradientSum::nccl;
  if (text == "mpi") return GradientSum::host;
  return GradientSum::automatic;
}

int report_error(const std::string& line, int code) {
  std::shared_ptr<Communicator> world;
  try {
    world = distributed::world();
  } catch (const Error&) {  // several processes but no MPI: each reports for itself
  }
  std::fflush(stdout);
  if (world && world->size() > 1) {
    if (world->rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
    std::fprintf(stderr, "error: %s\n", line.c_str());
    std::fflush(stderr);
    world->abort(code);
  }
  std::fprintf(stderr, "error: %s\n", line.c_str());
  return code;
}

void require_one_process(const char* command) {
  const int size = distributed::world()->size();
  if (size > 1)
    throw InputError(fmt::format("{} runs as one process, not {}: start it without mpirun or srun", command, size));
}

}  // namespace ember::cli
