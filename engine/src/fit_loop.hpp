#pragma once
// Sequential::fit on matrices, as a loop whose steps are named: the rows split and the scaler
// learned (construction), then under the model's backend the data placed once, and per epoch the
// order, the steps, validation, the figures, divergence, early stopping and checkpoints. Also
// the small checks that fit on a table shares with it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "data_parallel.hpp"
#include "ember/model.hpp"
#include "plan.hpp"

namespace ember {

/// InputError naming the first value of values that is not finite (what: "input", ...).
void check_finite(ConstView values, const char* what);
/// check_finite of the model's input x, and its category index columns (layer_part::indices of the
/// first layer) whole numbers in range: InputError naming the row and column.
void check_input(ConstView x, const std::vector<Layer>& layers);
/// The training rows of a split: as Keras counts them, the validation rows being the rest.
std::int64_t training_rows(std::int64_t rows, double validation_split);
/// Positions 0..n-1, the training rows first and the validation rows last, each in their own
/// order. ValidationRows::random draws the validation rows; with classes (one per row) it draws
/// the same fraction of each class. Folds 0, 1, ... of one seed hold out disjoint rows until they
/// have held out every row (an ensemble's member k validates on fold k).
std::vector<std::int64_t> validation_split_order(std::int64_t n, const FitOptions& options, std::uint64_t seed,
                                                 const std::vector<std::int64_t>& classes, std::int64_t fold = 0);
/// SettingError or InputError for options that no fit takes.
void check_fit_options(const FitOptions& options);
/// FitOptions::on_warning, or a line on stderr where it is not set.
using Warn = std::function<void(const std::string&)>;
Warn warner(const Warn& callback);
/// "feature column 'name'" (or its number where the names are unknown), for messages.
std::string column_label(const std::vector<std::string>& names, std::int64_t c, const char* kind);

class FitLoop {
 public:
  /// Checks the rows against the model, splits them (split_done: the validation rows are already
  /// the last ones, held_out of them where given) and, at the model's first fit, learns its scaler
  /// from the training rows. weights: one per row of x, or empty.
  FitLoop(Sequential& model, ConstView x, ConstView y, const FitOptions& options, std::int64_t dropped_rows,
          bool split_done, std::optional<std::int64_t> held_out, const std::vector<float>& weights);
  /// The epochs, on the model's backend; the model keeps the state after the last completed epoch
  /// (the best one with EarlyStopping::restore_best), also when an exception leaves.
  History run();

 private:
  /// weights: one per row of x, or empty; train_weights_ gets the training rows'.
  void split(bool split_done, const std::vector<float>& weights);
  void fit_scaler();
  /// The plan and the data on the backend, once; on_train_begin.
  void place(Backend& backend);
  void shuffle_for(std::int64_t epoch);
  void upload_order();
  /// Whether the steps take the sample weights themselves, inside their sums (a local step of a
  /// plan that sums rows exactly), rather than factors on the loss gradient rows.
  bool weights_in_sums() const { return plan_->sums_rows_exactly() && !parallel_.active(); }
  /// Batch b's step; whether a stop was requested (on any rank).
  bool step(std::int64_t b);
  /// An epoch's steps; false when a stop was requested (the epoch then ends at that batch).
  bool run_epoch(std::int64_t epoch);
  void validate();
  EpochRecord figures(std::int64_t epoch, double rate, std::chrono::steady_clock::time_point start);
  [[noreturn]] void diverged(const EpochRecord& record);
  std::optional<std::int64_t> first_bad_batch(std::int64_t epoch);
  /// The schedule's and early stopping's view of an epoch's loss; whether to stop.
  bool observe(const EpochRecord& record);
  void save_checkpoint();
  /// Ranks that drift apart stop the run instead of training on silently.
  void check_ranks(const std::string& when);
  /// The model's host state from the plan: the state after `done` epochs of this fit.
  void take_state(std::int64_t done, std::int32_t step);

  Sequential& model_;
  ConstView x_, y_;
  const FitOptions& options_;
  const std::int64_t dropped_rows_;
  const bool classification_;
  const Warn warn_;
  std::int64_t train_rows_ = 0, validation_rows_ = 0;
  // With several ranks, each trains on its slice of every batch and the steps' gradients are
  // summed; with sharded data each rank holds other rows, and what is learned from them (the
  // scaler, the figures' totals) is summed over the ranks.
  DataParallel parallel_;
  std::int64_t all_train_rows_ = 0, all_validation_rows_ = 0;
  std::vector<std::int64_t> train_index_, validation_index_;
  Matrix x_train_, y_train_;
  std::vector<float> train_weights_;  // in x_train_'s order

  // On the backend (place), under the model's lock. Declared first, the lock is released last:
  // after the plan and the buffers below have returned their memory to the backend.
  std::unique_lock<std::mutex> lock_;
  Backend* backend_ = nullptr;
  std::int64_t batch_size_ = 0, batches_ = 0;
  std::optional<Plan> plan_;
  std::vector<double> train_totals_, validation_totals_;  // R²'s: squared deviations from the mean
  BackendMatrix train_x_, train_y_, validation_x_, validation_y_;
  Buffer indices_buffer_, scales_buffer_;
  std::int32_t* indices_ = nullptr;
  float* scales_ = nullptr;

  // The epochs.
  std::uint64_t shuffle_seed_ = 0;
  std::vector<std::int32_t> order_;  // the epoch's row order
  bool counts_steps_ = false;
  std::int32_t step_at_start_ = 0, step_before_epoch_ = 0;
  std::int64_t epochs_before_ = 0;
  std::int64_t completed_ = 0;  // epochs of this fit whose state the snapshot holds
  History history_;
  double best_loss_ = 0;
  std::int64_t best_completed_ = 0, waited_ = 0;
  std::int32_t best_step_ = 0;
  ScheduleState best_schedule_;
};

}  // namespace ember
