// Data-parallel training, run under mpiexec with 2 and 3 ranks (tests/CMakeLists.txt): each rank
// also trains the same model alone, and the ranks' run must match it. 3 ranks split batches
// unevenly, and batches smaller than the ranks leave some ranks without rows.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stop_token>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "ember/testing.hpp"
#include "test_support.hpp"
#include "thread_communicator.hpp"

namespace ember {
namespace {

std::shared_ptr<Communicator> world() {
  static const std::shared_ptr<Communicator> communicator = distributed::world();
  return communicator;
}

struct Data {
  Matrix x = testing::random_matrix(203, 5, 11), y = testing::random_matrix(203, 2, 12);
};

Sequential model_for(const CompileOptions& options, std::int64_t outputs = 2) {
  Sequential model({Dense(16, Activation::relu), Dense(12, Activation::relu), Dense(outputs)}, 7);
  model.compile(options);
  return model;
}

/// The largest and smallest of a value over the ranks are equal.
void expect_same_on_every_rank(double value, const char* what) {
  double low = value, high = value;
  world()->all_reduce({&low, 1}, Reduction::min);
  world()->all_reduce({&high, 1}, Reduction::max);
  EXPECT_EQ(low, high) << what << " differs between ranks";
}

/// Trains a copy alone and one over the ranks; returns the relative error between their
/// parameters, and checks that every rank reports the same figures.
double distributed_against_alone(const CompileOptions& compile, FitOptions fit, const Matrix& x, const Matrix& y,
                                 std::int64_t outputs = 2) {
  Sequential alone = model_for(compile, outputs), together = model_for(compile, outputs);
  const History expected = alone.fit(x, y, fit);
  fit.communicator = world();
  const History history = together.fit(x, y, fit);
  EXPECT_EQ(history.epochs.size(), expected.epochs.size());
  for (std::size_t e = 0; e < std::min(history.epochs.size(), expected.epochs.size()); ++e) {
    EXPECT_NEAR(history.epochs[e].loss, expected.epochs[e].loss, testing::kTrainingTolerance * expected.epochs[e].loss);
    expect_same_on_every_rank(history.epochs[e].loss, "the loss");
    if (history.epochs[e].val_loss) expect_same_on_every_rank(*history.epochs[e].val_loss, "the validation loss");
  }
  const double error = testing::relative_error(together.parameters().data(), alone.parameters().data(),
                                               static_cast<std::int64_t>(alone.parameters().size()));
  if (world()->rank() == 0)
    std::printf("%d ranks against one process: parameters' relative error %.3g\n", world()->size(), error);
  return error;
}

TEST(Distributed, RunsUnderALauncher) {
  EXPECT_TRUE(distributed::mpi_compiled());
  EXPECT_GE(world()->size(), 2) << "run this binary under mpiexec -n 2 or more";
  EXPECT_NE(world()->describe().find("MPI"), std::string::npos) << world()->describe();
}

TEST(Distributed, ReferenceBackendMatchesOneProcess) {
  const Data data;
  const CompileOptions compile{
      .optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .device = Device::cpu, .backend = {.cpu_reference = true}};
  // 203 rows in batches of 32: 7 batches, the last of 11 rows; 50 steps in all.
  const double error = distributed_against_alone(compile, {.epochs = 7, .batch_size = 32}, data.x, data.y);
  EXPECT_LT(error, 1e-6) << "after 49 steps";
  expect_same_on_every_rank(error, "the parameters");
}

// A BatchNorm's statistics span every rank's rows (as torch.nn.SyncBatchNorm): the ranks' running
// figures stay the same and equal one process's, on the fast path and the reference. 162 rows in
// batches of 32: 3 ranks take uneven slices, and the last batch of 2 rows leaves one without rows.
// (Batches of a few rows would not do: there one process's training is chaotic, an input moved by
// one unit in the last place moving the parameters by 1e-3 to 1 after two epochs.)
TEST(Distributed, BatchNormTrainsAsOneProcess) {
  const Data data;
  std::vector<std::int64_t> first(162);
  std::iota(first.begin(), first.end(), 0);
  const Matrix x = Matrix::take_rows(data.x, first), y = Matrix::take_rows(data.y, first);
  for (const bool reference : {false, true}) {
    const auto normalized = [&] {
      Sequential model({Dense(8, Activation::relu), BatchNorm(0.2f), Dense(6, Activation::tanh), BatchNorm(), Dense(2)},
                       7);
      model.compile({.optimizer = Adam{.lr = 0.003f}, .device = Device::cpu, .backend = {.cpu_reference = reference}});
      return model;
    };
    Sequential alone = normalized(), together = normalized();
    const FitOptions fit{.epochs = 3, .batch_size = 32};
    alone.fit(x, y, fit);
    FitOptions over_ranks = fit;
    over_ranks.communicator = world();
    together.fit(x, y, over_ranks);
    const double error = testing::relative_error(together.parameters(), alone.parameters());
    EXPECT_LT(error, 1e-5) << "reference " << reference;
    expect_same_on_every_rank(together.tensor(3, "running_var").data[0], "the running variance");
    if (world()->rank() == 0)
      std::printf("BatchNorm, %s: %d ranks against one process: relative error %.3g\n",
                  reference ? "reference" : "fast path", world()->size(), error);
  }
}

TEST(Distributed, BatchesSmallerThanTheRanks) {
  const Data data;
  const CompileOptions compile{.optimizer = Adam{.lr = 0.003f}, .device = Device::cpu};
  const double error =
      distributed_against_alone(compile, {.epochs = 1, .batch_size = 2, .validation_split = 0.2}, data.x, data.y);
  EXPECT_LT(error, 1e-6);
}

TEST(Distributed, ClassificationWithAdamOnTheFastPath) {
  const Data data;
  Matrix labels(data.x.rows(), 1);
  for (std::int64_t r = 0; r < data.x.rows(); ++r) labels(r, 0) = data.x(r, 0) + data.x(r, 1) > 0 ? 2.0f : (r % 2);
  const CompileOptions compile{.optimizer = Adam{.lr = 0.01f}, .loss = CrossEntropy{}, .device = Device::cpu};
  const double error =
      distributed_against_alone(compile, {.epochs = 3, .batch_size = 50, .validation_split = 0.25}, data.x, labels, 3);
  EXPECT_LT(error, 1e-6);
}

TEST(Distributed, AStopOnOneRankStopsEveryRankAtTheSameBatch) {
  const Data data;
  Sequential model = model_for({.device = Device::cpu});
  std::stop_source stop;
  FitOptions fit{.epochs = 5, .batch_size = 16, .communicator = world()};
  fit.stop = stop.get_token();
  // Rank 1 alone asks to stop, in the third epoch.
  fit.on_batch = [&](std::int64_t batch, std::int64_t) {
    static std::int64_t seen = 0;
    if (++seen == 30 && world()->rank() == 1) stop.request_stop();
    (void)batch;
  };
  const History history = model.fit(data.x, data.y, fit);
  EXPECT_EQ(history.stopped, "stop requested");
  EXPECT_EQ(history.epochs.size(), 2u);
  expect_same_on_every_rank(static_cast<double>(model.epochs_completed()), "the epochs completed");
}

TEST(Distributed, RankZeroAloneWritesCheckpointsAndAnotherRankCountResumes) {
  const Data data;
  const CompileOptions compile{.optimizer = Adam{.lr = 0.003f}, .device = Device::cpu};
  const std::string path = testing::work_path("distributed_rank" + std::to_string(world()->rank()) + ".safetensors");
  std::filesystem::remove(path);
  Sequential together = model_for(compile);
  together.fit(
      data.x, data.y,
      {.epochs = 2, .batch_size = 32, .checkpoint_every = 1, .checkpoint_path = path, .communicator = world()});
  EXPECT_EQ(std::filesystem::exists(path), world()->rank() == 0);
  // Two epochs on the ranks, then one alone: as three epochs alone.
  together.fit(data.x, data.y, {.epochs = 1, .batch_size = 32});
  Sequential alone = model_for(compile);
  alone.fit(data.x, data.y, {.epochs = 3, .batch_size = 32});
  EXPECT_EQ(together.epochs_completed(), 3);
  EXPECT_LT(testing::relative_error(together.parameters().data(), alone.parameters().data(),
                                    static_cast<std::int64_t>(alone.parameters().size())),
            testing::kTrainingTolerance);
}

TEST(Distributed, DeterministicReductionRepeatsBitForBitAndMatchesTheRanksAsThreadsOfOneProcess) {
  const Data data;
  const CompileOptions compile{.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu};
  FitOptions fit{.epochs = 2, .batch_size = 24, .validation_split = 0.1, .deterministic_reduction = true};
  // One process holding every rank's slice, adding them in rank order (ranks as threads).
  std::vector<Sequential> threads;
  for (int r = 0; r < world()->size(); ++r) threads.push_back(model_for(compile));
  const std::vector<History> expected = testing::fit_on_threads(threads, data.x, data.y, fit);
  fit.communicator = world();
  for (int run = 0; run < 2; ++run) {
    Sequential model = model_for(compile);
    const History history = model.fit(data.x, data.y, fit);
    EXPECT_EQ(model.parameters(), threads[0].parameters()) << "run " << run;
    EXPECT_EQ(history.epochs.back().loss, expected[0].epochs.back().loss) << "run " << run;
    EXPECT_EQ(history.epochs.back().val_loss, expected[0].epochs.back().val_loss) << "run " << run;
  }
}

TEST(Distributed, EachRankOnAMachineSeesItsOwnGpu) {
  // ctest starts the ranks with CUDA_VISIBLE_DEVICES and EMBER_TEST_GPU_LIST both "7,5,3".
  const char* list = std::getenv("EMBER_TEST_GPU_LIST");
  if (list == nullptr) GTEST_SKIP() << "set CUDA_VISIBLE_DEVICES and EMBER_TEST_GPU_LIST to the same list";
  const std::vector<std::string> gpus = {"7", "5", "3"};
  ASSERT_STREQ(list, "7,5,3");
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  ASSERT_NE(visible, nullptr);
  EXPECT_EQ(visible, gpus[static_cast<std::size_t>(world()->local_rank()) % gpus.size()])
      << "local rank " << world()->local_rank();
}

/// A file every rank can read: each writes its own copy (the same bytes), so no rank waits on another.
std::string regression_file(std::int64_t rows) {
  const std::string path = testing::work_path("sharded_rank" + std::to_string(world()->rank()) + ".csv");
  std::ofstream file(path);
  file << "a,b,city,y\n";
  Random random(21);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double a = 2 * random.uniform() - 1, b = 2 * random.uniform() - 1;
    // "Oslo" only in the last rows, so in the last shard alone; some cells missing.
    const char* city = r >= rows - 30 ? "Oslo" : r % 3 == 0 ? "Lyon" : "Pune";
    const double shift = city[0] == 'O' ? 2.0 : city[0] == 'L' ? -1.0 : 0.5;
    if (r % 17 == 5)
      file << "NA," << b << "," << city << "," << 0.5 * b + shift << "\n";
    else
      file << a << "," << b << "," << city << "," << a * b + 0.5 * b + shift << "\n";
  }
  return path;
}

TEST(Distributed, ShardedDataLearnsFromEveryRanksRowsAndTrainsAsTheWholeFile) {
  constexpr std::int64_t kRows = 1200;
  const std::string path = regression_file(kRows);
  const ColumnSpec spec{.targets = {"y"}, .one_hot = {"city"}, .missing = Missing::mean};
  const CsvOptions text{.text_columns = {"city"}};
  const CsvTable whole = read_csv(path, text);
  CsvOptions shard = text;
  shard.shard = world()->rank();
  shard.shards = world()->size();
  const CsvTable mine = read_csv(path, shard);
  EXPECT_NEAR(static_cast<double>(mine.rows()), static_cast<double>(kRows) / world()->size(), 10.0)
      << "each rank reads about 1/N of the rows";
  double rows = static_cast<double>(mine.rows());
  world()->all_reduce({&rows, 1}, Reduction::sum);
  EXPECT_EQ(rows, static_cast<double>(kRows)) << "every row in one shard";

  const CompileOptions compile{.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu};
  const auto model = [&] {
    Sequential m({Dense(32, Activation::relu), Dense(1)}, 3);
    m.compile(compile);
    return m;
  };
  // What is learned: from every rank's rows, as from the whole file (sums in another order).
  Sequential alone = model(), together = model();
  alone.fit(whole, spec, {.epochs = 1, .batch_size = 64});
  together.fit(mine, spec, {.epochs = 1, .batch_size = 64, .communicator = world(), .sharded_data = true});
  const Preprocessing& expected = alone.preprocessing();
  const Preprocessing& learned = together.preprocessing();
  ASSERT_EQ(learned.features.size(), expected.features.size());
  for (std::size_t f = 0; f < expected.features.size(); ++f) {
    EXPECT_EQ(learned.features[f].categories, expected.features[f].categories) << expected.features[f].name;
    ASSERT_EQ(learned.features[f].fill.size(), expected.features[f].fill.size());
    for (std::size_t k = 0; k < expected.features[f].fill.size(); ++k)
      EXPECT_NEAR(learned.features[f].fill[k], expected.features[f].fill[k], 1e-12) << expected.features[f].name;
  }
  for (std::size_t c = 0; c < static_cast<std::size_t>(expected.input_width()); ++c) {
    EXPECT_NEAR(together.scaler().x.mean[c], alone.scaler().x.mean[c], 1e-12);
    EXPECT_NEAR(together.scaler().x.std[c], alone.scaler().x.std[c], 1e-12);
  }
  EXPECT_NEAR(together.scaler().y.std[0], alone.scaler().y.std[0], 1e-12);
  // Bins: each rank's quantiles weighted by its rows, so the same edges on every rank, near the
  // whole file's (a mean of the shards' quantiles is not the quantile of their union).
  ColumnSpec binned = spec;
  binned.bins = 8;
  Sequential bins_alone = model(), bins_together = model();
  bins_alone.fit(whole, binned, {.epochs = 1, .batch_size = 64});
  bins_together.fit(mine, binned, {.epochs = 1, .batch_size = 64, .communicator = world(), .sharded_data = true});
  const std::vector<double>& edges = bins_together.preprocessing().features.at(0).bin_edges;
  const std::vector<double>& whole_edges = bins_alone.preprocessing().features.at(0).bin_edges;
  ASSERT_EQ(edges.size(), 9u);
  ASSERT_EQ(whole_edges.size(), 9u);
  for (std::size_t k = 0; k < edges.size(); ++k) {
    expect_same_on_every_rank(edges[k], "a bin edge");
    EXPECT_NEAR(edges[k], whole_edges[k], 0.1) << "edge " << k;
  }

  // Training: with a validation fraction of each shard, the figures the same on every rank, and
  // the model as good on the whole file as one trained on all of it.
  Sequential alone_trained = model(), sharded = model();
  const FitOptions fit{.epochs = 40, .batch_size = 64, .validation_split = 0.2};
  alone_trained.fit(whole, spec, fit);
  FitOptions on_shards = fit;
  on_shards.communicator = world();
  on_shards.sharded_data = true;
  const History history = sharded.fit(mine, spec, on_shards);
  expect_same_on_every_rank(history.epochs.back().loss, "the loss");
  expect_same_on_every_rank(*history.epochs.back().val_loss, "the validation loss");
  const double mse_alone = alone_trained.evaluate(whole).mse, mse_sharded = sharded.evaluate(whole).mse;
  if (world()->rank() == 0)
    std::printf("%d shards: mse on the whole file %.4g (one process on the whole file: %.4g)\n", world()->size(),
                mse_sharded, mse_alone);
  EXPECT_LT(mse_sharded, 1.25 * mse_alone + 1e-3);
  const double variance = alone_trained.scaler().y.std[0] * alone_trained.scaler().y.std[0];
  EXPECT_LT(mse_sharded, 0.25 * variance) << "it learned more than the mean";
}

}  // namespace
}  // namespace ember
