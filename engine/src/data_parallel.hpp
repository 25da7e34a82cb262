#pragma once
// What fit does differently when it trains data-parallel (ember/distributed.hpp): each rank trains
// on its contiguous slice of every global batch, and the step's gradients, the epoch's metric sums
// and the decisions to stop are combined over the ranks, so that every rank takes the same steps
// and reports the same figures as one process with the same global batch would.
#include <cstdint>
#include <string>
#include <vector>

#include "ember/distributed.hpp"
#include "plan.hpp"

namespace ember {

class DataParallel {
 public:
  /// communicator null or of one process: inactive, and fit trains as it always does.
  DataParallel(Communicator* communicator, std::int64_t batch_size, std::int64_t train_rows,
               bool deterministic = false);
  bool active() const { return communicator_ != nullptr; }
  bool writes_files() const { return !active() || communicator_->rank() == 0; }
  /// The plan's batch size: the largest slice of a global batch.
  std::int64_t plan_batch_size() const;
  /// This rank's part of an epoch's row order: its slice of each global batch, one after another.
  std::vector<std::int32_t> local_order(const std::vector<std::int32_t>& order) const;
  /// A training step of global batch b: this rank's gradients, scaled by its share of the batch's
  /// rows, summed over the ranks, with the stop requests. Whether any rank asked to stop.
  bool step(Plan& plan, std::int64_t batch, bool stop_requested);
  /// Metric sums over all ranks' rows.
  std::vector<float> sum(const std::vector<float>& local);
  /// Whether the condition holds on any rank (every rank gets the same answer).
  bool any(bool condition);
  /// Rank 0's value on every rank (the shuffling seed: every rank draws the same order).
  std::uint64_t broadcast(std::uint64_t value);
  /// Rank 0's parameters and optimizer state on every rank.
  void broadcast(std::vector<float>& parameters, std::vector<float>& state);
  /// Throws Error on every rank when the ranks' parameters differ (a checksum's minimum and
  /// maximum over the ranks): drift would otherwise go unnoticed.
  /// when: "after epoch 3", for the message.
  void check_same(const std::vector<float>& parameters, const std::string& when);

 private:
  std::int64_t slice_begin(std::int64_t batch_rows, int rank) const;
  /// The element-wise sum over the ranks, in place: the transport's all-reduce, or (deterministic)
  /// each rank's values gathered and added in rank order.
  void sum_over_ranks(std::vector<double>& values);
  Communicator* communicator_;
  std::int64_t batch_size_, train_rows_;
  bool deterministic_;
  std::vector<double> reduction_, gathered_;
};

}  // namespace ember
