// Data-parallel training in every build, sanitizers included: ranks as threads of one process
// (thread_communicator.hpp).
#include "data_parallel.hpp"

#include <gtest/gtest.h>

#include "ember/ember.hpp"
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
        DataParallel parallel(&communicator, 30, 300, deterministic);
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
