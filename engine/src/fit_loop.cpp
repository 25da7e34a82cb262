#include "fit_loop.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "embedding_math.hpp"
#include "ember/error.hpp"
#include "ember/random.hpp"
#include "layer_part.hpp"
#include "loss_part.hpp"
#include "optimizer_part.hpp"
#include "preprocessing_ops.hpp"

namespace ember {

void check_finite(ConstView values, const char* what) {
  for (std::int64_t r = 0; r < values.rows; ++r)
    for (std::int64_t c = 0; c < values.cols; ++c)
      if (!std::isfinite(values(r, c)))
        throw InputError(
            fmt::format("{} row {} column {} is not finite ({}); remove or fix it", what, r + 1, c + 1, values(r, c)));
}

void check_input(ConstView x, const std::vector<Layer>& layers) {
  check_finite(x, "input");
  if (layers.empty()) return;
  const layer_part::Indices indices = layer_part::indices(layers.front(), x.cols);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = x.cols - indices.count; c < x.cols; ++c)
      if (embedding_math::table_row(x(r, c), indices.categories) < 0)
        throw InputError(
            fmt::format("input row {} column {} is {}, not a category index: {} takes whole numbers "
                        "0 to {} there",
                        r + 1, c + 1, x(r, c), describe(layers.front()), indices.categories - 1));
}

/// The training rows of a split: as Keras counts them, the validation rows being the rest.
std::int64_t training_rows(std::int64_t rows, double validation_split) {
  return static_cast<std::int64_t>(static_cast<double>(rows) * (1.0 - validation_split));
}

/// Positions 0..n-1, the training rows first and the validation rows last, each in their own
/// order. ValidationRows::random draws the validation rows; with classes (one per row) it draws
/// the same fraction of each class: every row's key is its random rank within its class divided
/// by the class's size, and the rows of a window of keys are held out, the largest for fold 0,
/// the window below it for fold 1, and so on around (each window takes the same fraction of
/// every class).
std::vector<std::int64_t> validation_split_order(std::int64_t n, const FitOptions& options, std::uint64_t seed,
                                                 const std::vector<std::int64_t>& classes, std::int64_t fold) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const std::int64_t train = training_rows(n, options.validation_split);
  if (train == n || options.validation_rows == ValidationRows::last) return order;
  Random random(derive_seed(seed, 0x7a11da7e));
  std::vector<std::int64_t> shuffled = order;
  random.shuffle(shuffled);
  std::map<std::int64_t, std::int64_t> class_size, seen;
  for (std::int64_t r = 0; r < n; ++r) ++class_size[classes.empty() ? 0 : classes[static_cast<std::size_t>(r)]];
  std::vector<double> key(static_cast<std::size_t>(n));
  for (const std::int64_t r : shuffled) {
    const std::int64_t c = classes.empty() ? 0 : classes[static_cast<std::size_t>(r)];
    key[static_cast<std::size_t>(r)] = static_cast<double>(seen[c]++) / static_cast<double>(class_size[c]);
  }
  // Stable: ties (equal fractions in classes of one size) keep the shuffled order, so the draw stays random.
  std::stable_sort(shuffled.begin(), shuffled.end(), [&](std::int64_t a, std::int64_t b) {
    return key[static_cast<std::size_t>(a)] < key[static_cast<std::size_t>(b)];
  });
  std::vector<bool> held_out(static_cast<std::size_t>(n), false);
  const std::int64_t held = n - train, first = ((train - fold % n * held) % n + n) % n;
  for (std::int64_t i = 0; i < held; ++i)
    held_out[static_cast<std::size_t>(shuffled[static_cast<std::size_t>((first + i) % n)])] = true;
  std::stable_partition(order.begin(), order.end(),
                        [&](std::int64_t r) { return !held_out[static_cast<std::size_t>(r)]; });
  return order;
}

void check_fit_options(const FitOptions& options) {
  if (options.early_stopping && !(options.early_stopping->patience >= 0))
    throw SettingError("EarlyStopping::patience",
                       fmt::format("{}: must be 0 or more", options.early_stopping->patience));
  if (options.early_stopping &&
      !(options.early_stopping->min_delta >= 0.0 && std::isfinite(options.early_stopping->min_delta)))
    throw SettingError("EarlyStopping::min_delta",
                       fmt::format("{}: must be a finite number >= 0", options.early_stopping->min_delta));
  if (options.checkpoint_every < 0)
    throw SettingError("FitOptions::checkpoint_every", fmt::format("{}: must be 0 or more", options.checkpoint_every));
  if (options.validation_data && options.validation_split != 0.0)
    throw SettingError("FitOptions::validation_data",
                       fmt::format("goes with validation_split 0 (the rows to validate on are given), not {}",
                                   options.validation_split));
  if (options.validation_data && options.sharded_data)
    throw SettingError("FitOptions::validation_data",
                       "does not go with sharded_data: each rank would count the same rows; hold out a split of "
                       "each rank's shard (validation_split) instead");
  if (options.checkpoint_every > 0 && options.checkpoint_path.empty())
    throw SettingError("FitOptions::checkpoint_path", "is empty: checkpoint_every needs a file to write");
  if (options.epochs < 0) throw InputError(fmt::format("epochs must be >= 0, got {}", options.epochs));
  if (options.members < 0 || options.members > FitOptions::kMaxMembers)
    throw SettingError("FitOptions::members", fmt::format("{}: must be 1 to {} (0: the model's own count)",
                                                          options.members, FitOptions::kMaxMembers));
  if (options.batch_size <= 0) throw InputError(fmt::format("batch size must be >= 1, got {}", options.batch_size));
  if (!(options.validation_split >= 0.0 && options.validation_split < 1.0))
    throw InputError(fmt::format("validation split must be in [0, 1), got {}", options.validation_split));
}

Warn warner(const Warn& callback) {
  return [callback](const std::string& message) {
    if (callback)
      callback(message);
    else
      std::fprintf(stderr, "warning: %s\n", message.c_str());
  };
}

std::string column_label(const std::vector<std::string>& names, std::int64_t c, const char* kind) {
  return c < static_cast<std::int64_t>(names.size())
             ? fmt::format("{} column '{}'", kind, printable(names[static_cast<std::size_t>(c)]))
             : fmt::format("{} column {}", kind, c + 1);
}

namespace {

/// Targets that look like class labels (0/1, or a few whole numbers) are trained as regression
/// here: say so once.
void warn_about_label_targets(const Matrix& y, const std::vector<std::string>& names, const Warn& warn) {
  constexpr std::size_t kMaxLabels = 10;
  constexpr std::int64_t kMinRows = 20;
  if (y.rows() < kMinRows) return;
  for (std::int64_t c = 0; c < y.cols(); ++c) {
    std::set<float> values;
    bool whole = true;
    for (std::int64_t r = 0; r < y.rows() && whole && values.size() <= kMaxLabels; ++r) {
      whole = y(r, c) == std::floor(y(r, c));
      values.insert(y(r, c));
    }
    if (!whole || values.size() > kMaxLabels || values.size() < 2) continue;
    std::string list;
    for (const float value : values) list += (list.empty() ? "" : ", ") + fmt::format("{}", value);
    warn(
        fmt::format("{} holds only the values {}: if these are class labels, note that it is trained as "
                    "regression (mean squared error) and predicted as a number; to train a classifier on its labels, "
                    "use the loss CrossEntropy",
                    column_label(names, c, "target"), list));
  }
}

/// The factor of the optimizer's rate base that trains epoch at rate, which
/// FitOptions::on_epoch_begin returned.
float scale_for_rate(double rate, double base, std::int64_t epoch) {
  if (!std::isfinite(rate) || rate < 0)
    throw SettingError("FitOptions::on_epoch_begin",
                       fmt::format("returned the rate {} for epoch {}: it must be finite and 0 or more", rate, epoch));
  if (base > 0) return static_cast<float>(rate / base);
  if (rate == 0) return 1.0f;
  throw SettingError("FitOptions::on_epoch_begin",
                     fmt::format("returned the rate {} for epoch {}, but the optimizer's lr is 0: a rate scales it, "
                                 "so compile with an lr above 0",
                                 rate, epoch));
}

/// Names what likely made training diverge, by the settings that set it (Adam::lr, ...).
std::string divergence_causes(const Optimizer& optimizer, float clip_norm, bool normalized) {
  const std::string name = optimizer_name(optimizer);
  const std::string type = name == "sgd" ? "SGD" : name == "adam" ? "Adam" : name == "adamw" ? "AdamW" : "RMSprop";
  std::string causes = fmt::format("try a smaller learning rate ({}::lr, now {})", type, learning_rate(optimizer));
  if (clip_norm == 0.0f)
    causes +=
        "; or clip the gradients (CompileOptions::clip_norm, e.g. 1), which keeps a batch of extreme rows "
        "from throwing the weights far";
  const float decay = std::visit([](const auto& settings) { return settings.weight_decay; }, optimizer);
  if (const auto* sgd = std::get_if<SGD>(&optimizer); sgd != nullptr && sgd->momentum >= 1.0f)
    causes +=
        fmt::format("; momentum {} is >= 1, which makes every update grow: use SGD::momentum below 1", sgd->momentum);
  if (decay * learning_rate(optimizer) >= 1.0f)
    causes += fmt::format("; weight decay {} times the learning rate is >= 1, which overshoots ({}::weight_decay)",
                          decay, type);
  if (!normalized) causes += "; the inputs and targets are not standardized (FitOptions::normalize = false)";
  return causes;
}

}  // namespace

FitLoop::FitLoop(Sequential& model, ConstView x, ConstView y, const FitOptions& options, std::int64_t dropped_rows,
                 bool split_done, std::optional<std::int64_t> held_out, const std::vector<float>& weights)
    : model_(model),
      x_(x),
      y_(y),
      options_(options),
      dropped_rows_(dropped_rows),
      classification_(is_classification(model.options_.loss)),
      warn_(warner(options.on_warning)),
      parallel_(options.communicator.get(), options.deterministic_reduction, options.sharded_data,
                options.gradient_sum) {
  if (!model_.compiled_) throw InputError("compile the model before fit");
  check_fit_options(options);
  if (x.rows == 0) throw InputError("fit needs at least one row");
  if (x.rows != y.rows) throw InputError(fmt::format("{} input rows do not match {} target rows", x.rows, y.rows));
  model_.check_targets(y);
  if (model_.built() && x.cols != model_.input_width_)
    throw InputError(
        fmt::format("the model takes {} inputs but the data has {} feature columns", model_.input_width_, x.cols));
  check_input(x, model_.layers_);
  train_rows_ = held_out ? x.rows - *held_out : training_rows(x.rows, options.validation_split);
  validation_rows_ = x.rows - train_rows_;
  if (train_rows_ == 0)
    throw InputError(
        fmt::format("FitOptions::validation_split {} leaves no training rows out of {}; use a smaller split",
                    options.validation_split, x.rows));
  model_.check_memory(x.cols, std::min(options.batch_size, train_rows_));
  if (!model_.built()) model_.build(x.cols);
  all_train_rows_ = parallel_.total(train_rows_);
  all_validation_rows_ = parallel_.total(validation_rows_);
  split(split_done, weights);
  if (!model_.scaler_fitted_) fit_scaler();
}

void FitLoop::split(bool split_done, const std::vector<float>& weights) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(x_.rows));
  std::iota(order.begin(), order.end(), 0);
  if (!split_done) {
    std::vector<std::int64_t> row_classes;
    for (std::int64_t r = 0; classification_ && r < y_.rows; ++r)
      row_classes.push_back(static_cast<std::int64_t>(y_(r, 0)));
    order = validation_split_order(x_.rows, options_, parallel_.broadcast(options_.seed.value_or(model_.seed_)),
                                   row_classes, static_cast<std::int64_t>(model_.member_index_));
  }
  train_index_.assign(order.begin(), order.begin() + train_rows_);
  validation_index_.assign(order.begin() + train_rows_, order.end());
  x_train_ = Matrix::take_rows(x_, train_index_);
  y_train_ = Matrix::take_rows(y_, train_index_);
  if (weights.empty()) return;
  float total = 0.0f;
  for (const std::int64_t i : train_index_) {
    train_weights_.push_back(weights[static_cast<std::size_t>(i)]);
    total += train_weights_.back();
  }
  if (parallel_.sum({total})[0] == 0.0f)
    throw SettingError("FitOptions::sample_weight", "is 0 for every training row: nothing would be learned");
}

void FitLoop::fit_scaler() {
  Scaler& scaler = model_.scaler_;
  const Preprocessing& preprocessing = model_.preprocessing_;
  const RankSums ranks = parallel_.rank_sums();
  scaler.enabled = options_.normalize;
  // Weighted rows count as often as their weights, as repeated rows would.
  scaler.x =
      options_.normalize ? column_statistics(x_train_, ranks, train_weights_) : ColumnStatistics::identity(x_.cols);
  // Indicators stay 0 or 1 (and bins in [0, 1]): standardized, a category in 1 row of 1000 would
  // become an input near 30 that the network fits as an outlier (scikit-learn's pipelines scale
  // numbers only). The first layer's category indices pass as they are.
  std::vector<bool> unscaled = preprocessing.unit_inputs();
  if (static_cast<std::int64_t>(unscaled.size()) != x_.cols)  // a fit on matrices: numbers
    unscaled.assign(static_cast<std::size_t>(x_.cols), false);
  const std::int64_t indices = layer_part::indices(model_.layers_.front(), x_.cols).count;
  std::fill(unscaled.end() - indices, unscaled.end(), true);
  for (std::size_t c = 0; c < unscaled.size(); ++c)
    if (unscaled[c]) {
      scaler.x.mean[c] = 0.0;
      scaler.x.std[c] = 1.0;
    }
  std::erase_if(scaler.x.constant_columns, [&](std::int64_t c) { return unscaled[static_cast<std::size_t>(c)]; });
  // Class labels are indices, never standardized.
  scaler.y = options_.normalize && !classification_ ? column_statistics(y_train_, ranks, train_weights_)
                                                    : ColumnStatistics::identity(model_.output_width());
  const std::vector<std::string> inputs = preprocessing.input_names();
  for (std::int64_t c : scaler.x.constant_columns)
    warn_(fmt::format("{} is constant; its standard deviation is taken as 1", column_label(inputs, c, "feature")));
  for (std::int64_t c : scaler.y.constant_columns)
    warn_(fmt::format("{} is constant; its standard deviation is taken as 1",
                      column_label(preprocessing.targets, c, "target")));
  if (!classification_) warn_about_label_targets(y_train_, preprocessing.targets, warn_);
  model_.scaler_fitted_ = true;
}

void FitLoop::place(Backend& backend) {
  backend_ = &backend;
  const Scaler& scaler = model_.scaler_;
  const CompileOptions& compiled = model_.options_;
  batch_size_ = std::min(options_.batch_size, all_train_rows_);
  parallel_.set_rows(batch_size_, train_rows_);
  plan_.emplace(backend, model_.layers_, model_.input_width_, parallel_.plan_batch_size(), compiled.optimizer,
                compiled.loss, model_.seed_, compiled.clip_norm);
  parallel_.broadcast(model_.parameters_, model_.optimizer_state_);
  plan_->upload_parameters(model_.parameters_, model_.optimizer_state_, model_.optimizer_step_);
  const std::string data_parallel = parallel_.connect(backend);

  // The data goes to the backend once; the steps gather their batches there.
  const RankSums ranks = parallel_.rank_sums();
  const Matrix y_validation = Matrix::take_rows(y_, validation_index_);
  const Matrix y_train_scaled = classification_ ? y_train_ : scaler.y.standardize(y_train_);
  const Matrix y_validation_scaled = classification_ ? y_validation : scaler.y.standardize(y_validation);
  if (!classification_) {
    train_totals_ = column_moments(y_train_scaled, ranks).squares;
    validation_totals_ = column_moments(y_validation_scaled, ranks).squares;
  }
  train_x_ = BackendMatrix(backend, scaler.x.standardize(x_train_));
  train_y_ = BackendMatrix(backend, y_train_scaled);
  validation_x_ = BackendMatrix(backend, scaler.x.standardize(Matrix::take_rows(x_, validation_index_)));
  validation_y_ = BackendMatrix(backend, y_validation_scaled);
  indices_buffer_ = Buffer(backend, static_cast<std::size_t>(train_rows_) * sizeof(std::int32_t));
  indices_ = static_cast<std::int32_t*>(indices_buffer_.data());
  plan_->bind_training_set(train_x_.view, train_y_.view, indices_);
  // With sample weights: the weights themselves, once, where the steps weigh rows inside their
  // sums; else each row's factor on its loss gradient for the epoch's order (upload_order).
  scales_buffer_ = Buffer(backend, std::max<std::size_t>(1, train_weights_.size()) * sizeof(float));
  scales_ = static_cast<float*>(scales_buffer_.data());
  if (!train_weights_.empty()) {
    plan_->bind_row_weights({scales_, train_rows_, 1});
    if (weights_in_sums())
      backend.copy_to_device(scales_, train_weights_.data(), train_weights_.size() * sizeof(float));
  }
  if (options_.on_train_begin)
    options_.on_train_begin({.training_rows = all_train_rows_,
                             .validation_rows = all_validation_rows_,
                             .dropped_rows = dropped_rows_,
                             .inputs = model_.input_width_,
                             .outputs = model_.output_width(),
                             .parameters = model_.parameter_count(),
                             .backend = model_.runtime_.name,
                             .data_parallel = data_parallel,
                             .epochs_before = model_.epochs_completed_,
                             .epochs = options_.epochs});

  shuffle_seed_ = parallel_.broadcast(options_.seed.value_or(model_.seed_));
  if (model_.member_index_ > 0)  // an ensemble's member: its own order
    shuffle_seed_ = derive_seed(shuffle_seed_, 0x3e3be700u + model_.member_index_);
  if (parallel_.sharded())  // each rank shuffles its own rows
    shuffle_seed_ = derive_seed(shuffle_seed_, 0x5eed0000u + static_cast<std::uint64_t>(options_.communicator->rank()));
  batches_ = parallel_.batches();
  order_.resize(static_cast<std::size_t>(train_rows_));
  // The step count of the snapshot (counted on the host: the snapshot copies only the buffers).
  counts_steps_ = optimizer_part::counts_steps(compiled.optimizer);
  step_at_start_ = step_before_epoch_ = best_step_ = model_.optimizer_step_;
  epochs_before_ = model_.epochs_completed_;
  best_loss_ = std::numeric_limits<double>::infinity();
  best_schedule_ = model_.schedule_state_;
}

// The row order of an epoch (absolute epoch numbers, so a resumed run shuffles as an uninterrupted one).
void FitLoop::shuffle_for(std::int64_t epoch) {
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) Random(derive_seed(shuffle_seed_, static_cast<std::uint64_t>(epoch))).shuffle(order_);
}

void FitLoop::upload_order() {
  const std::vector<std::int32_t> local = parallel_.local_order(order_);
  backend_->copy_to_device(indices_, local.data(), local.size() * sizeof(std::int32_t));
  if (train_weights_.empty() || weights_in_sums()) return;
  // A step's loss gradient is the mean over its rows; times w_i * rows / (the batch's sum of w),
  // it is the weighted mean's (exactly 1 where every weight is equal).
  const std::vector<float> row_scales = parallel_.row_factors(order_, train_weights_);
  backend_->copy_to_device(scales_, row_scales.data(), row_scales.size() * sizeof(float));
}

bool FitLoop::step(std::int64_t b) {
  if (parallel_.active()) return parallel_.step(*plan_, b, options_.stop.stop_requested());
  plan_->train_step(std::min(batch_size_, train_rows_ - b * batch_size_));
  return options_.stop.stop_requested();
}

void FitLoop::check_ranks(const std::string& when) {
  std::vector<float> parameters, state;
  std::int32_t unused = 0;
  plan_->download_parameters(parameters, state, unused);
  parallel_.check_same(parameters, when);
}

bool FitLoop::run_epoch(std::int64_t epoch) {
  // With several ranks, their parameters are compared every kStepsBetweenChecks steps and at the
  // end of each epoch.
  constexpr std::int64_t kStepsBetweenChecks = 256;
  upload_order();
  plan_->reset_epoch(epoch);
  for (std::int64_t b = 0; b < batches_; ++b) {
    const bool stop = step(b);
    if (options_.on_batch) options_.on_batch(b + 1, batches_);
    if (stop) return false;
    if (parallel_.active() && (b + 1) % kStepsBetweenChecks == 0 && b + 1 < batches_)
      check_ranks(fmt::format("at batch {} of epoch {}", b + 1, epoch));
  }
  return true;
}

void FitLoop::validate() {
  for (std::int64_t first = 0; first < validation_rows_; first += plan_->batch_size()) {
    const std::int64_t rows = std::min(plan_->batch_size(), validation_rows_ - first);
    plan_->accumulate_validation(plan_->forward(validation_x_.view.row_range(first, rows)),
                                 validation_y_.view.row_range(first, rows));
  }
}

EpochRecord FitLoop::figures(std::int64_t epoch, double rate, std::chrono::steady_clock::time_point start) {
  const Loss& loss = model_.options_.loss;
  const std::vector<double>& scale = model_.scaler_.y.std;
  Plan::LossSums sums = plan_->read_loss_sums();
  sums.train = parallel_.sum(sums.train);
  if (parallel_.sharded()) sums.validation = parallel_.sum(sums.validation);  // else every rank has them all
  EpochRecord record;
  record.epoch = epoch;
  record.lr = rate;
  const loss_part::Figures train = loss_part::figures(loss, sums.train, all_train_rows_, scale, train_totals_);
  record.loss = train.loss;
  record.mae = train.mae;
  record.r2 = train.r2;
  record.accuracy = train.accuracy;
  if (all_validation_rows_ > 0) {
    const loss_part::Figures validation =
        loss_part::figures(loss, sums.validation, all_validation_rows_, scale, validation_totals_);
    record.val_loss = validation.loss;
    record.val_mae = validation.mae;
    record.val_r2 = validation.r2;
    record.val_accuracy = validation.accuracy;
  }
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return record;
}

// The first batch of an epoch whose loss is not finite: the epoch again from its start (the
// steps are deterministic), reading the sums after each step.
std::optional<std::int64_t> FitLoop::first_bad_batch(std::int64_t epoch) {
  shuffle_for(epoch);
  plan_->restore_state();
  plan_->set_step(step_before_epoch_);
  upload_order();
  plan_->reset_epoch(epoch);
  for (std::int64_t b = 0; b < batches_; ++b) {
    step(b);
    const std::vector<float> sums = parallel_.sum(plan_->read_loss_sums().train);
    if (!std::all_of(sums.begin(), sums.end(), [](float v) { return std::isfinite(v); })) return b + 1;
  }
  return std::nullopt;
}

void FitLoop::diverged(const EpochRecord& record) {
  const CompileOptions& compiled = model_.options_;
  const std::string what = std::isfinite(record.loss) ? fmt::format("the validation loss became {}", *record.val_loss)
                                                      : fmt::format("the loss became {}", record.loss);
  const std::optional<std::int64_t> batch = std::isfinite(record.loss) ? std::nullopt : first_bad_batch(record.epoch);
  const std::int64_t kept = epochs_before_ + completed_;
  throw DivergenceError(
      fmt::format("training diverged at epoch {}{}: {}; {}; the model keeps the weights of {}", record.epoch,
                  batch ? fmt::format(", batch {} of {}", *batch, batches_) : std::string(), what,
                  divergence_causes(compiled.optimizer, compiled.clip_norm, model_.scaler_.enabled),
                  kept > 0 ? fmt::format("epoch {}, the last finite one", kept) : std::string("before training")));
}

bool FitLoop::observe(const EpochRecord& record) {
  const double monitored = record.val_loss.value_or(record.loss);
  schedule_observe(model_.options_.schedule, monitored, model_.schedule_state_);
  const std::optional<EarlyStopping>& early = options_.early_stopping;
  if (!early) return false;
  // Keras: an improvement is a loss below best - min_delta.
  if (monitored < best_loss_ - early->min_delta) {
    best_loss_ = monitored;
    best_completed_ = completed_;
    best_step_ = step_before_epoch_;
    history_.best_epoch = record.epoch;
    best_schedule_ = model_.schedule_state_;
    waited_ = 0;
    if (early->restore_best) plan_->keep_best();
    return false;
  }
  if (++waited_ < early->patience) return false;
  history_.stopped = "early stopping";
  return true;
}

void FitLoop::save_checkpoint() {
  // Rank 0 writes; the others wait to hear whether it could.
  std::exception_ptr failed;
  if (parallel_.writes_files()) try {
      model_.save(options_.checkpoint_path);
    } catch (...) {
      failed = std::current_exception();
    }
  if (parallel_.any(failed != nullptr)) {
    if (failed) std::rethrow_exception(failed);
    throw Error(fmt::format("rank 0 could not write the checkpoint {}", options_.checkpoint_path));
  }
}

void FitLoop::take_state(std::int64_t done, std::int32_t step) {
  plan_->download_parameters(model_.parameters_, model_.optimizer_state_, model_.optimizer_step_);
  model_.optimizer_step_ = step;
  model_.epochs_completed_ = epochs_before_ + done;
  for (const EpochRecord& record : history_.epochs)
    if (record.epoch == model_.epochs_completed_) model_.epoch_record_ = record;
}

History FitLoop::run() {
  lock_ = std::unique_lock(model_.runtime_.mutex);
  place(model_.backend());
  if (options_.epochs > 0) shuffle_for(epochs_before_ + 1);
  const std::optional<EarlyStopping>& early = options_.early_stopping;
  if (early && early->restore_best) plan_->reserve_best();
  plan_->snapshot_state();
  try {
    for (std::int64_t e = 0; e < options_.epochs; ++e) {
      const auto start = std::chrono::steady_clock::now();
      const std::int64_t epoch = epochs_before_ + e + 1;
      const double base_rate = learning_rate(model_.options_.optimizer);
      float scale = schedule_scale(model_.options_.schedule, epoch - 1, model_.schedule_state_);
      if (options_.on_epoch_begin)
        scale = scale_for_rate(options_.on_epoch_begin(epoch, base_rate * scale), base_rate, epoch);
      plan_->set_lr_scale(scale);
      if (!run_epoch(epoch)) {  // stopped inside the epoch: back to its start
        history_.stopped = "stop requested";
        break;
      }
      validate();
      // The next epoch's order, shuffled on the host while a GPU still runs this epoch's queued steps
      // (its upload above has completed: copy_to_device returns once the source may be reused).
      if (e + 1 < options_.epochs) shuffle_for(epoch + 1);
      const EpochRecord record = figures(epoch, base_rate * scale, start);
      if (!std::isfinite(record.loss) || (record.val_loss && !std::isfinite(*record.val_loss))) diverged(record);
      plan_->snapshot_state();
      if (parallel_.active()) check_ranks(fmt::format("after epoch {}", epoch));
      completed_ = e + 1;
      if (counts_steps_) step_before_epoch_ = step_at_start_ + static_cast<std::int32_t>(completed_ * batches_);
      history_.epochs.push_back(record);
      const bool stop = observe(record);
      const bool checkpoint = options_.checkpoint_every > 0 && epoch % options_.checkpoint_every == 0;
      // The model holds the epoch's state for the checkpoint and for on_epoch_end.
      if (checkpoint || options_.on_epoch_end) take_state(completed_, step_before_epoch_);
      if (checkpoint) save_checkpoint();
      if (options_.on_epoch_end) options_.on_epoch_end(record);
      if (stop) break;
      if (parallel_.any(options_.stop.stop_requested())) {
        if (e + 1 < options_.epochs) history_.stopped = "stop requested";
        break;
      }
    }
  } catch (...) {
    // An exception from a callback, a divergence or a failing backend: the model keeps the state
    // after the last completed epoch (the snapshot).
    plan_->restore_state();
    take_state(completed_, step_before_epoch_);
    throw;
  }
  plan_->restore_state();  // a stop inside an epoch left part of it in the plan
  take_state(completed_, step_before_epoch_);
  if (early && early->restore_best && history_.best_epoch && best_completed_ != completed_) {
    plan_->restore_best();
    take_state(best_completed_, best_step_);
    model_.schedule_state_ = best_schedule_;
  }
  if (model_.keep_validation_rows_) {
    model_.validation_x_ = Matrix::take_rows(x_, validation_index_);
    model_.validation_y_ = Matrix::take_rows(y_, validation_index_);
  }
  return history_;
}

}  // namespace ember
