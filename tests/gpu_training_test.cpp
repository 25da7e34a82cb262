// Whole training on the GPU against the CPU reference, CUDA-graph replay against plain launches,
// run-to-run determinism, and the demo's bars. Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "backend_conformance.hpp"
#include "ember/random.hpp"
#include "gpu_support.hpp"
#include "parameter_layout.hpp"
#include "plan.hpp"
#include "thread_communicator.hpp"

namespace ember {
namespace {

using testing::kTrainingTolerance;
using testing::train_fifty_steps;
using testing::TrainingRun;
const BackendOptions kReference{.cpu_reference = true};

TEST(GpuTraining, FiftyStepsMatchCpu) {
  EMBER_REQUIRE_GPU(gpu);
  for (const Optimizer& optimizer : testing::one_optimizer_of_each_kind()) {
    const TrainingRun cpu = train_fifty_steps(Device::cpu, kReference, optimizer),
                      cuda = train_fifty_steps(Device::cuda, {}, optimizer);
    EXPECT_LT(testing::relative_error(cuda.parameters.data(), cpu.parameters.data(),
                                      static_cast<std::int64_t>(cpu.parameters.size())),
              kTrainingTolerance)
        << optimizer_name(optimizer);
    EXPECT_NEAR(cuda.history.epochs[0].loss, cpu.history.epochs[0].loss,
                kTrainingTolerance * cpu.history.epochs[0].loss);
  }
}

TEST(GpuTraining, FiftyStepsMatchCpuWithEveryActivation) {
  EMBER_REQUIRE_GPU(gpu);
  activations::for_each_part([](auto part) {
    const Activation kind = decltype(part)::kind;
    const TrainingRun cpu = train_fifty_steps(Device::cpu, kReference, testing::kNesterov, kind),
                      cuda = train_fifty_steps(Device::cuda, {}, testing::kNesterov, kind);
    EXPECT_LT(testing::relative_error(cuda.parameters.data(), cpu.parameters.data(),
                                      static_cast<std::int64_t>(cpu.parameters.size())),
              kTrainingTolerance)
        << to_string(kind);
  });
}

TEST(GpuTraining, TwoRanksSharingTheGpuTrainAsOneProcess) {
  // Data-parallel training through the host-staged reduction, two ranks (threads of this process,
  // each with its own backend and stream) on the one GPU, as two processes sharing a GPU do.
  EMBER_REQUIRE_GPU(gpu);
  if (std::getenv("EMBER_EMULATED_GPU") != nullptr)
    GTEST_SKIP() << "the emulated runtime serves one host thread at a time";
  // With a BatchNorm, its statistics come to the host in the middle of each step: the steps run
  // unrecorded.
  const Matrix x = testing::random_matrix(203, 6, 31), y = testing::random_matrix(203, 2, 32);
  for (const bool normalized : {false, true}) {
    const auto model = [&] {
      std::vector<Layer> layers{Dense(32, Activation::relu), Dense(2)};
      if (normalized) layers.insert(layers.begin() + 1, BatchNorm());
      Sequential m(layers, 5);
      m.compile({.optimizer = Adam{.lr = 0.003f}, .device = Device::cuda});
      return m;
    };
    const FitOptions fit{.epochs = 3, .batch_size = 32, .validation_split = 0.1};
    Sequential alone = model();
    alone.fit(x, y, fit);
    std::vector<Sequential> ranks;
    ranks.push_back(model());
    ranks.push_back(model());
    testing::fit_on_threads(ranks, x, y, fit);
    EXPECT_EQ(ranks[0].parameters(), ranks[1].parameters()) << "BatchNorm " << normalized;
    EXPECT_LT(testing::relative_error(ranks[0].parameters(), alone.parameters()), kTrainingTolerance)
        << "BatchNorm " << normalized;
  }
}

TEST(GpuTraining, OneRankNcclInTheStepsGraphTrainsAsWithoutCommunication) {
  // GradientSum::nccl with one process: NCCL's all-reduce of one rank, in buckets inside the
  // captured step, must leave every bit as no communication does.
  EMBER_REQUIRE_GPU(gpu);
  if (const std::string reason = gpu->collective_support().unavailable_reason; !reason.empty()) GTEST_SKIP() << reason;
  const Matrix x = testing::random_matrix(203, 6, 41), y = testing::random_matrix(203, 2, 42);
  const auto model = [] {
    Sequential m({Dense(32, Activation::relu), Dense(2)}, 5);
    m.compile({.optimizer = Adam{.lr = 0.003f}, .device = Device::cuda});
    return m;
  };
  FitOptions fit{.epochs = 3, .batch_size = 32, .validation_split = 0.1};
  Sequential alone = model();
  alone.fit(x, y, fit);
  std::string data_parallel;
  fit.gradient_sum = GradientSum::nccl;
  fit.on_train_begin = [&](const TrainingSummary& summary) { data_parallel = summary.data_parallel; };
  Sequential summed = model();
  summed.fit(x, y, fit);
  EXPECT_EQ(summed.parameters(), alone.parameters());
  EXPECT_NE(data_parallel.find("gradients summed by NCCL"), std::string::npos) << data_parallel;
}

TEST(GpuTraining, BatchNormSumsItsStatisticsWithNcclInTheStepsGraph) {
  // GradientSum::nccl with one process and BatchNorm layers: their statistics summed by NCCL in the
  // middle of the captured step's forward and backward (the totals' kernels, then the sums), as
  // without communication; the last batch of 11 rows is a second recorded step.
  EMBER_REQUIRE_GPU(gpu);
  if (const std::string reason = gpu->collective_support().unavailable_reason; !reason.empty()) GTEST_SKIP() << reason;
  const Matrix x = testing::random_matrix(203, 6, 47), y = testing::random_matrix(203, 2, 48);
  const auto model = [] {
    Sequential m({Dense(40, Activation::relu), BatchNorm(0.2f), Dense(7, Activation::tanh), BatchNorm(), Dense(2)}, 5);
    m.compile({.optimizer = Adam{.lr = 0.003f}, .device = Device::cuda});
    return m;
  };
  FitOptions fit{.epochs = 3, .batch_size = 32, .validation_split = 0.1};
  Sequential alone = model();
  alone.fit(x, y, fit);
  fit.gradient_sum = GradientSum::nccl;
  Sequential summed = model();
  summed.fit(x, y, fit);
  EXPECT_LT(testing::relative_error(summed.parameters(), alone.parameters()), kTrainingTolerance);
  EXPECT_LT(testing::relative_error(summed.tensor(1, "running_var"), alone.tensor(1, "running_var")),
            kTrainingTolerance);
}

TEST(GpuTraining, NcclBucketsAreScaledAndSummedBeforeTheUpdate) {
  // A plan whose sums run in two buckets (small ones) beside backward, each gradient times 0.5,
  // against the same plan with the gradients halved on the host: the same bits, in every stream
  // order (the emulator's), or the update read a bucket before its sum ended.
  EMBER_REQUIRE_GPU(gpu);
  if (const std::string reason = gpu->collective_support().unavailable_reason; !reason.empty()) GTEST_SKIP() << reason;
  const std::vector<Layer> layers{Dense(24, Activation::relu), Dense(16, Activation::relu), Dense(3)};
  constexpr std::int64_t kInputs = 5, kRows = 45, kBatch = 20;
  const Optimizer optimizer = SGD{.lr = 0.1f, .momentum = 0.9f};
  const Matrix x = testing::random_matrix(kRows, kInputs, 43), y = testing::random_matrix(kRows, 3, 44);
  const testing::OnBackend x_on(*gpu, x), y_on(*gpu, y);
  std::vector<std::int32_t> order(kRows);
  for (std::int32_t i = 0; i < kRows; ++i) order[static_cast<std::size_t>(i)] = (i * 7) % kRows;
  Buffer indices(*gpu, order.size() * sizeof(std::int32_t));
  gpu->copy_to_device(indices.data(), order.data(), order.size() * sizeof(std::int32_t));
  std::vector<float> start(static_cast<std::size_t>(ParameterLayout(layers, kInputs).count()));
  Random random(45);
  for (float& value : start) value = static_cast<float>(random.uniform() - 0.5);

  const auto train = [&](const std::function<void(Plan&, std::int64_t)>& step) {
    Plan plan(*gpu, layers, kInputs, kBatch, optimizer);
    plan.set_bucket_floats(100);  // layers 2 and 1 (451 floats), then layer 0 (144)
    plan.upload_parameters(start, std::vector<float>(start.size(), 0.0f));  // momentum from zero
    plan.bind_training_set(x_on.view(), y_on.view(), static_cast<const std::int32_t*>(indices.data()));
    for (int epoch = 0; epoch < 2; ++epoch) {
      plan.reset_epoch();
      for (std::int64_t first = 0; first < kRows; first += kBatch) step(plan, std::min(kBatch, kRows - first));
    }
    std::vector<float> parameters, state;
    std::int32_t steps = 0;
    plan.download_parameters(parameters, state, steps);
    return parameters;
  };
  const std::vector<float> on_host = train([](Plan& plan, std::int64_t rows) {
    plan.train_step(rows, HostReduction{[](std::vector<float>& gradients) {
                      for (float& g : gradients) g *= 0.5f;
                    }});
  });
  const std::unique_ptr<DeviceCollective> nccl = gpu->join_collective(gpu->new_collective_id(), 0, 1);
  bool warm = false;
  const std::vector<float> in_graph = train([&](Plan& plan, std::int64_t rows) {
    if (!warm) plan.warm_up(*nccl);  // as DataParallel does before its first step
    warm = true;
    plan.train_step(rows,
                    DeviceSum{.collective = nccl.get(), .factor = 0.5f, .shape = static_cast<std::uint64_t>(rows)});
  });
  EXPECT_EQ(in_graph, on_host);
  EXPECT_NE(in_graph, start);
}

/// Whether a library whose file name contains name is mapped into this process.
bool mapped(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find(name) != std::string::npos) return true;
  return false;
}

TEST(GpuTraining, OwnKernelsNeverLoadCublas) {
  if (mapped("libcublas")) GTEST_SKIP() << "an earlier test in this process loaded cuBLAS";
  EMBER_REQUIRE_GPU(gpu);
  train_fifty_steps(Device::cuda, {});
  EXPECT_FALSE(mapped("libcublas")) << "a training run on Ember's kernels loaded cuBLAS";
}

TEST(GpuTraining, CublasProviderMatchesCpu) {
  EMBER_REQUIRE_GPU(gpu);
  const TrainingRun cpu = train_fifty_steps(Device::cpu, kReference),
                    cuda = train_fifty_steps(Device::cuda, {.matmul = MatmulProvider::cublas, .cuda_graph = true});
  EXPECT_LT(testing::relative_error(cuda.parameters.data(), cpu.parameters.data(),
                                    static_cast<std::int64_t>(cpu.parameters.size())),
            kTrainingTolerance);
}

TEST(GpuTraining, Tf32FiftyStepsMatchCpu) {
  EMBER_REQUIRE_GPU(gpu, BackendOptions{.precision = Precision::tf32});
  const TrainingRun cpu = train_fifty_steps(Device::cpu, kReference);
  const TrainingRun tf32 = train_fifty_steps(Device::cuda, {.precision = Precision::tf32});
  EXPECT_LT(testing::relative_error(tf32.parameters.data(), cpu.parameters.data(),
                                    static_cast<std::int64_t>(cpu.parameters.size())),
            testing::kTf32TrainingTolerance);
}

TEST(GpuTraining, GraphReplayIsBitIdenticalToPlainLaunches) {
  // Adam's step count changes every step: a graph that had captured it would replay stale values.
  EMBER_REQUIRE_GPU(gpu);
  for (const Optimizer& optimizer : testing::one_optimizer_of_each_kind()) {
    const TrainingRun graph =
        train_fifty_steps(Device::cuda, {.matmul = MatmulProvider::ember, .cuda_graph = true}, optimizer);
    const TrainingRun plain =
        train_fifty_steps(Device::cuda, {.matmul = MatmulProvider::ember, .cuda_graph = false}, optimizer);
    EXPECT_EQ(graph.parameters, plain.parameters) << optimizer_name(optimizer);
    EXPECT_EQ(graph.history.epochs[0].loss, plain.history.epochs[0].loss);
  }
}

TEST(GpuTraining, ScheduledAdamReplaysOneGraphForAWholeRun) {
  // The rate changes every epoch (a cosine with warm-up) and Adam's step count every step, both
  // read from device memory: the graph captured once must give the plain launches' bits.
  EMBER_REQUIRE_GPU(gpu);
  const auto run = [](bool graph) {
    Sequential model({Dense(33, Activation::relu), Dense(3)}, 9);
    model.compile({.optimizer = Adam{.lr = 0.01f},
                   .schedule = CosineDecay{.epochs = 4, .warmup_epochs = 1},
                   .device = Device::cuda,
                   .backend = {.cuda_graph = graph}});
    const History history = model.fit(testing::random_matrix(320, 13, 5), testing::random_matrix(320, 3, 6),
                                      {.epochs = 4, .batch_size = 32, .validation_split = 0.2});
    return std::pair{model.parameters(), history};
  };
  const auto [graph_parameters, graph_history] = run(true);
  const auto [plain_parameters, plain_history] = run(false);
  EXPECT_EQ(graph_parameters, plain_parameters);
  for (std::size_t e = 0; e < 4; ++e) {
    EXPECT_EQ(graph_history.epochs[e].loss, plain_history.epochs[e].loss) << e;
    EXPECT_EQ(graph_history.epochs[e].val_loss, plain_history.epochs[e].val_loss) << e;
  }
  EXPECT_NE(graph_history.epochs[1].lr, graph_history.epochs[2].lr);
}

TEST(GpuTraining, CompareTrainingAgainstTheReference) {
  // The installed helper users call in their own tests: the GPU against the float64 reference.
  EMBER_REQUIRE_GPU(gpu);
  const testing::TrainingComparison comparison = testing::compare_training(
      {Dense(33, Activation::relu), Dense(17, Activation::relu), Dense(3)}, {.optimizer = Adam{.lr = 0.003f}},
      testing::random_matrix(800, 13, 2024), testing::random_matrix(800, 3, 2025), {.epochs = 1, .batch_size = 16},
      {.device = Device::cpu, .backend = {.cpu_reference = true}}, {.device = Device::cuda});
  EXPECT_TRUE(comparison.within_tolerance()) << comparison.report();
}

/// Adam on the GPU trains as the CPU reference within tolerance, and a captured graph as plain
/// launches bit for bit.
void expect_adam_on_the_gpu_as_the_reference_and_its_graph_as_plain_launches(const std::vector<Layer>& layers,
                                                                             const Matrix& x, const Matrix& y,
                                                                             const FitOptions& fit) {
  const testing::TrainingComparison comparison =
      testing::compare_training(layers, {.optimizer = Adam{.lr = 0.003f}}, x, y, fit,
                                {.device = Device::cpu, .backend = kReference}, {.device = Device::cuda});
  EXPECT_TRUE(comparison.within_tolerance()) << comparison.report();
  const auto run = [&](bool graph) {
    Sequential model(layers, 9);
    model.compile({.optimizer = Adam{.lr = 0.003f}, .device = Device::cuda, .backend = {.cuda_graph = graph}});
    model.fit(x, y, fit);
    return model.parameters();
  };
  EXPECT_EQ(run(true), run(false));
}

TEST(GpuTraining, DropoutTrainsAsTheReferenceAndItsGraphReplaysNewMasks) {
  // The masks are drawn from counters in device memory (the batch's position, the epoch): a graph
  // captured once draws each step's own, as plain launches do, and as the CPU reference draws them.
  EMBER_REQUIRE_GPU(gpu);
  const std::vector<Layer> layers{Dense(33, Activation::relu), Dropout(0.3f), Dense(17, Activation::gelu),
                                  Dropout(0.1f), Dense(3)};
  const Matrix x = testing::random_matrix(480, 13, 2026), y = testing::random_matrix(480, 3, 2027);
  const FitOptions fit{.epochs = 2, .batch_size = 16, .validation_split = 0.1};
  expect_adam_on_the_gpu_as_the_reference_and_its_graph_as_plain_launches(layers, x, y, fit);
}

TEST(GpuTraining, EveryLayerKindTrainsAsTheReference) {
  EMBER_REQUIRE_GPU(gpu);
  std::vector<Layer> layers = testing::one_layer_of_each_kind();
  layers.push_back(Dense(3));
  const Matrix x = testing::random_input(layers, 200, 9, 2032), y = testing::random_matrix(200, 3, 2033);
  expect_adam_on_the_gpu_as_the_reference_and_its_graph_as_plain_launches(layers, x, y,
                                                                          {.epochs = 2, .batch_size = 16});
}

TEST(GpuTraining, LayerNormTrainsAsTheReference) {
  // LayerNorm on the inputs, after a ReLU layer (whose backward then runs on its own) and before
  // the output, with a width above a block's 256 threads.
  EMBER_REQUIRE_GPU(gpu);
  const std::vector<Layer> layers{
      LayerNorm(), Dense(300, Activation::relu), LayerNorm(1e-3f), Dense(17, Activation::silu), LayerNorm(), Dense(3)};
  const Matrix x = testing::random_matrix(256, 13, 2030), y = testing::random_matrix(256, 3, 2031);
  const FitOptions fit{.epochs = 2, .batch_size = 32, .validation_split = 0.1};
  expect_adam_on_the_gpu_as_the_reference_and_its_graph_as_plain_launches(layers, x, y, fit);
}

TEST(GpuTraining, BatchNormTrainsAsTheReference) {
  // BatchNorm on the inputs, after a ReLU layer wider than a block of threads and before the
  // output; the last batch of each epoch has one row (the running figures stay), and validation
  // predicts with the running figures.
  EMBER_REQUIRE_GPU(gpu);
  const std::vector<Layer> layers{
      BatchNorm(), Dense(300, Activation::relu), BatchNorm(0.3f, 1e-3f), Dense(17, Activation::silu), BatchNorm(),
      Dense(3)};
  const Matrix x = testing::random_matrix(321, 13, 2040), y = testing::random_matrix(321, 3, 2041);
  const FitOptions fit{.epochs = 2, .batch_size = 32, .validation_split = 0.1};
  expect_adam_on_the_gpu_as_the_reference_and_its_graph_as_plain_launches(layers, x, y, fit);
}

TEST(GpuTraining, SampleWeightsTrainAsTheReferenceAndTheGraphReadsEachEpochsFactors) {
  // The row factors are uploaded each epoch and gathered with the batch: a graph captured once
  // reads each epoch's, as plain launches do.
  EMBER_REQUIRE_GPU(gpu);
  const std::vector<Layer> layers{Dense(21, Activation::relu), Dense(2)};
  const Matrix x = testing::random_matrix(300, 7, 77), y = testing::random_matrix(300, 2, 78);
  std::vector<float> weights(300);
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = 0.5f * static_cast<float>(i % 5);
  FitOptions fit{.epochs = 3, .batch_size = 32, .validation_split = 0.1};
  fit.sample_weight = weights;
  expect_adam_on_the_gpu_as_the_reference_and_its_graph_as_plain_launches(layers, x, y, fit);
}

TEST(GpuTraining, TwoRunsAreBitIdentical) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_EQ(train_fifty_steps(Device::cuda).parameters, train_fifty_steps(Device::cuda).parameters);
}

TEST(GpuTraining, DemoSeedExample) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_NEAR(demo::seed_example(Device::cuda), 5.0, 0.1);
}

TEST(GpuTraining, DemoHousePrices) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_GE(demo::house_price_mlp(Device::cuda).test_r2, 0.9);
}

TEST(GpuTraining, DemoSpirals) {
  EMBER_REQUIRE_GPU(gpu);
  EXPECT_GE(demo::spiral_classifier(Device::cuda).test_accuracy, 0.9);
}

}  // namespace
}  // namespace ember
