#pragma once
// A model compiled for one backend and one batch size: every tensor has a place in one arena
// allocated once, and a training step is a fixed schedule of backend ops with no allocation.
//
// Arena layout (floats, each region aligned to 64 floats = 256 bytes); a training plan has all of
// it, an inference plan (no optimizer) only the parameters, batch and activations:
//   parameters | optimizer state 1..k      regions with the parameters' layout (ParameterLayout),
//   | gradients                            so an update is one call over all parameters; k is 0
//                                          (SGD), 1 (SGD with momentum) or 2 (Adam, AdamW)
//   snapshot (parameters, state)           the state of the last good epoch: one copy each way
//   x batch (B, in) | y batch (B, targets) the step's gathered inputs and targets (targets: out for
//                                          regression, 1 class index for classification)
//   per layer the buffers its part keeps   forward outputs, kept for backward (layer_part::buffers:
//   (B, width_l) each                      a Dropout layer keeps none predicting)
//   gradient ping, pong (B, max units)     activation gradients: layer l writes the buffer layer
//                                          l + 1 no longer needs
//   metric sums of the loss: training and validation (loss_part::sums_width each) | counters: the
//   gather cursor and the epoch (int32 each; random draws are keyed by them)
//   | OptimizerScalars | the factor of a data-parallel step's sums (DeviceCollective), and 1
//   | per layer whose statistics span the batch, training: its scratch (layer_part::batch_scratch)
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <variant>
#include <vector>

#include "ember/backend.hpp"
#include "ember/model.hpp"
#include "layer_part.hpp"
#include "parameter_layout.hpp"

namespace ember {

/// A matrix uploaded to backend memory.
struct BackendMatrix {
  BackendMatrix() = default;
  BackendMatrix(Backend& backend, const Matrix& host);
  Buffer buffer;
  ConstView view;
};

// The kinds of StepSum.
/// This process's gradients alone.
struct LocalGradients {};
/// Data-parallel, summed on the host: the gradients of the next rows (0 to batch size; zeros for
/// 0) come to the host, reduce replaces them with the combined ones, which go back for the update.
/// A layer whose statistics span the batch (BatchNorm) sums them over the ranks during the step
/// with sum_statistics (in place; scaled: each rank's values times its share of the step's rows),
/// which such a plan needs; its steps then run unrecorded, the host waiting for each sum.
struct HostReduction {
  std::function<void(std::vector<float>& gradients)> reduce;
  std::function<void(std::vector<float>& values, bool scaled)> sum_statistics{};
};
/// Data-parallel, summed on the backend inside the recorded step: the gradients of the next rows
/// (0 to batch size; zeros for 0) times factor (this rank's rows over all ranks'), summed over the
/// ranks in buckets of layers as backward produces them, then the update. A layer whose statistics
/// span the batch sums them with the collective too, and waits for the sum. shape names every rank's
/// rows in this step (the same value on every rank, and rows a function of it): the recording is
/// keyed by it, so that the ranks record a step together, as NCCL requires of captured collectives.
struct DeviceSum {
  DeviceCollective* collective = nullptr;
  float factor = 1.0f;
  std::uint64_t shape = 0;
};
/// How a step's gradients are combined before the update: a new way is an alternative here and its
/// function in Plan::train_step's visit, which does not compile without it.
using StepSum = std::variant<LocalGradients, HostReduction, DeviceSum>;

class Plan {
 public:
  /// A training plan with optimizer, else an inference plan (forward only). loss decides the
  /// targets' width and the metric sums.
  /// The bytes of backend memory a plan of these settings places (its arena_bytes()), known
  /// before anything is allocated; an upper bound where the sizes are absurd (beyond 2^58 bytes).
  static double bytes_needed(const std::vector<Layer>& layers, std::int64_t input_width, std::int64_t batch_size,
                             const std::optional<Optimizer>& optimizer, const Loss& loss);
  /// seed keys the layers' random draws (Dropout's masks) with their positions; clip_norm > 0
  /// clips the gradients' norm before each update (CompileOptions::clip_norm).
  Plan(Backend& backend, const std::vector<Layer>& layers, std::int64_t input_width, std::int64_t batch_size,
       std::optional<Optimizer> optimizer = std::nullopt, Loss loss = MeanSquaredError{}, std::uint64_t seed = 0,
       float clip_norm = 0.0f);
  ~Plan() { backend_.forget_steps(id_); }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  std::int64_t batch_size() const { return batch_size_; }
  std::int64_t parameter_count() const { return layout_.count(); }
  std::size_t arena_bytes() const { return arena_.bytes(); }

  /// The parameters and, for a training plan, the optimizer state (its buffers one after another,
  /// optimizer_state_names order, each of the parameters' layout) and step count.
  void upload_parameters(const std::vector<float>& parameters, const std::vector<float>& state = {},
                         std::int32_t step = 0);
  void download_parameters(std::vector<float>& parameters, std::vector<float>& state, std::int32_t& step);
  /// Copies the parameters and optimizer state aside (on the backend), and back: fit keeps the
  /// state of the last completed epoch there, to return to when an epoch fails.
  void snapshot_state();
  void restore_state();
  /// A second copy, of the best epoch (early stopping): reserve_best allocates it (before
  /// training: no step allocates), keep_best copies the current state there, restore_best back.
  void reserve_best();
  void keep_best();
  void restore_best();
  /// The learning-rate factor the next steps apply (a schedule's, OptimizerScalars::lr_scale).
  void set_lr_scale(float scale);
  /// The optimizer's step count (OptimizerScalars::step), e.g. back to a snapshot's.
  void set_step(std::int32_t step);
  /// The gradients of the last step (same layout as the parameters), for gradient checks.
  std::vector<float> download_gradients();

  // ---- training --------------------------------------------------------------------------------
  /// The training set the steps gather from: x (n, in), y (n, out), indices n int32, all backend memory.
  void bind_training_set(ConstView x, ConstView y, const std::int32_t* indices);
  /// Per-row weights of the training set, (n, 1) in backend memory, gathered with the batch.
  /// A local step (LocalGradients) of a plan that sums_rows_exactly() takes fit's sample weights
  /// themselves; any other step takes factors: each step's loss gradient row is multiplied by its
  /// row's factor (the sample weight times its batch's rows over the batch's sum of weights).
  /// Unbound, or an empty view: every row weighs 1.
  void bind_row_weights(ConstView weights);
  /// Whether a local step weighs its rows inside the parameter gradients' float64 sums: on a
  /// row-invariant backend (Backend::row_invariant) with layers that take row weights
  /// (layer_part::takes_row_weights). Each row's loss gradient is then its own (not divided by the
  /// batch's rows) and every per-row value of the step comes from that row alone, so that the step
  /// does not depend on the rows' order and a row of weight k gives the step of k copies of it
  /// (to float64 rounding in the sums). Else the loss gradient rows are scaled (bind_row_weights).
  bool sums_rows_exactly() const { return sums_rows_exactly_; }
  /// Sets the gather cursor to 0 and zeroes the error sums (start of an epoch); epoch keys the
  /// epoch's random draws, so that an epoch run again (or resumed) draws the same.
  void reset_epoch(std::int64_t epoch = 0);
  /// One step on the next rows (<= batch size) of the index list: forward, loss, backward, the
  /// gradients combined with other processes' as sum says (StepSum), update.
  void train_step(std::int64_t rows, const StepSum& sum = LocalGradients{});
  /// Runs the sums of train_step's buckets once, outside a recorded step, and waits for them: NCCL
  /// sets up its connections for a size at its first sum, which must not happen inside a capture.
  /// Leaves the gradients undefined.
  void warm_up(DeviceCollective& collective);
  /// The floats of gradients a bucket collects before its sum starts (by default 2^20, 4 MiB: fewer,
  /// larger sums cost less per byte; smaller ones start sooner).
  void set_bucket_floats(std::int64_t floats) { bucket_floats_ = floats; }

  // ---- inference -------------------------------------------------------------------------------
  /// Runs the layers on input (rows <= batch size, in), predicting (Dropout passes its input on);
  /// returns the output activation view.
  ConstView forward(ConstView input) { return forward(input, false); }
  /// Adds the loss of prediction vs target into the validation sums.
  void accumulate_validation(ConstView prediction, ConstView target);

  /// The epoch's metric sums of the loss (loss_part.hpp) over the training steps and over
  /// validation. One device read.
  struct LossSums {
    std::vector<float> train, validation;
  };
  LossSums read_loss_sums();

 private:
  /// Where each region of the arena starts, in floats from its start; floats: the whole arena.
  struct ArenaLayout {
    std::int64_t region_floats = 0, x = 0, y = 0, weights = 0, sums = 0, cursor = 0, scalars = 0, factor = 0,
                 floats = 0;
    std::vector<std::int64_t> outputs, extras, scratch;  // -1 where the layer keeps none
    std::array<std::int64_t, 2> gradients{};
  };
  static ArenaLayout arena_layout(const std::vector<Layer>& layers, std::int64_t input_width, std::int64_t batch_size,
                                  const std::optional<Optimizer>& optimizer, const Loss& loss);
  ConstView forward(ConstView input, bool training);
  // train_step, one function per kind of StepSum.
  void local_step(std::int64_t rows);
  void host_reduced_step(std::int64_t rows, const HostReduction& host);
  void device_summed_step(std::int64_t rows, const DeviceSum& device);
  void enqueue_train_step(std::int64_t rows);
  /// ranks: the sum over the ranks of the layers whose statistics span the batch (a data-parallel
  /// step). exact: the rows weighed in the sums (sums_rows_exactly; a local step only).
  void enqueue_gradients(std::int64_t rows, DeviceCollective* collective = nullptr, const SumOverRanks* ranks = nullptr,
                         bool exact = false);
  /// A rank without rows in a data-parallel step: the sums every other rank makes, in the same
  /// order, with zeros for its own part: each layer spanning the batch (forward, then backward) and,
  /// with a collective, each bucket of gradients (zeros too).
  void enqueue_sums_without_rows(const SumOverRanks* ranks, DeviceCollective* collective);
  /// The sum over the ranks of a collective step's statistics: in place, scaled by the step's factor.
  SumOverRanks collective_sum(DeviceCollective& collective);
  void enqueue_update();
  /// After layer l's backward: when the gradients from layer l's to bucket_end fill a bucket, or l
  /// is the first layer with parameters, starts their sum and returns where the next bucket ends;
  /// else bucket_end.
  float* sum_bucket_after(std::size_t l, float* bucket_end, DeviceCollective& collective);
  void set_sum_factor(float factor);
  void require_training(const char* what) const;
  /// Throws Error unless a training step of rows (fewest to the batch size) can run.
  void check_step(std::int64_t rows, std::int64_t fewest) const;

  Backend& backend_;
  std::uint64_t id_;  // names this plan's recorded steps in the backend
  std::int64_t batch_size_;
  std::int64_t input_width_;
  ParameterLayout layout_;
  std::optional<Optimizer> optimizer_;
  Loss loss_;
  float clip_norm_ = 0.0f;
  std::int64_t sums_width_ = 0;
  std::int64_t state_buffers_ = 0;  // k
  std::int64_t region_floats_ = 0;  // each parameter-layout region's size, aligned
  Buffer arena_;
  Buffer best_;
  std::vector<Layer> layers_;
  std::vector<layer_part::Slots> slots_;
  std::size_t first_with_parameters_ = 0;
  bool spans_batch_ = false;  // some layer's statistics span the batch (layer_part::batch_scratch)
  bool sums_rows_exactly_ = false;
  std::vector<ConstView> layer_inputs_;  // a training step's forward: each layer's input, for backward
  float* parameters_ = nullptr;
  float* state_ = nullptr;  // k regions
  float* gradients_ = nullptr;
  float* snapshot_ = nullptr;
  float* x_batch_ = nullptr;
  float* y_batch_ = nullptr;
  std::array<float*, 2> gradient_buffers_{};
  float* loss_sums_ = nullptr;      // training, then validation
  std::int32_t* cursor_ = nullptr;  // the gather cursor, then the epoch
  OptimizerScalars* scalars_ = nullptr;
  float* sum_factor_ = nullptr;  // then a 1, the factor of unscaled sums
  std::int64_t bucket_floats_ = std::int64_t{1} << 20;
  float sum_factor_value_ = std::numeric_limits<float>::quiet_NaN();  // what sum_factor_ holds
  ConstView train_x_{}, train_y_{}, train_weights_{};
  float* weight_batch_ = nullptr;
  const std::int32_t* train_indices_ = nullptr;
};

}  // namespace ember
