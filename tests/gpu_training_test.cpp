// Whole training on the GPU against the CPU reference, CUDA-graph replay against plain launches,
// run-to-run determinism, and the demo's bars. Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include "ember/ember.hpp"
#include "gpu_support.hpp"

namespace ember {
namespace {

// 50 SGD steps amplify float32 rounding differences between the CPU's float64 sums and the GPU's
// float32 sums (about 1e-6 per op); 1e-4 bounds the drift seen over this horizon.
constexpr double kTrainingParityTolerance = 1e-4;

struct TrainingRun {
  std::vector<float> parameters;
  History history;
};

TrainingRun train(Device device, BackendOptions backend = {}) {
  Dataset data;
  data.x = testing::random_matrix(800, 13, 2024);
  data.y = testing::random_matrix(800, 3, 2025);
  Sequential model({Dense(33, Activation::relu), Dense(17, Activation::relu), Dense(3)}, 9);
  model.compile({.optimizer = SGD{.lr = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 1e-4f},
                 .loss = Loss::mse,
                 .device = device,
                 .backend = backend});
  // 800 rows, batch 16: exactly 50 steps in one epoch.
  TrainingRun run;
  run.history = model.fit(data.x, data.y, {.epochs = 1, .batch_size = 16});
  run.parameters = model.parameters();
  return run;
}

TEST(GpuTraining, FiftyStepsMatchCpu) {
  EMBER_REQUIRE_GPU(gpu);
  const TrainingRun cpu = train(Device::cpu), cuda = train(Device::cuda);
  EXPECT_LT(testing::relative_error(cuda.parameters.data(), cpu.parameters.data(),
                                    static_cast<std::int64_t>(cpu.parameters.size())),
            kTrainingParityTolerance);
  EXPECT_NEAR(cuda.history.epochs[0].loss, cpu.history.epochs[0].loss, kTrainingParityTolerance * cpu.history.epochs[0].loss);
}

TEST(GpuTraining, CublasProviderMatchesCpu) {
  EMBER_REQUIRE_GPU(gpu);
  const TrainingRun cpu = train(Device::cpu), cuda = train(Device::cuda, {.matmul = MatmulProvider::cublas, .cuda_graph = true});
  EXPECT_LT(testing::relative_error(cuda.parameters.data(), cpu.parameters.data(),
                                    static_cast<std::int64_t>(cpu.parameters.size())),
            kTrainingParityTolerance);
}

TEST(GpuTraining, GraphReplayIsBitIdenticalToPlainLaunches) {
  EMBER_REQUIRE_GPU(gpu);
  const TrainingRun graph = train(Device::cuda, {.matmul = MatmulProvider::ember, .cuda_graph = true});
  const TrainingRun plain = train(Device::cuda, {.matmul = MatmulProvider::ember, .cuda_graph = false});
  EXPECT_EQ(graph.parameters, plain.parameters);
  EXPECT_EQ(graph.history.epochs[0].loss, plain.history.epochs[0].loss);
}

TEST(GpuTraining, TwoRunsAreBitIdentical) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_EQ(train(Device::cuda).parameters, train(Device::cuda).parameters);
}

TEST(GpuTraining, DemoSeedExample) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_NEAR(demo::seed_example(Device::cuda), 5.0, 0.1);
}

TEST(GpuTraining, DemoHousePrices) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_GE(demo::house_price_mlp(Device::cuda).test_r2, 0.9);
}

}  // namespace
}  // namespace ember
