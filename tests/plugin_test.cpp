// The CUDA backend as a plugin: the library and the CLI name no CUDA library, and a plugin that is
// missing, foreign or not a plugin leaves the CPU fully usable with the reason said once.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli_support.hpp"
#include "ember/backend.hpp"

namespace ember::testing {
namespace {

std::string shared_libraries_of(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(("ldd " + path + " 2>&1").c_str(), "r"), pclose);
  std::string text;
  char chunk[4096];
  while (pipe != nullptr && std::fgets(chunk, sizeof chunk, pipe.get()) != nullptr) text += chunk;
  return text;
}

TEST(Plugin, LibraryAndCliNameNoCudaLibrary) {
  for (const char* path : {EMBER_LIBRARY_PATH, EMBER_CLI_PATH}) {
    const std::string libraries = shared_libraries_of(path);
    ASSERT_NE(libraries.find("libc.so"), std::string::npos) << "ldd did not list " << path << ":\n" << libraries;
    for (const char* cuda : {"libcudart", "libcublas", "libcuda.so", "libnvrtc"})
      EXPECT_EQ(libraries.find(cuda), std::string::npos) << path << " needs " << cuda << ":\n" << libraries;
  }
}

TEST(Plugin, InfoNamesThePluginBesideTheLibrary) {
  if (!cuda_compiled()) GTEST_SKIP() << "a CPU-only build has no CUDA plugin";
  const CliRun info = run_ember("info");
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("cuda: plugin /"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("libember_cuda.so\n"), std::string::npos) << info.out;
}

/// With EMBER_CUDA_PLUGIN set to plugin: `info` says why, `--device cuda` exits 2 with the reason,
/// `--device auto` trains on the CPU with one notice, and `--quiet` says nothing.
void expect_cpu_only(const std::string& plugin, const std::string& reason) {
  const std::string environment = "EMBER_CUDA_PLUGIN=" + plugin;
  const CliRun info = run_ember_with_environment(environment, "info");
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("cpu: available"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("cuda: unavailable: " + reason), std::string::npos) << info.out;

  const std::string data = good_csv();
  const CliRun cuda =
      run_ember_with_environment(environment, "train --device cuda --epochs 1 --data " + data + " --target y");
  EXPECT_EQ(cuda.exit_code, 2) << cuda.err;
  EXPECT_NE(cuda.err.find("no usable GPU"), std::string::npos) << cuda.err;
  EXPECT_NE(cuda.err.find(reason), std::string::npos) << cuda.err;

  const CliRun automatic = run_ember_with_environment(environment, "train --epochs 2 --data " + data + " --target y");
  EXPECT_EQ(automatic.exit_code, 0) << automatic.err;
  const auto notice = automatic.err.find("note: no usable GPU (" + reason);
  EXPECT_NE(notice, std::string::npos) << automatic.err;
  EXPECT_EQ(automatic.err.find("note: no usable GPU", notice + 1), std::string::npos) << automatic.err;

  const CliRun quiet =
      run_ember_with_environment(environment, "train --quiet --epochs 2 --data " + data + " --target y");
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
}

TEST(Plugin, MissingPluginLeavesTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "a CPU-only build has no CUDA plugin";
  const std::string nowhere = dir() + "/nowhere/libember_cuda.so";
  expect_cpu_only(nowhere, "the CUDA plugin could not be loaded: " + nowhere);
}

TEST(Plugin, PluginOfAnotherBuildIsRefused) {
  if (!cuda_compiled()) GTEST_SKIP() << "a CPU-only build has no CUDA plugin";
  expect_cpu_only(EMBER_FOREIGN_PLUGIN, std::string("the CUDA plugin ") + EMBER_FOREIGN_PLUGIN +
                                            " comes from another build of Ember (build another-build");
}

TEST(Plugin, LibraryThatIsNoPluginIsRefused) {
  if (!cuda_compiled()) GTEST_SKIP() << "a CPU-only build has no CUDA plugin";
  expect_cpu_only(EMBER_LIBRARY_PATH, std::string(EMBER_LIBRARY_PATH) + " is not an Ember CUDA plugin");
}

}  // namespace
}  // namespace ember::testing
