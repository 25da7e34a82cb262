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
/// 2000 rows: many epochs take long enough to be interrupted.
std::string long_csv() {
  std::string text = "a,b,y\n";
  for (int i = 0; i < 2000; ++i) text += fmt::format("{},{},{}\n", i % 17, i % 11, i % 5);
  return file_with("long.csv", text);
}
/// rows of y = a * b - 2 * c + 1 on a grid of a, b and c.
std::string grid_csv(const std::string& name, int rows) {
  std::string text = "a,b,c,y\n";
  for (int i = 0; i < rows; ++i) {
    const double a = (i % 13) * 0.1, b = (i % 7) * 0.3 - 1, c = (i % 5) * 0.2;
    text += fmt::format("{},{},{},{}\n", a, b, c, a * b - 2 * c + 1);
  }
  return file_with(name, text);
}
#define EMBER_REQUIRE_MPI()
#else
#define EMBER_REQUIRE_MPI() GTEST_SKIP() << "this build has no MPI"
#endif

TEST(CliDistributed, RanksTrainAsOneProcessAndRankZeroWrites) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const std::string data = grid_csv("data.csv", 301);
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
  // --deterministic-reduce: two runs on 3 ranks give the same bits.
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    const std::string path = dir() + "/deterministic" + std::to_string(run) + ".safetensors";
    const CliRun launched =
        run_launched(3, std::string(EMBER_CLI_PATH) + flags + " --deterministic-reduce --quiet --save " + path);
    ASSERT_EQ(launched.exit_code, 0) << launched.err;
    runs.push_back(Sequential::load(path).parameters());
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_LT(relative_error(runs[0], Sequential::load(alone).parameters()), 1e-6);
#endif
}

TEST(CliDistributed, BatchNormTrainsOnThreeRanksAsInOneProcess) {
  // Its statistics over every rank's rows of a batch: 241 training rows (of 302) in batches of 24
  // and a last batch of one row, which two of the three ranks sit out.
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const std::string data = grid_csv("normalized.csv", 302);
  const std::string flags =
      " train --device cpu --layers 16,batchnorm,16,batchnorm:0.3 --epochs 3 --batch-size 24 "
      "--val-split 0.2 --data " +
      data + " --target y --optimizer adam --lr 0.01 --quiet --save ";
  const std::string alone = dir() + "/normalized_alone.safetensors", together = dir() + "/normalized_ranks.safetensors";
  ASSERT_EQ(run_ember(flags + alone).exit_code, 0);
  const CliRun run = run_launched(3, std::string(EMBER_CLI_PATH) + flags + together);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Sequential a = Sequential::load(alone), b = Sequential::load(together);
  EXPECT_LT(relative_error(b.parameters(), a.parameters()), 1e-5);
  EXPECT_LT(relative_error(b.tensor(1, "running_mean"), a.tensor(1, "running_mean")), 1e-5);
#endif
}

TEST(CliDistributed, AWeightColumnTrainsOnTwoRanksAsInOneProcess) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  std::string text = "a,b,w,y\n";
  for (int i = 0; i < 203; ++i) {
    const double a = (i % 13) * 0.1, b = (i % 7) * 0.3 - 1;
    text += fmt::format("{},{},{},{}\n", a, b, (i * 5) % 4, a * b + 1);
  }
  const std::string data = file_with("weighted.csv", text);
  const std::string flags = " train --device cpu --layers 8 --epochs 3 --batch-size 16 --val-split 0.2 --data " + data +
                            " --target y --weight w --optimizer adam --lr 0.01 --quiet --save ";
  const std::string alone = dir() + "/weighted_alone.safetensors", together = dir() + "/weighted_ranks.safetensors";
  ASSERT_EQ(run_ember(flags + alone).exit_code, 0);
  const CliRun run = run_launched(2, std::string(EMBER_CLI_PATH) + flags + together);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_LT(relative_error(Sequential::load(together).parameters(), Sequential::load(alone).parameters()), 1e-6);
#endif
}

TEST(CliDistributed, AnErrorOnEveryRankIsPrintedOnceAndEndsTheRun) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const auto start = std::chrono::steady_clock::now();
  const CliRun run =
      run_launched(2, std::string(EMBER_CLI_PATH) + " train --data " + dir() + "/missing.csv --target y");
  expect_one_error(run, 2, "missing.csv: cannot open the file");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  const CliRun predict = run_launched(2, std::string(EMBER_CLI_PATH) + " predict --model x --data y");
  EXPECT_EQ(predict.exit_code, 2);
  EXPECT_NE(predict.err.find("ember predict runs as one process, not 2"), std::string::npos) << predict.err;
#endif
}

TEST(CliDistributed, AKilledRankEndsTheRun) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const std::string data = long_csv();
  // Rank 1's ember is killed half a second in; rank 0 would wait for it at the next step forever.
  const std::string script = fmt::format(
      "sh -c '{} train --device cpu --quiet --epochs 100000 --val-split 0 --data {} --target y & pid=$!; "
      "if [ \"${{OMPI_COMM_WORLD_RANK:-${{PMI_RANK:-0}}}}\" = 1 ]; then sleep 0.5; kill -9 $pid; fi; wait $pid'",
      EMBER_CLI_PATH, data);
  const auto start = std::chrono::steady_clock::now();
  const CliRun run = run_launched(2, script);
  EXPECT_NE(run.exit_code, 0) << run.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
#endif
}

TEST(CliDistributed, CtrlCToTheLauncherStopsEveryRankAndRankZeroSavesTheCompletedEpochs) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const std::string data = long_csv(), model = dir() + "/interrupted.safetensors";
  std::filesystem::remove(model);
  // The launcher passes Ctrl-C on as SIGTERM, which Ember handles as Ctrl-C: every rank stops at
  // the same batch, and rank 0 writes the epochs completed before the launcher ends the job.
  const auto start = std::chrono::steady_clock::now();
  const CliRun run = run_shell(fmt::format(
      "timeout 60 sh -c '{} & pid=$!; sleep 2; kill -INT $pid; wait $pid'",
      launch_line(
          2, fmt::format("{} train --device cpu --quiet --epochs 100000 --val-split 0 --data {} --target y --save {}",
                         EMBER_CLI_PATH, data, model))));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  ASSERT_NE(run.exit_code, -1) << "ended by a signal";
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.exit_code, 124) << "the launcher did not end the run";
  // What rank 0 printed last may not reach the file: the launcher ends the job once it exits.
  ASSERT_TRUE(std::filesystem::exists(model)) << run.err;
  EXPECT_GT(Sequential::load(model).epochs_completed(), 0);
#endif
}

TEST(CliDistributed, BenchCommMeasuresTheDataParallelStepOnTheRanks) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const std::string csv = dir() + "/comm.csv";
  const CliRun run = run_launched(
      2, fmt::format("{} bench --tables comm --device cpu --width 64 --runs 20 --csv {}", EMBER_CLI_PATH, csv));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(count(run.out, "Data-parallel step over 2 ranks"), 1u) << run.out;
  EXPECT_EQ(count(run.out, "\n64     256          12545"), 1u) << run.out;  // width, batch, parameters
  const std::string figures = slurp(csv);
  EXPECT_NE(figures.find("comm,depth 4 width 64 batch 256,2 ranks,all-reduce ms,"), std::string::npos) << figures;
  EXPECT_NE(figures.find("comm,depth 4 width 64 batch 256,2 ranks,step ms,"), std::string::npos) << figures;
  const CliRun other = run_launched(2, fmt::format("{} bench --tables step --device cpu", EMBER_CLI_PATH));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("runs as one process, not 2"), std::string::npos) << other.err;
#endif
}

TEST(CliDistributed, CommSaysWhereTheRanksSumAndNcclNeedsGpus) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  const std::string train =
      fmt::format("{} train --device cpu --epochs 2 --data {} --target y", EMBER_CLI_PATH, good_csv());
  const CliRun automatic = run_launched(2, train);
  ASSERT_EQ(automatic.exit_code, 0) << automatic.err;
  EXPECT_EQ(count(automatic.out, ", 2 ranks; gradients summed on the host\n"), 1u) << automatic.out;
  expect_one_error(run_launched(2, train + " --comm nccl"), 2,
                   "error: --comm nccl: the cpu backend has no collectives of its own");
  expect_one_error(run_launched(2, train + " --comm nccl --deterministic-reduce"), 2,
                   "error: --comm nccl: --deterministic-reduce adds in rank order on the host");
#endif
}

TEST(CliDistributed, ShardedDataReadsAPartPerRankAndLearnsEveryRanksClasses) {
  EMBER_REQUIRE_MPI();
#ifdef EMBER_MPIEXEC
  // "blue" only in the file's last rows: the last shard alone holds it, and the model must still
  // have three classes.
  std::string text = "a,b,colour\n";
  for (int i = 0; i < 600; ++i) {
    const double a = (i % 23) / 11.0 - 1, b = (i % 19) / 9.0 - 1;
    text += fmt::format("{},{},{}\n", a, b, i >= 570 ? "blue" : a + b > 0 ? "red" : "green");
  }
  const std::string data = file_with("colours.csv", text), model = dir() + "/sharded.safetensors";
  const CliRun run = run_launched(
      2, fmt::format("{} train --device cpu --data {} --target colour --loss crossentropy --optimizer adam "
                     "--lr 0.01 --epochs 30 --batch-size 32 --shard-data --save {}",
                     EMBER_CLI_PATH, data, model));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(count(run.out, "Training on cpu: 600 training rows"), 1u) << run.out;
  EXPECT_EQ(count(run.out, "Saved the model to"), 1u) << run.out;
  const Sequential trained = Sequential::load(model);
  EXPECT_EQ(trained.classes(), (std::vector<std::string>{"blue", "green", "red"}));
  const Metrics metrics = trained.evaluate(read_csv(data, {.text_columns = {"colour"}}));
  EXPECT_GT(metrics.accuracy, 0.9) << "trained on both shards";
  // A bad cell in the last shard: that rank alone fails; the run ends with its error, once.
  std::string bad = "a,b,y\n";
  for (int i = 0; i < 400; ++i) bad += i == 389 ? "1,oops,2\n" : fmt::format("{},{},{}\n", i % 7, i % 5, i % 3);
  const auto start = std::chrono::steady_clock::now();
  const CliRun failed = run_launched(2, fmt::format("{} train --device cpu --quiet --data {} --target y --shard-data",
                                                    EMBER_CLI_PATH, file_with("bad.csv", bad)));
  expect_one_error(failed, 2, "bad.csv:391:2 (column 'b'): 'oops' is not a number");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  const CliRun piped =
      run_launched(2, fmt::format("{} train --device cpu --data - --target colour --shard-data", EMBER_CLI_PATH));
  EXPECT_EQ(piped.exit_code, 2);
  EXPECT_NE(piped.err.find("--shard-data reads each rank's part of a file, not standard input"), std::string::npos)
      << piped.err;
#endif
}

}  // namespace
}  // namespace ember::testing
