#pragma once
// Pieces shared by the `ember` subcommands: argument checks, output files, exit codes.
#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ember/backend.hpp"
#include "ember/data.hpp"
#include "ember/distributed.hpp"
#include "ember/error.hpp"

namespace ember::cli {

/// Exit codes (README.md, "Exit codes").
enum ExitCode { exit_ok = 0, exit_internal = 1, exit_input = 2, exit_diverged = 3, exit_interrupted = 130 };
/// Thrown once an interrupted command has written what it keeps and said so: main exits 130.
struct Interrupted {};

/// Throws InputError (naming the flag) when path cannot be written (a missing or read-only folder,
/// a folder given as the file), before any work starts. Outputs are written with the library's
/// write_file_atomically.
void check_output_path(const std::string& path, const std::string& flag);
/// The --comment value: one character, or '\0' for none.
char parse_comment(const std::string& text);
/// Adds --delimiter and --comment, the options of every command that reads a CSV file.
void add_csv_options(CLI::App& command, std::string& delimiter, std::string& comment);
/// Splits flag's value "a,b,c" into its parts; an empty part ("a,,b", "a,") is an InputError.
std::vector<std::string> split_list(const std::string& text, const std::string& flag);
/// The --delimiter value: one character, or "tab" (or "\t") for a tab; throws InputError.
char parse_delimiter(const std::string& text);
/// Adds --comm (auto, nccl or mpi: where data-parallel ranks sum their gradients) to command;
/// purpose starts its help. parse_comm turns its value into FitOptions::gradient_sum.
void add_comm_option(CLI::App& command, std::string& value, const std::string& purpose);
GradientSum parse_comm(const std::string& text);
/// The --device value, any case ("CUDA", "gpu"); an error quotes text as typed. Device::cuda
/// without a usable GPU is refused here, naming the flag as the user wrote it.
Device parse_device_flag(const std::string& text);
/// The --seed value: 0 to 2^64 - 1, digits only (no sign).
std::uint64_t parse_seed(const std::string& text);
/// A library message in the command line's words: each setting the library names (SGD::lr,
/// ColumnSpec::ignore, Device::cuda, ...) becomes the flag that sets it. The one place library
/// settings meet flags: main passes every error through it.
std::string in_flags(std::string message);
/// A flag of train's that sets a schedule's setting: for each schedule it applies to (by name), the
/// setting it sets. A shared flag (--epochs) is not the schedule's alone. The one table that
/// parsing and in_flags' messages use.
struct ScheduleFlag {
  const char* flag;
  std::vector<std::pair<std::string, std::string>> settings;
  bool shared = false;
};
const std::vector<ScheduleFlag>& schedule_flags();
/// A flag's double as a float32; InputError beyond float32's range.
float to_float(double value, const std::string& flag);
/// Reads --data: a CSV file, or standard input for "-".
CsvTable read_data(const std::string& data, const CsvOptions& options);
/// Formats a float with enough digits to read back the same value.
std::string format_number(double value);
/// A CSV field: quoted (with doubled quotes) when it holds the delimiter, a quote or a line break.
std::string csv_field(const std::string& text, char delimiter = ',');
/// A duration for people: "0.42ms", "12.3ms", "1.25s".
std::string format_seconds(double seconds);

/// Prints "error: line" and returns code. Under a launcher with several ranks it ends them all
/// with code: rank 0 at once, another rank after giving rank 0 the time to, so that an error
/// every rank meets is printed once and one rank's error ends the run rather than hanging it.
int report_error(const std::string& line, int code);
/// Throws InputError when a launcher started several processes: command runs as one.
void require_one_process(const char* command);

/// Adds the subcommands to app; each sets a callback that runs it.
void add_train_command(CLI::App& app);
void add_predict_commands(CLI::App& app);
void add_info_commands(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace ember::cli
