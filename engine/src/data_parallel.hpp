#pragma once
// What fit does differently when it trains data-parallel (ember/distributed.hpp): each rank trains
// on its contiguous slice of every global batch, and the step's gradients, the epoch's metric sums
// and the decisions to stop are combined over the ranks, so that every rank takes the same steps
// and reports the same figures as one process with the same global batch would.
#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ember/backend.hpp"
#include "ember/distributed.hpp"
#include "plan.hpp"
#include "rank_sums.hpp"

namespace ember {

class DataParallel {
 public:
  /// communicator null or of one process: inactive, and fit trains as it always does (unless
  /// gradient_sum is nccl: then one rank of its own). sharded: each rank holds other rows
  /// (FitOptions::sharded_data). set_rows follows.
  DataParallel(Communicator* communicator, bool deterministic, bool sharded,
               GradientSum gradient_sum = GradientSum::automatic);
  /// The values a step summed on the host carries beside the gradients: the stop requests.
  static constexpr std::int64_t kHostStepExtras = 1;
  /// The global batch and this rank's training rows (all ranks' alike unless sharded).
  void set_rows(std::int64_t batch_size, std::int64_t train_rows);
  bool active() const { return communicator_ != nullptr; }
  bool sharded() const { return active() && sharded_; }
  /// Sharded: sums and unions over the ranks, for what fit learns from the rows; else empty.
  RankSums rank_sums();
  /// Sharded: the sum of a count over the ranks; else the count.
  std::int64_t total(std::int64_t count);
  /// Steps per epoch: sharded, the most any rank's rows need (the others then contribute none).
  std::int64_t batches() const { return batches_; }
  bool writes_files() const { return !active() || communicator_->rank() == 0; }
  /// Decides where the steps sum the gradients (on every rank alike) and, for the backend's own
  /// collective, connects the ranks: with every rank together, before the first step. What fit
  /// reports: the ranks and where their gradients are summed; empty when inactive.
  std::string connect(Backend& backend);
  /// The backend's collective the steps sum with, once connected; null when they sum on the host.
  DeviceCollective* collective() const { return collective_.get(); }
  /// The plan's batch size: the largest slice of a global batch.
  std::int64_t plan_batch_size() const;
  /// This rank's part of an epoch's row order: its slice of each global batch, one after another
  /// (sharded: its own rows, in their order).
  std::vector<std::int32_t> local_order(const std::vector<std::int32_t>& order) const;
  /// Sample weights' factors on each row's loss gradient for an epoch's row order (order and
  /// weights over this rank's training rows): w * (the global batch's rows) / (its rows' weights
  /// summed over every rank), so that the steps minimize the weighted mean over each global batch;
  /// 0 where the batch weighs nothing. Indexed by row; rows this rank does not train on get 0.
  /// Every rank calls it (sharded, the batches' sums are summed over the ranks).
  std::vector<float> row_factors(const std::vector<std::int32_t>& order, std::span<const float> weights);
  /// A training step of global batch b: this rank's gradients, scaled by its rows, summed over the
  /// ranks and divided by all ranks' rows, with the stop requests. Whether any rank asked to stop.
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
  /// The rows of a global batch rank trains on (sharded: each step, until its rows run out).
  std::int64_t slice_of(int rank) const;
  /// The rows rank trains on in global batch b, and all ranks' rows together.
  std::int64_t rows_of(int rank, std::int64_t batch) const;
  std::int64_t rows_in(std::int64_t batch) const;
  /// Names every rank's rows in global batch b, alike on every rank (Plan::train_step's shape).
  std::uint64_t step_shape(std::int64_t batch) const;
  /// Why the backend's collective cannot serve this run; empty when it can. Every rank gets the
  /// same answer.
  std::string collective_unusable(Backend& backend, std::string& library);
  /// Every rank's strings.
  std::set<std::string> unite(const std::set<std::string>& mine);
  /// Every rank's values end to end in rank order (total in all), this rank's at offset.
  void gather(std::span<const double> mine, std::size_t offset, std::size_t total, std::vector<double>& all);
  /// The element-wise sum over the ranks, in place: the transport's all-reduce, or (deterministic)
  /// each rank's values gathered and added in rank order.
  void sum_over_ranks(std::vector<double>& values);
  std::shared_ptr<Communicator> own_;  // the one rank of a GradientSum::nccl run without ranks
  Communicator* communicator_;
  std::int64_t batch_size_ = 1, train_rows_ = 0, batches_ = 0;
  std::vector<std::int64_t> rank_rows_;  // sharded: every rank's training rows
  bool deterministic_, sharded_;
  GradientSum gradient_sum_;
  std::unique_ptr<DeviceCollective> collective_;  // the steps sum on the backend when set
  bool warmed_up_ = false;
  std::vector<double> reduction_, statistics_, gathered_;
};

}  // namespace ember
