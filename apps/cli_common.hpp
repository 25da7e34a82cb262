#pragma once
// Pieces shared by the `ember` subcommands: argument checks, output files, exit codes.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "ember/error.hpp"

namespace ember::cli {

/// Exit codes (README.md, "Exit codes").
enum ExitCode { exit_ok = 0, exit_internal = 1, exit_input = 2, exit_diverged = 3 };

/// Writes content to path through a temporary file and a rename, so a failure never leaves a
/// partial file. Throws InputError when the file cannot be written.
void write_file_atomically(const std::string& path, const std::string& content);
/// Throws InputError (naming the flag) when path's directory does not exist, before any work starts.
void check_output_path(const std::string& path, const std::string& flag);
/// Splits "a,b,c" into its parts (empty parts dropped).
std::vector<std::string> split_list(const std::string& text);
/// The --delimiter value: one character, or "tab" (or "\t") for a tab; throws InputError.
char parse_delimiter(const std::string& text);
/// Formats a float with enough digits to read back the same value.
std::string format_number(double value);

/// Adds the subcommands to app; each sets a callback that runs it.
void add_train_command(CLI::App& app);
void add_predict_commands(CLI::App& app);
void add_info_commands(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace ember::cli
