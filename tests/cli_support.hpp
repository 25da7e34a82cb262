#pragma once
// Running the `ember` binary that EMBER_CLI_PATH names, in a folder of the running test's own.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_support.hpp"

namespace ember::testing {

struct CliRun {
  int exit_code;
  std::string out, err;
};

/// The running test's own folder, so that tests run in parallel (ctest -j) never share a file.
inline std::string dir() {
  const std::string d = work_directory() + "/cli/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::create_directories(d);
  return d;
}

inline std::string slurp(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

/// Runs a shell command line with standard input from input_path; exit_code -1 where it did not
/// exit (a signal).
inline CliRun run_shell(const std::string& line, const std::string& input_path = "/dev/null") {
  const std::string out = dir() + "/stdout.txt", err = dir() + "/stderr.txt";
  const std::string command = line + " >" + out + " 2>" + err + " <" + input_path;
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

#ifdef EMBER_MPIEXEC
/// The shell line that starts command under the launcher with ranks processes (as root too, as
/// CI runs).
inline std::string launch_line(int ranks, const std::string& command) {
  return fmt::format("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 {} -n {} {} {}",
                     EMBER_MPIEXEC, ranks, EMBER_MPIEXEC_FLAGS, command);
}

inline CliRun run_launched(int ranks, const std::string& command) {
  return run_shell(launch_line(ranks, command));
}

inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// The run ended with exit_code and printed one error, which contains message.
inline void expect_one_error(const CliRun& run, int exit_code, const std::string& message) {
  EXPECT_EQ(run.exit_code, exit_code) << run.err;
  EXPECT_EQ(count(run.err, "error: "), 1u) << run.err;
  EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
}
#endif

/// Runs `ember arguments` with standard input from input_path, after environment assignments
/// ("NAME=value ...", may be empty).
inline CliRun run_ember_with_environment(const std::string& environment, const std::string& arguments,
                                         const std::string& input_path = "/dev/null") {
  return run_shell(
      (environment.empty() ? "" : "env " + environment + " ") + std::string(EMBER_CLI_PATH) + " " + arguments,
      input_path);
}

/// Runs `ember arguments` with standard input from input_path.
inline CliRun run_ember(const std::string& arguments, const std::string& input_path = "/dev/null") {
  return run_ember_with_environment("", arguments, input_path);
}

/// The run fails with exit code 2 and an error line containing message.
inline void expect_input_error(const std::string& arguments, const std::string& message) {
  const CliRun run = run_ember(arguments);
  EXPECT_EQ(run.exit_code, 2) << arguments << "\n" << run.err;
  EXPECT_NE(run.err.find("error: " + message), std::string::npos) << arguments << "\nstderr: " << run.err;
}

inline std::string file_with(const std::string& name, const std::string& content) {
  const std::string path = dir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

/// y = 2 x0 - x1 + 1 on 40 rows.
inline std::string good_csv() {
  std::string text = "x0,x1,y\n";
  for (int i = 0; i < 40; ++i) {
    const double x0 = (i % 7) * 0.3, x1 = (i % 5) * 0.7 - 1;
    text += std::to_string(x0) + "," + std::to_string(x1) + "," + std::to_string(2 * x0 - x1 + 1) + "\n";
  }
  return file_with("good.csv", text);
}

}  // namespace ember::testing
