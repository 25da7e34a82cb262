#pragma once
// Ranks as threads of one process, through a Communicator written here (the interface users
// implement for a transport of their own). The sums are taken in the order the ranks arrive, as a
// real transport may; a rank may be told to arrive late.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "ember/distributed.hpp"
#include "ember/model.hpp"

namespace ember::testing {

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
  ThreadRank(Rendezvous& shared, int rank, int size, std::chrono::microseconds delay = {})
      : shared_(shared), rank_(rank), size_(size), delay_(delay) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return rank_; }
  void all_reduce(std::span<double> values, Reduction reduction) override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    shared_.all_reduce(values, reduction);
  }
  void broadcast(std::span<float> values, int root) override { shared_.broadcast(values, rank_ == root); }
  [[noreturn]] void abort(int) override { std::abort(); }
  std::string describe() const override { return "threads"; }

 private:
  Rendezvous& shared_;
  int rank_, size_;
  std::chrono::microseconds delay_;
};

/// Trains models[r] on rank r of models.size() threads; returns each rank's history, or rethrows
/// the first rank's exception once every rank has returned.
inline std::vector<History> fit_on_threads(std::vector<Sequential>& models, const Matrix& x, const Matrix& y,
                                           const FitOptions& fit, std::vector<std::chrono::microseconds> delays = {}) {
  const int ranks = static_cast<int>(models.size());
  delays.resize(models.size());
  Rendezvous shared(ranks);
  std::vector<History> histories(models.size());
  std::vector<std::exception_ptr> errors(models.size());
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      FitOptions mine = fit;
      mine.communicator = std::make_shared<ThreadRank>(shared, r, ranks, delays[static_cast<std::size_t>(r)]);
      try {
        histories[static_cast<std::size_t>(r)] = models[static_cast<std::size_t>(r)].fit(x, y, mine);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
  return histories;
}

}  // namespace ember::testing
