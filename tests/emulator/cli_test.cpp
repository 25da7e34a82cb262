// The `ember` command line built against the emulated GPU (ember-emulated): its GPU paths, which
// the CPU-only CLI tests cannot reach. These are `info` on a GPU, `--device auto` choosing it,
// training, prediction and evaluation with each matmul provider, precision and launch mode, and the
// demo.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "cli_support.hpp"
#include "ember/data.hpp"
#include "ember/testing.hpp"

namespace {

using namespace ember::testing;

TEST(EmulatedCli, InfoShowsTheGpuAndItsTf32Kernels) {
  const CliRun info = run_ember("info");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("compute capability 9.0"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("cuda: available; TF32 matmul: wgmma and mma.sync tensor-core kernels"), std::string::npos)
      << info.out;
}

TEST(EmulatedCli, TrainsPredictsAndEvaluatesOnTheGpu) {
  const std::string data = good_csv(), model = dir() + "/model.safetensors";
  for (const std::string device : {"--device auto", "--device cuda --no-cuda-graph", "--device cuda --matmul cublas",
                                   "--device cuda --precision tf32"}) {
    const CliRun train = run_ember("train --data " + data + " --target y --layers 8 --epochs 30 --lr 0.05 " + device +
                                   " --save " + model);
    ASSERT_EQ(train.exit_code, 0) << device << "\n" << train.err;
    EXPECT_NE(train.out.find("cuda:0"), std::string::npos) << device << "\n" << train.out;
    EXPECT_NE(train.out.find("Epoch 30/30"), std::string::npos) << device;
    const CliRun evaluate = run_ember("evaluate --device cuda --model " + model + " --data " + data);
    ASSERT_EQ(evaluate.exit_code, 0) << device << "\n" << evaluate.err;
    const std::size_t r2 = evaluate.out.find("r2: ");
    ASSERT_NE(r2, std::string::npos) << evaluate.out;
    EXPECT_GT(std::stod(evaluate.out.substr(r2 + 4)), 0.9) << device;
  }
  const std::string predictions = dir() + "/predictions.csv";
  const CliRun predict =
      run_ember("predict --device cuda --model " + model + " --data " + data + " --out " + predictions);
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_EQ(slurp(predictions).substr(0, 12), "y_predicted\n");
}

TEST(EmulatedCli, NcclSumsInTheStepsGraphAndRanksSharingTheGpuSumOnTheHost) {
  const std::string data = good_csv(), alone = dir() + "/alone.csv", summed = dir() + "/summed.csv";
  const std::string train = "train --device cuda --data " + data + " --target y --layers 8 --epochs 5 --save ";
  ASSERT_EQ(run_ember(train + dir() + "/alone.safetensors").exit_code, 0);
  const CliRun nccl = run_ember(train + dir() + "/summed.safetensors --comm nccl");
  ASSERT_EQ(nccl.exit_code, 0) << nccl.err;
  EXPECT_NE(nccl.out.find("Data parallel: one process; gradients summed by NCCL 2.28.9 (the emulator's, one rank) in "
                          "the step's CUDA graph\n"),
            std::string::npos)
      << nccl.out;
  // One rank's sums change no bit.
  for (const auto& [model, out] : {std::pair{"alone", alone}, std::pair{"summed", summed}})
    ASSERT_EQ(run_ember("predict --device cuda --model " + dir() + "/" + model + ".safetensors --data " + data +
                        " --out " + out)
                  .exit_code,
              0);
  EXPECT_EQ(slurp(summed), slurp(alone));
#ifdef EMBER_MPIEXEC
  // Two processes, each with its emulated GPU of the same identity: they share one GPU, so they
  // sum on the host (the split step), and train as one process does.
  const std::string launched = std::string(EMBER_CLI_PATH) + " " + train + dir() + "/ranks.safetensors";
  const CliRun ranks = run_launched(2, launched);
  ASSERT_EQ(ranks.exit_code, 0) << ranks.err;
  EXPECT_NE(ranks.out.find(", 2 ranks; gradients summed on the host: 2 ranks share 1 GPU (NCCL 2.28.9 (the "
                           "emulator's, one rank) needs a GPU per rank)\n"),
            std::string::npos)
      << ranks.out;
  const std::string together = dir() + "/ranks.csv";
  ASSERT_EQ(
      run_ember("predict --device cuda --model " + dir() + "/ranks.safetensors --data " + data + " --out " + together)
          .exit_code,
      0);
  const std::vector<float> expected = ember::read_csv(alone).columns.at(0).numbers,
                           got = ember::read_csv(together).columns.at(0).numbers;
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_LT(relative_error(got.data(), expected.data(), static_cast<std::int64_t>(got.size())), 1e-5);
  expect_one_error(run_launched(2, launched + " --comm nccl"), 2, "error: --comm nccl: 2 ranks share 1 GPU");
#endif
}

TEST(EmulatedCli, DemoOnTheGpu) {
  const CliRun demo = run_ember("demo --device cuda");
  ASSERT_EQ(demo.exit_code, 0) << demo.err;
  EXPECT_NE(demo.out.find("cuda:0"), std::string::npos) << demo.out;
}

}  // namespace
