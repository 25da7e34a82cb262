// The `ember` command line built against the emulated GPU (ember-emulated): its GPU paths, which
// the CPU-only CLI tests cannot reach. These are `info` on a GPU, `--device auto` choosing it,
// training, prediction and evaluation with each matmul provider, precision and launch mode, and the
// demo.
#include <gtest/gtest.h>

#include <string>

#include "cli_support.hpp"

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

TEST(EmulatedCli, DemoOnTheGpu) {
  const CliRun demo = run_ember("demo --device cuda");
  ASSERT_EQ(demo.exit_code, 0) << demo.err;
  EXPECT_NE(demo.out.find("cuda:0"), std::string::npos) << demo.out;
}

}  // namespace
