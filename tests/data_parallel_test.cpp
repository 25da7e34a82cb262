// Data-parallel training in every build, sanitizers included: ranks as threads of one process
// (thread_communicator.hpp).
#include "data_parallel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "cpu/cpu_backend.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "ember/testing.hpp"
#include "gpu_binding.hpp"
#include "test_support.hpp"
#include "thread_communicator.hpp"

namespace ember {
namespace {

Sequential model(std::uint64_t seed) {
  Sequential m({Dense(8, Activation::relu), Dense(2)}, seed);
  m.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  return m;
}

TEST(Library, DataParallelOverThreadsMatchesOneProcess) {
  const Matrix x = testing::random_matrix(97, 3, 5), y = testing::random_matrix(97, 2, 6);
  const FitOptions fit{.epochs = 3, .batch_size = 10, .validation_split = 0.1};
  Sequential alone = model(1);
  const History expected = alone.fit(x, y, fit);
  constexpr int kRanks = 3;
  // Rank 0's initial weights reach the others: they start from other seeds.
  std::vector<Sequential> ranks;
  for (int r = 0; r < kRanks; ++r) ranks.push_back(model(r == 0 ? 1 : 100 + r));
  const std::vector<History> histories = testing::fit_on_threads(ranks, x, y, fit);
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(ranks[r].parameters(), ranks[0].parameters()) << "rank " << r;
    ASSERT_EQ(histories[r].epochs.size(), expected.epochs.size());
    EXPECT_EQ(histories[r].epochs.back().loss, histories[0].epochs.back().loss);
  }
  EXPECT_LT(testing::relative_error(ranks[0].parameters(), alone.parameters()), 1e-6);
  EXPECT_NEAR(histories[0].epochs.back().val_loss.value(), expected.epochs.back().val_loss.value(),
              1e-6 * expected.epochs.back().val_loss.value());
}

// A BatchNorm's statistics span every rank's rows, as torch.nn.SyncBatchNorm's: global batches of
// 10 rows in uneven slices over 3 ranks, a last batch of 7. The ranks' running figures and
// parameters stay the same and equal one process's; each rank's own rows would give others.
TEST(Library, BatchNormOverRanksTrainsAsOneProcess) {
  const auto normalized = [](std::uint64_t seed) {
    Sequential m({Dense(8, Activation::relu), BatchNorm(0.2f), Dense(6, Activation::tanh), BatchNorm(), Dense(2)},
                 seed);
    m.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
    return m;
  };
  const Matrix x = testing::random_matrix(97, 3, 25), y = testing::random_matrix(97, 2, 26);
  const FitOptions fit{.epochs = 3, .batch_size = 10, .validation_split = 0.1};
  Sequential alone = normalized(1);
  const History expected = alone.fit(x, y, fit);
  std::vector<Sequential> ranks{normalized(1), normalized(2), normalized(3)};
  const std::vector<History> histories = testing::fit_on_threads(ranks, x, y, fit);
  for (std::size_t r = 0; r < ranks.size(); ++r) EXPECT_EQ(ranks[r].parameters(), ranks[0].parameters()) << r;
  EXPECT_LT(testing::relative_error(ranks[0].parameters(), alone.parameters()), 1e-5);
  EXPECT_NEAR(histories[0].epochs.back().val_loss.value(), expected.epochs.back().val_loss.value(),
              1e-5 * expected.epochs.back().val_loss.value());
  EXPECT_LT(testing::relative_error(ranks[0].tensor(3, "running_var"), alone.tensor(3, "running_var")), 1e-5);
  const ConstView moved = alone.tensor(3, "running_var");
  EXPECT_TRUE(std::any_of(moved.data, moved.data + moved.cols, [](float v) { return v != 1.0f; }));
  Sequential small_batches = normalized(1);  // what a rank's own rows would give
  small_batches.fit(x, y, {.epochs = 3, .batch_size = 4, .validation_split = 0.1});
  EXPECT_GT(testing::relative_error(small_batches.parameters(), alone.parameters()), 1e-2);
}

TEST(Library, SampleWeightsOverRanksTrainAsOneProcess) {
  // Every rank holds every row: the weighted mean over each global batch, as one process takes it.
  const Matrix x = testing::random_matrix(97, 3, 15), y = testing::random_matrix(97, 2, 16);
  std::vector<float> weights(97);
  for (std::size_t r = 0; r < weights.size(); ++r) weights[r] = static_cast<float>((r * 5) % 7) / 2;  // 0 to 3
  FitOptions fit{.epochs = 3, .batch_size = 10, .validation_split = 0.1};
  fit.sample_weight = weights;
  Sequential alone = model(1);
  alone.fit(x, y, fit);
  std::vector<Sequential> ranks{model(1), model(1), model(1)};
  testing::fit_on_threads(ranks, x, y, fit);
  EXPECT_EQ(ranks[2].parameters(), ranks[0].parameters());
  EXPECT_LT(testing::relative_error(ranks[0].parameters(), alone.parameters()), 1e-6);
  Sequential unweighted = model(1);
  fit.sample_weight = {};
  unweighted.fit(x, y, fit);
  EXPECT_GT(testing::relative_error(unweighted.parameters(), alone.parameters()), 1e-3);  // the weights matter

  // Sharded: each of two ranks its own 40 rows, in order; a global batch of 10 is 5 rows of each.
  // One process sees the same batches with the rows interleaved so, and the same statistics.
  const Matrix all_x = testing::random_matrix(80, 3, 17), all_y = testing::random_matrix(80, 2, 18);
  std::vector<float> all_weights(80);
  for (std::size_t r = 0; r < all_weights.size(); ++r) all_weights[r] = static_cast<float>((r * 3) % 7);
  std::vector<std::int64_t> interleaved;  // one process's row p is rank p / 5 % 2's row 5 (p / 10) + p % 5
  std::vector<float> interleaved_weights;
  for (std::int64_t p = 0; p < 80; ++p) {
    interleaved.push_back((p / 5 % 2) * 40 + 5 * (p / 10) + p % 5);
    interleaved_weights.push_back(all_weights[static_cast<std::size_t>(interleaved.back())]);
  }
  FitOptions in_order{.epochs = 2, .batch_size = 10, .shuffle = false};
  in_order.sample_weight = interleaved_weights;
  Sequential one = model(1);
  one.fit(Matrix::take_rows(all_x, interleaved), Matrix::take_rows(all_y, interleaved), in_order);
  testing::Rendezvous shared(2);
  std::vector<Sequential> shards{model(1), model(1)};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      std::vector<std::int64_t> mine(40);
      std::iota(mine.begin(), mine.end(), 40 * r);
      FitOptions options{.epochs = 2, .batch_size = 10, .shuffle = false, .sharded_data = true};
      const std::vector<float> own(all_weights.begin() + 40 * r, all_weights.begin() + 40 * (r + 1));
      options.sample_weight = own;
      options.communicator = std::make_shared<testing::ThreadRank>(shared, r, 2);
      shards[static_cast<std::size_t>(r)].fit(Matrix::take_rows(all_x, mine), Matrix::take_rows(all_y, mine), options);
    });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(shards[1].parameters(), shards[0].parameters());
  EXPECT_LT(testing::relative_error(shards[0].parameters(), one.parameters()), 1e-6);
}

TEST(Library, DeterministicReductionAddsInRankOrderWhateverOrderTheRanksArriveIn) {
  // Values whose float64 sum depends on the order: (1 + 1e17) - 1e17 is 0, (-1e17 + 1e17) + 1 is
  // 1. The threads' transport adds in arrival order; rank 2 arrives first, then 0, then 1.
  const std::vector<float> values = {1e17f, 1.0f, -1e17f};
  const std::vector<std::chrono::microseconds> delays = {
      std::chrono::milliseconds(40), std::chrono::milliseconds(80), {}};
  const auto sums = [&](bool deterministic) {
    testing::Rendezvous shared(3);
    std::vector<float> result(3);
    std::vector<std::thread> threads;
    for (int r = 0; r < 3; ++r)
      threads.emplace_back([&, r] {
        const auto rank = static_cast<std::size_t>(r);
        testing::ThreadRank communicator(shared, r, 3, delays[rank]);
        DataParallel parallel(&communicator, deterministic, false);
        result[rank] = parallel.sum({values[rank]}).front();
      });
    for (std::thread& t : threads) t.join();
    return result;
  };
  EXPECT_EQ(sums(false), std::vector<float>(3, 1.0f)) << "the transport's order, as the delays arrange it";
  EXPECT_EQ(sums(true), std::vector<float>(3, 0.0f)) << "rank order: (1e17 + 1) - 1e17";
}

TEST(Library, RanksThatDriftApartStopTheRunWithinAFewHundredSteps) {
  // Rank 1 is compiled with another learning rate: its steps differ from the first one on, and the
  // checksum every 256 steps ends the run on every rank before the epoch's 300 steps are done.
  const Matrix x = testing::random_matrix(600, 3, 9), y = testing::random_matrix(600, 2, 10);
  testing::Rendezvous shared(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      Sequential m({Dense(4, Activation::relu), Dense(2)}, 1);
      m.compile({.optimizer = SGD{.lr = r == 0 ? 0.01f : 0.02f}, .device = Device::cpu});
      FitOptions fit{.epochs = 1, .batch_size = 2};
      fit.communicator = std::make_shared<testing::ThreadRank>(shared, r, 2);
      try {
        m.fit(x, y, fit);
      } catch (const Error& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (std::thread& t : threads) t.join();
  for (const std::string& error : errors)
    EXPECT_NE(error.find("the ranks' parameters differ at batch 256 of epoch 1"), std::string::npos) << error;
}

/// The reference backend with a collective of its own, as the CUDA backend's NCCL one: its sums go
/// through the rank's communicator (in float64, rounded to float32 as NCCL's are not), so that the
/// data-parallel step on a backend's collective runs here. device names the "GPU" (ranks sharing
/// one fall back to the host); unavailable makes it refuse.
class CollectiveCpuBackend final : public CpuBackend {
 public:
  CollectiveCpuBackend(Communicator& ranks, std::string device, std::string unavailable = "")
      : ranks_(ranks), device_(std::move(device)), unavailable_(std::move(unavailable)) {}
  CollectiveSupport collective_support() override {
    CollectiveSupport support;
    support.unavailable_reason = unavailable_;
    support.library = "test sums";
    support.device = device_;
    return support;
  }
  std::vector<std::uint8_t> new_collective_id() override { return {7, 1, 2}; }
  std::unique_ptr<DeviceCollective> join_collective(const std::vector<std::uint8_t>& id, int rank, int ranks) override {
    EXPECT_EQ(id, (std::vector<std::uint8_t>{7, 1, 2})) << "rank 0's id reaches every rank";
    EXPECT_EQ(rank, ranks_.rank());
    EXPECT_EQ(ranks, ranks_.size());
    return std::make_unique<Sums>(*this);
  }
  int sums = 0;  // started
  /// The steps at which a step of a new shape was recorded: NCCL needs every rank to record its
  /// captured sums at the same steps.
  std::vector<int> recorded_at;
  void run_step(std::uint64_t owner, std::uint64_t shape_key, const std::function<void()>& step) override {
    if (shapes_.insert({owner, shape_key}).second) recorded_at.push_back(steps_);
    ++steps_;
    step();
  }

 private:
  struct Sums final : DeviceCollective {
    explicit Sums(CollectiveCpuBackend& owner) : owner(owner) {}
    void start_scaled_sum(float* values, std::int64_t count, const float* factor) override {
      // As NCCL requires: every rank sums the same count in the same call.
      double counts[2] = {static_cast<double>(count), -static_cast<double>(count)};
      owner.ranks_.all_reduce(counts, Reduction::max);
      EXPECT_EQ(counts[0], -counts[1]) << "the ranks' sums differ in size";
      std::vector<double> scaled(values, values + count);
      for (double& value : scaled) value *= *factor;
      owner.ranks_.all_reduce(scaled, Reduction::sum);
      std::copy(scaled.begin(), scaled.end(), values);
      ++owner.sums;
    }
    void finish() override {}
    CollectiveCpuBackend& owner;
  };
  Communicator& ranks_;
  std::string device_, unavailable_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> shapes_;
  int steps_ = 0;
};

struct RankRun {
  std::vector<float> parameters;
  std::string data_parallel, error;
  int sums = 0;
  std::vector<int> recorded_at;
};

/// Trains a plan on each of ranks threads for two epochs as fit does (DataParallel's step on every
/// batch), rank r on its slice of each batch or (sharded) its own rows: 40 + 9 r of them.
std::vector<RankRun> train_ranks(
    int ranks, bool sharded, GradientSum gradient_sum, const std::function<std::string(int)>& device,
    const std::function<std::string(int)>& unavailable = [](int) { return ""; },
    const std::vector<Layer>& layers = {Dense(6, Activation::relu), Dense(2)}) {
  testing::Rendezvous shared(ranks);
  std::vector<RankRun> runs(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      RankRun& run = runs[static_cast<std::size_t>(r)];
      testing::ThreadRank communicator(shared, r, ranks);
      CollectiveCpuBackend backend(communicator, device(r), unavailable(r));
      // Unsharded: batches of 16 rows in slices of 5, 5 and 6, the last of 15 in slices of 5: rank 2
      // alone meets a new slice there.
      const std::int64_t rows = sharded ? 40 + 9 * r : 95;
      const Matrix x = testing::random_matrix(rows, 3, sharded ? 50 + r : 50),
                   y = testing::random_matrix(rows, 2, sharded ? 60 + r : 60);
      try {
        DataParallel parallel(&communicator, false, sharded, gradient_sum);
        parallel.set_rows(16, rows);
        Plan plan(backend, layers, 3, parallel.plan_batch_size(), Adam{.lr = 0.01f});
        plan.set_bucket_floats(10);  // two buckets: layer 1's 14 gradients, then layer 0's 24
        std::vector<float> parameters(static_cast<std::size_t>(plan.parameter_count())), state;
        Random random(3);
        for (float& value : parameters) value = static_cast<float>(random.uniform() - 0.5);
        state.assign(parameters.size() * 2, 0.0f);
        plan.upload_parameters(parameters, state);
        run.data_parallel = parallel.connect(backend);
        const BackendMatrix x_on(backend, x), y_on(backend, y);
        std::vector<std::int32_t> order(static_cast<std::size_t>(rows));
        std::iota(order.begin(), order.end(), 0);
        const std::vector<std::int32_t> local = parallel.local_order(order);
        plan.bind_training_set(x_on.view, y_on.view, local.data());
        for (int epoch = 0; epoch < 2; ++epoch) {
          plan.reset_epoch();
          for (std::int64_t b = 0; b < parallel.batches(); ++b) parallel.step(plan, b, false);
        }
        std::int32_t steps = 0;
        plan.download_parameters(run.parameters, state, steps);
      } catch (const Error& error) {
        run.error = error.what();
      }
      run.sums = backend.sums;
      run.recorded_at = backend.recorded_at;
    });
  for (std::thread& t : threads) t.join();
  return runs;
}

TEST(Library, BackendCollectiveStepsTrainAsTheHostSum) {
  // Each rank on a device of its own: the steps sum on the backend, bucket by bucket, each rank's
  // gradients times its share of the step's rows (uneven slices; sharded, ranks whose rows ran out).
  const auto own = [](int r) { return "gpu" + std::to_string(r); };
  for (const bool sharded : {false, true}) {
    const std::vector<RankRun> host = train_ranks(3, sharded, GradientSum::host, own);
    const std::vector<RankRun> backend = train_ranks(3, sharded, GradientSum::automatic, own);
    for (std::size_t r = 0; r < 3; ++r) {
      ASSERT_EQ(backend[r].error, "") << "sharded " << sharded;
      EXPECT_NE(backend[r].data_parallel.find("gradients summed by test sums in the step's CUDA graph"),
                std::string::npos)
          << backend[r].data_parallel;
      EXPECT_NE(host[r].data_parallel.find("gradients summed on the host"), std::string::npos);
      EXPECT_GT(backend[r].sums, 0);
      EXPECT_EQ(backend[r].sums, backend[0].sums) << "every rank the same sums, rows or none";
      EXPECT_EQ(backend[r].recorded_at, backend[0].recorded_at) << "every rank records its steps together";
      EXPECT_EQ(host[r].sums, 0);
      EXPECT_EQ(backend[r].parameters, backend[0].parameters) << "rank " << r << " sharded " << sharded;
      EXPECT_LT(testing::relative_error(backend[r].parameters, host[r].parameters), 1e-6) << "sharded " << sharded;
    }
  }
}

TEST(Library, BatchNormOverRanksSumsOnTheBackendAsOnTheHost) {
  // Its statistics summed by the collective inside the step, or on the host between the step's ops;
  // sharded, ranks whose rows ran out still take part in every sum.
  const auto own = [](int r) { return "gpu" + std::to_string(r); };
  const auto none = [](int) { return std::string(); };
  const std::vector<Layer> layers{Dense(6, Activation::relu), BatchNorm(0.2f), Dense(5, Activation::tanh), BatchNorm(),
                                  Dense(2)};
  for (const bool sharded : {false, true}) {
    const std::vector<RankRun> host = train_ranks(3, sharded, GradientSum::host, own, none, layers);
    const std::vector<RankRun> backend = train_ranks(3, sharded, GradientSum::automatic, own, none, layers);
    const std::vector<RankRun> plain = train_ranks(3, sharded, GradientSum::automatic, own);
    for (std::size_t r = 0; r < 3; ++r) {
      ASSERT_EQ(host[r].error, "") << "sharded " << sharded;
      ASSERT_EQ(backend[r].error, "") << "sharded " << sharded;
      EXPECT_EQ(host[r].sums, 0);
      EXPECT_GT(backend[r].sums, plain[r].sums) << "the statistics' sums too";
      EXPECT_EQ(backend[r].sums, backend[0].sums) << "every rank the same sums, rows or none";
      EXPECT_EQ(backend[r].recorded_at, backend[0].recorded_at);
      EXPECT_EQ(host[r].parameters, host[0].parameters) << "rank " << r << " sharded " << sharded;
      EXPECT_EQ(backend[r].parameters, backend[0].parameters) << "rank " << r << " sharded " << sharded;
      EXPECT_LT(testing::relative_error(backend[r].parameters, host[r].parameters), 1e-5) << "sharded " << sharded;
    }
  }
}

TEST(Library, RanksSharingADeviceOrLackingTheCollectiveSumOnTheHost) {
  const auto shared_device = [](int r) { return r < 2 ? std::string("gpu0") : std::string("gpu1"); };
  for (const RankRun& run : train_ranks(3, false, GradientSum::automatic, shared_device)) {
    EXPECT_EQ(run.error, "");
    EXPECT_NE(run.data_parallel.find("gradients summed on the host"), std::string::npos) << run.data_parallel;
    EXPECT_EQ(run.sums, 0);
  }
  const auto own = [](int r) { return "gpu" + std::to_string(r); };
  const auto rank_one_lacks = [](int r) { return r == 1 ? std::string("no library here") : std::string(); };
  for (const RankRun& run : train_ranks(2, false, GradientSum::automatic, own, rank_one_lacks))
    EXPECT_EQ(run.sums, 0) << "every rank falls back when one cannot: " << run.data_parallel;
  // Asked for explicitly, it is an error on every rank, none waiting for the others.
  for (const RankRun& run : train_ranks(3, false, GradientSum::nccl, shared_device))
    EXPECT_NE(run.error.find("GradientSum::nccl: 3 ranks share 2 GPUs"), std::string::npos) << run.error;
  for (const RankRun& run : train_ranks(2, false, GradientSum::nccl, own, rank_one_lacks))
    EXPECT_NE(run.error.find("GradientSum::nccl: "), std::string::npos) << run.error;
}

TEST(Library, GradientSumOnTheCpuSaysWhereItSums) {
  const Matrix x = testing::random_matrix(60, 3, 11), y = testing::random_matrix(60, 2, 12);
  FitOptions fit{.epochs = 2, .batch_size = 8};
  std::mutex mutex;  // the ranks' threads report at once
  std::set<std::string> reported;
  fit.on_train_begin = [&](const TrainingSummary& summary) {
    const std::lock_guard lock(mutex);
    reported.insert(summary.data_parallel);
  };
  std::vector<Sequential> ranks{model(1), model(1)};
  testing::fit_on_threads(ranks, x, y, fit);
  EXPECT_EQ(reported, std::set<std::string>{"threads; gradients summed on the host"}) << "on every rank";
  reported.clear();
  Sequential alone = model(1);
  alone.fit(x, y, fit);
  EXPECT_EQ(reported, std::set<std::string>{""}) << "one process";
  fit.gradient_sum = GradientSum::nccl;
  try {
    testing::fit_on_threads(ranks, x, y, fit);
    ADD_FAILURE() << "GradientSum::nccl on the CPU trained";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("GradientSum::nccl: the cpu backend has no collectives of its own"),
              std::string::npos)
        << error.what();
  }
  EXPECT_THROW(alone.fit(x, y, fit), InputError) << "one process: a communicator of one rank, on the CPU";
}

TEST(GpuBinding, EachLocalRankGetsOneOfTheVisibleGpus) {
  using distributed::visible_gpu_for;
  EXPECT_EQ(visible_gpu_for(0, nullptr, 8), "0");
  EXPECT_EQ(visible_gpu_for(5, nullptr, 8), "5");
  EXPECT_EQ(visible_gpu_for(9, nullptr, 8), "1") << "more ranks than GPUs: they share, in turn";
  EXPECT_EQ(visible_gpu_for(1, "4,6", 8), "6") << "the visible list, not the machine's";
  EXPECT_EQ(visible_gpu_for(2, "GPU-8a1f,GPU-77c2", 8), "GPU-8a1f") << "UUIDs as well";
  EXPECT_EQ(visible_gpu_for(3, "2", 8), std::nullopt) << "bound by the launcher already";
  EXPECT_EQ(visible_gpu_for(1, "", 8), std::nullopt) << "no GPU allowed";
  EXPECT_EQ(visible_gpu_for(1, nullptr, 1), std::nullopt);
  EXPECT_EQ(visible_gpu_for(1, nullptr, 0), std::nullopt) << "no driver";
}

}  // namespace
}  // namespace ember
