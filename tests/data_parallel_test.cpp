// Data-parallel training in every build, sanitizers included: ranks as threads of one process,
// through a Communicator written here (the interface users implement for a transport of their own).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "ember/ember.hpp"
#include "ember/testing.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

/// What the ranks share: each collective gathers every rank's values, then lets every rank copy
/// the result before the next one may start.
class Rendezvous {
 public:
  explicit Rendezvous(int size) : size_(size) {}
  void all_reduce(std::span<double> values, Reduction reduction) {
    exchange(values, [&](bool first) {
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (first) {
          result_.assign(values.begin(), values.end());
          return;
        }
        double& r = result_[i];
        r = reduction == Reduction::sum   ? r + values[i]
            : reduction == Reduction::min ? std::min(r, values[i])
                                          : std::max(r, values[i]);
      }
    });
  }
  void broadcast(std::span<float> values, bool root) {
    std::vector<double> wide(values.begin(), values.end());
    exchange(wide, [&](bool) {
      if (root) result_ = wide;
    });
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(wide[i]);
  }

 private:
  template <typename Combine>
  void exchange(std::span<double> values, Combine combine) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return copied_ == 0; });  // the previous collective is over
    combine(arrived_ == 0);
    if (++arrived_ == size_) changed_.notify_all();
    changed_.wait(lock, [&] { return arrived_ == size_; });
    std::copy(result_.begin(), result_.end(), values.begin());
    if (++copied_ == size_) {
      arrived_ = copied_ = 0;
      changed_.notify_all();
    }
  }
  int size_, arrived_ = 0, copied_ = 0;
  std::vector<double> result_;
  std::mutex mutex_;
  std::condition_variable changed_;
};

class ThreadRank final : public Communicator {
 public:
  ThreadRank(Rendezvous& shared, int rank, int size) : shared_(shared), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return rank_; }
  void all_reduce(std::span<double> values, Reduction reduction) override { shared_.all_reduce(values, reduction); }
  void broadcast(std::span<float> values, int root) override { shared_.broadcast(values, rank_ == root); }
  [[noreturn]] void abort(int) override { std::abort(); }
  std::string describe() const override { return "threads"; }

 private:
  Rendezvous& shared_;
  int rank_, size_;
};

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
  Rendezvous shared(kRanks);
  // Rank 0's initial weights reach the others: they start from other seeds.
  std::vector<Sequential> ranks;
  for (int r = 0; r < kRanks; ++r) ranks.push_back(model(r == 0 ? 1 : 100 + r));
  std::vector<History> histories(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      FitOptions mine = fit;
      mine.communicator = std::make_shared<ThreadRank>(shared, r, kRanks);
      histories[r] = ranks[r].fit(x, y, mine);
    });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(ranks[r].parameters(), ranks[0].parameters()) << "rank " << r;
    ASSERT_EQ(histories[r].epochs.size(), expected.epochs.size());
    EXPECT_EQ(histories[r].epochs.back().loss, histories[0].epochs.back().loss);
  }
  EXPECT_LT(testing::relative_error(ranks[0].parameters(), alone.parameters()), 1e-6);
  EXPECT_NEAR(histories[0].epochs.back().val_loss.value(), expected.epochs.back().val_loss.value(),
              1e-6 * expected.epochs.back().val_loss.value());
}

}  // namespace
}  // namespace ember
