// `mpiexec -n N ember train`: the ranks train as one process would, rank 0 alone prints and writes,
// and an error or a dead rank ends the whole run promptly. Skipped in builds without MPI.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "cli_support.hpp"
#include "ember/ember.hpp"
#include "ember/testing.hpp"

namespace ember::testing {
namespace {

#ifdef EMBER_MPIEXEC
/// Runs command under the launcher with ranks processes (as root too, as CI runs).
CliRun run_launched(int ranks, const std::string& command) {
  const std::string out = dir() + "/stdout.txt", err = dir() + "/stderr.txt";
  const std::string line = std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ") +
                           EMBER_MPIEXEC + " -n " + std::to_string(ranks) + " " + EMBER_MPIEXEC_FLAGS + " " + command +
                           " >" + out + " 2>" + err + " </dev/null";
  const int status = std::system(line.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}
#define EMBER_REQUIRE_MPI()
#else
#define EMBER_REQUIRE_MPI() GTEST_SKIP() << "this build has no MPI"
#endif

TEST(CliDistributed, RanksTrainAsOneProcessAndRankZeroWrites) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  std::string text = "a,b,c,y\n";
  for (int i = 0; i < 301; ++i) {
    const double a = (i % 13) * 0.1, b = (i % 7) * 0.3 - 1, c = (i % 5) * 0.2;
    text += fmt::format("{},{},{},{}\n", a, b, c, a * b - 2 * c + 1);
  }
  const std::string data = file_with("data.csv", text);
  const std::string flags = " train --device cpu --layers 16,16 --epochs 4 --batch-size 24 --val-split 0.2 --data " +
                            data + " --target y --optimizer adam --lr 0.01";
  const std::string alone = dir() + "/alone.safetensors";
  ASSERT_EQ(run_ember(flags + " --quiet --save " + alone).exit_code, 0);
  for (int ranks : {2, 3}) {
    const std::string together = dir() + "/ranks" + std::to_string(ranks) + ".safetensors";
    const std::string history = dir() + "/history" + std::to_string(ranks) + ".csv";
    const CliRun run =
        run_launched(ranks, std::string(EMBER_CLI_PATH) + flags + " --save " + together + " --history " + history);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(count(run.out, "Saved the model to"), 1u) << run.out;
    EXPECT_EQ(count(run.out, "Training on"), 1u) << run.out;
    EXPECT_TRUE(std::filesystem::exists(history));
    const Sequential a = Sequential::load(alone), b = Sequential::load(together);
    EXPECT_LT(relative_error(b.parameters(), a.parameters()), 1e-6) << ranks << " ranks";
  }
#endif
}

TEST(CliDistributed, AnErrorOnEveryRankIsPrintedOnceAndEndsTheRun) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const auto start = std::chrono::steady_clock::now();
  const CliRun run =
      run_launched(2, std::string(EMBER_CLI_PATH) + " train --data " + dir() + "/missing.csv --target y");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_EQ(count(run.err, "error: "), 1u) << run.err;
  EXPECT_NE(run.err.find("missing.csv: cannot open the file"), std::string::npos) << run.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  const CliRun predict = run_launched(2, std::string(EMBER_CLI_PATH) + " predict --model x --data y");
  EXPECT_EQ(predict.exit_code, 2);
  EXPECT_NE(predict.err.find("ember predict runs as one process, not 2"), std::string::npos) << predict.err;
#endif
}

TEST(CliDistributed, AKilledRankEndsTheRun) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  std::string text = "a,b,y\n";
  for (int i = 0; i < 2000; ++i) text += fmt::format("{},{},{}\n", i % 17, i % 11, i % 5);
  const std::string data = file_with("long.csv", text);
  // Rank 1's ember is killed half a second in; rank 0 would wait for it at the next step forever.
  const std::string script = "'" + std::string(EMBER_CLI_PATH) + " train --device cpu --quiet --epochs 100000 --data " +
                             data + " --target y & pid=$!; if [ \"${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}\" = 1 ]; " +
                             "then sleep 0.5; kill -9 $pid; fi; wait $pid'";
  const auto start = std::chrono::steady_clock::now();
  const CliRun run = run_launched(2, "sh -c " + script);
  EXPECT_NE(run.exit_code, 0) << run.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
#endif
}

}  // namespace
}  // namespace ember::testing
