#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "ember/error.hpp"
#include "ember/model.hpp"
#include "ember/random.hpp"
#include "plan.hpp"
#include "shape_checks.hpp"

namespace ember {
namespace {

void check_finite(const Matrix& values, const char* what) {
  for (std::int64_t r = 0; r < values.rows(); ++r)
    for (std::int64_t c = 0; c < values.cols(); ++c)
      if (!std::isfinite(values(r, c)))
        throw InputError(fmt::format("{} row {} column {} is not finite ({}); remove or fix it", what, r + 1, c + 1,
                                     values(r, c)));
}

SgdParams to_sgd_params(const SGD& sgd) { return {sgd.lr, sgd.momentum, sgd.nesterov, sgd.weight_decay}; }

constexpr std::int64_t kMaxWidth = std::numeric_limits<std::int32_t>::max();  // the kernels' index range

}  // namespace

std::string to_string(Activation activation) { return activation == Activation::relu ? "relu" : "linear"; }

Activation parse_activation(const std::string& text) {
  if (text == "relu") return Activation::relu;
  if (text == "linear" || text.empty()) return Activation::linear;
  throw InputError(fmt::format("unknown activation '{}'; use relu or linear", text));
}

Sequential::Sequential(std::initializer_list<Dense> layers, std::uint64_t seed)
    : Sequential(std::vector<Dense>(layers), seed) {}

Sequential::Sequential(std::vector<Dense> layers, std::uint64_t seed) : layers_(std::move(layers)), seed_(seed) {
  if (layers_.empty()) throw InputError("a Sequential model needs at least one Dense layer");
  for (const Dense& layer : layers_)
    if (layer.units <= 0 || layer.units > kMaxWidth)
      throw InputError(fmt::format("a Dense layer needs 1 to {} units, got {}", kMaxWidth, layer.units));
}

Sequential::~Sequential() = default;
Sequential::Sequential(Sequential&&) noexcept = default;
Sequential& Sequential::operator=(Sequential&&) noexcept = default;

void Sequential::set_options(const CompileOptions& options) {
  check_sgd(to_sgd_params(options.optimizer));
  options_ = options;
  compiled_ = true;
}

void Sequential::compile(const CompileOptions& options) {
  set_options(options);
  backend_notice_.clear();
  backend_ = make_backend(options_.device, options_.backend, &backend_notice_);
  backend_name_ = backend_->name();
}

Backend& Sequential::backend() {
  if (!backend_) compile(options_);
  return *backend_;
}

void Sequential::set_column_names(std::vector<std::string> features, std::vector<std::string> targets) {
  feature_names_ = std::move(features);
  target_names_ = std::move(targets);
}

std::int64_t Sequential::weight_offset(std::size_t layer) const {
  std::int64_t offset = 0;
  std::int64_t in = input_width_;
  for (std::size_t l = 0; l < layer; ++l) {
    offset += layers_[l].units * in + layers_[l].units;
    in = layers_[l].units;
  }
  return offset;
}

std::int64_t Sequential::bias_offset(std::size_t layer) const {
  const std::int64_t in = layer == 0 ? input_width_ : layers_[layer - 1].units;
  return weight_offset(layer) + layers_[layer].units * in;
}

std::int64_t Sequential::parameter_count_for(std::int64_t input_width) const {
  if (input_width <= 0 || input_width > kMaxWidth)
    throw InputError(fmt::format("the model needs 1 to {} input columns, got {}", kMaxWidth, input_width));
  std::int64_t count = 0;
  std::int64_t in = input_width;
  for (const Dense& layer : layers_) {
    std::int64_t layer_count = 0;  // (in + 1) * units: both factors < 2^31 + 1, so no overflow
    if (__builtin_add_overflow(count, (in + 1) * layer.units, &layer_count))
      throw InputError("the model's parameter count overflows 64 bits; use narrower or fewer layers");
    count = layer_count;
    in = layer.units;
  }
  return count;
}

void Sequential::build(std::int64_t input_width) {
  const std::int64_t count = parameter_count_for(input_width);
  try {
    parameters_.clear();
    parameters_.reserve(static_cast<std::size_t>(count));
    velocity_.clear();
    velocity_.reserve(static_cast<std::size_t>(count));
  } catch (const std::exception&) {  // std::bad_alloc, or std::length_error beyond max_size()
    parameters_ = {};
    velocity_ = {};
    input_width_ = 0;
    throw InputError(fmt::format("cannot allocate the model's {} parameters ({:.1f} GiB with the optimizer state); "
                                 "use narrower or fewer layers",
                                 count, 2.0 * static_cast<double>(count) * sizeof(float) / (1u << 30)));
  }
  input_width_ = input_width;
  std::int64_t in = input_width;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::int64_t out = layers_[l].units;
    // Glorot uniform, as Keras: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)); zero bias.
    const double limit = std::sqrt(6.0 / static_cast<double>(in + out));
    Random random(derive_seed(seed_, l));
    for (std::int64_t i = 0; i < out * in; ++i)
      parameters_.push_back(static_cast<float>((2.0 * random.uniform() - 1.0) * limit));
    parameters_.insert(parameters_.end(), static_cast<std::size_t>(out), 0.0f);
    in = out;
  }
  velocity_.assign(parameters_.size(), 0.0f);
  epochs_completed_ = 0;
}

History Sequential::fit(const Matrix& x, const Matrix& y, const FitOptions& options) {
  if (!compiled_) throw InputError("compile the model before fit");
  if (options.epochs < 0) throw InputError(fmt::format("epochs must be >= 0, got {}", options.epochs));
  if (options.batch_size <= 0) throw InputError(fmt::format("batch size must be >= 1, got {}", options.batch_size));
  if (!(options.validation_split >= 0.0 && options.validation_split < 1.0))
    throw InputError(fmt::format("validation split must be in [0, 1), got {}", options.validation_split));
  if (x.rows() == 0) throw InputError("fit needs at least one row");
  if (x.rows() != y.rows())
    throw InputError(fmt::format("{} input rows do not match {} target rows", x.rows(), y.rows()));
  if (y.cols() != output_width())
    throw InputError(fmt::format("the model has {} outputs but the targets have {} columns", output_width(), y.cols()));
  if (built() && x.cols() != input_width_)
    throw InputError(fmt::format("the model takes {} inputs but the data has {} feature columns", input_width_, x.cols()));
  check_finite(x, "input");
  check_finite(y, "target");
  if (!built()) build(x.cols());
  const auto warn = [&](const std::string& message) {
    if (options.on_warning) options.on_warning(message);
    else std::fprintf(stderr, "warning: %s\n", message.c_str());
  };

  // Keras: the validation rows are the last fraction, taken before shuffling.
  const auto train_rows = static_cast<std::int64_t>(static_cast<double>(x.rows()) * (1.0 - options.validation_split));
  const std::int64_t validation_rows = x.rows() - train_rows;
  if (train_rows == 0)
    throw InputError(fmt::format("validation split {} leaves no training rows out of {}", options.validation_split,
                                 x.rows()));
  std::vector<std::int64_t> train_index(static_cast<std::size_t>(train_rows));
  std::iota(train_index.begin(), train_index.end(), 0);
  std::vector<std::int64_t> validation_index(static_cast<std::size_t>(validation_rows));
  std::iota(validation_index.begin(), validation_index.end(), train_rows);
  const Matrix x_train = x.take_rows(train_index), y_train = y.take_rows(train_index);

  if (!scaler_fitted_) {
    scaler_.enabled = options.normalize;
    scaler_.x = options.normalize ? ColumnStatistics::of(x_train) : ColumnStatistics::identity(x.cols());
    scaler_.y = options.normalize ? ColumnStatistics::of(y_train) : ColumnStatistics::identity(y.cols());
    const auto name = [](const std::vector<std::string>& names, std::int64_t c, const char* kind) {
      return c < static_cast<std::int64_t>(names.size()) ? fmt::format("{} column '{}'", kind, names[static_cast<std::size_t>(c)])
                                                        : fmt::format("{} column {}", kind, c + 1);
    };
    for (std::int64_t c : scaler_.x.constant_columns)
      warn(fmt::format("{} is constant; its standard deviation is taken as 1", name(feature_names_, c, "feature")));
    for (std::int64_t c : scaler_.y.constant_columns)
      warn(fmt::format("{} is constant; its standard deviation is taken as 1", name(target_names_, c, "target")));
    scaler_fitted_ = true;
  }

  Backend& backend = this->backend();
  const std::int64_t batch_size = std::min(options.batch_size, train_rows);
  Plan plan(backend, layers_, input_width_, batch_size);
  plan.upload_parameters(parameters_, velocity_);
  plan.set_target_scale(scaler_.y.std);

  // The data goes to the backend once; the steps gather their batches there.
  const BackendMatrix train_x(backend, scaler_.x.standardize(x_train));
  const BackendMatrix train_y(backend, scaler_.y.standardize(y_train));
  const BackendMatrix validation_x(backend, scaler_.x.standardize(x.take_rows(validation_index)));
  const BackendMatrix validation_y(backend, scaler_.y.standardize(y.take_rows(validation_index)));
  Buffer indices_buffer(backend, static_cast<std::size_t>(train_rows) * sizeof(std::int32_t));
  auto* indices = static_cast<std::int32_t*>(indices_buffer.data());
  plan.bind_training_set(train_x.view, train_y.view, indices);

  const SgdParams sgd = to_sgd_params(options_.optimizer);
  const std::uint64_t shuffle_seed = options.seed.value_or(seed_);
  const std::int64_t batches = (train_rows + batch_size - 1) / batch_size;
  // The row order of an epoch (absolute epoch numbers, so a resumed run shuffles as an uninterrupted one).
  std::vector<std::int32_t> order(static_cast<std::size_t>(train_rows));
  const auto shuffle_for = [&](std::int64_t epoch) {
    std::iota(order.begin(), order.end(), 0);
    if (options.shuffle) Random(derive_seed(shuffle_seed, static_cast<std::uint64_t>(epoch))).shuffle(order);
  };
  if (options.epochs > 0) shuffle_for(epochs_completed_ + 1);
  History history;
  for (std::int64_t e = 0; e < options.epochs; ++e) {
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t epoch = epochs_completed_ + e + 1;
    backend.copy_to_device(indices, order.data(), order.size() * sizeof(std::int32_t));
    plan.reset_epoch();
    for (std::int64_t b = 0; b < batches; ++b) {
      plan.train_step(std::min(batch_size, train_rows - b * batch_size), sgd);
      if (options.on_batch) options.on_batch(b + 1, batches);
    }
    for (std::int64_t first = 0; first < validation_rows; first += batch_size) {
      const std::int64_t rows = std::min(batch_size, validation_rows - first);
      plan.accumulate_validation(plan.forward(validation_x.view.row_range(first, rows)),
                                 validation_y.view.row_range(first, rows));
    }
    // The next epoch's order, shuffled on the host while a GPU still runs this epoch's queued steps
    // (its upload above has completed: copy_to_device returns once the source may be reused).
    if (e + 1 < options.epochs) shuffle_for(epoch + 1);
    const std::array<float, 4> sums = plan.read_accumulators();
    EpochRecord record;
    record.epoch = epoch;
    record.loss = sums[Plan::train_loss] / static_cast<double>(train_rows);
    record.mae = sums[Plan::train_mae] / static_cast<double>(train_rows);
    if (validation_rows > 0) {
      record.val_loss = sums[Plan::validation_loss] / static_cast<double>(validation_rows);
      record.val_mae = sums[Plan::validation_mae] / static_cast<double>(validation_rows);
    }
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!std::isfinite(record.loss) || (record.val_loss && !std::isfinite(*record.val_loss)))
      throw DivergenceError(fmt::format("training diverged at epoch {}: the loss became {}; try a smaller learning "
                                        "rate (--lr); the model keeps the weights it had before fit",
                                        epoch, record.loss));
    history.epochs.push_back(record);
    if (options.on_epoch_end) options.on_epoch_end(record);
    // Counted only now: a diverged epoch leaves the model as it was before fit.
    if (e + 1 == options.epochs) plan.download_parameters(parameters_, velocity_);
  }
  epochs_completed_ += static_cast<std::int64_t>(history.epochs.size());
  return history;
}

Matrix Sequential::predict_scaled(Backend& backend, const Matrix& x_scaled, std::int64_t batch_size) {
  const std::int64_t rows = x_scaled.rows();
  Plan plan(backend, layers_, input_width_, std::min(batch_size, rows));
  plan.upload_parameters(parameters_, velocity_);
  const BackendMatrix input(backend, x_scaled);
  Matrix output(rows, output_width());
  for (std::int64_t first = 0; first < rows; first += plan.batch_size()) {
    const std::int64_t count = std::min(plan.batch_size(), rows - first);
    const ConstView result = plan.forward(input.view.row_range(first, count));
    backend.copy_to_host(output.data() + first * output.cols(), result.data,
                         static_cast<std::size_t>(result.size()) * sizeof(float));
  }
  return output;
}

Matrix Sequential::predict(const Matrix& x, std::int64_t batch_size) {
  if (!built()) throw InputError("the model has no weights yet; fit or load it before predict");
  if (x.rows() == 0) throw InputError("predict needs at least one row");
  if (batch_size <= 0) throw InputError(fmt::format("batch size must be >= 1, got {}", batch_size));
  if (x.cols() != input_width_)
    throw InputError(fmt::format("the model takes {} inputs but the data has {} columns", input_width_, x.cols()));
  check_finite(x, "input");
  return scaler_.y.restore(predict_scaled(backend(), scaler_.x.standardize(x), batch_size));
}

Metrics Sequential::evaluate(const Matrix& x, const Matrix& y, std::int64_t batch_size) {
  if (x.rows() != y.rows())
    throw InputError(fmt::format("{} input rows do not match {} target rows", x.rows(), y.rows()));
  if (y.cols() != output_width())
    throw InputError(fmt::format("the model has {} outputs but the targets have {} columns", output_width(), y.cols()));
  check_finite(y, "target");
  const Matrix prediction = predict(x, batch_size);
  Metrics metrics;
  metrics.rows = x.rows();
  double squared = 0.0, absolute = 0.0, r2_sum = 0.0;
  for (std::int64_t c = 0; c < y.cols(); ++c) {
    double mean = 0.0;
    for (std::int64_t r = 0; r < y.rows(); ++r) mean += y(r, c);
    mean /= static_cast<double>(y.rows());
    double residual = 0.0, total = 0.0;
    for (std::int64_t r = 0; r < y.rows(); ++r) {
      const double error = static_cast<double>(prediction(r, c)) - y(r, c);
      residual += error * error;
      absolute += std::abs(error);
      total += (y(r, c) - mean) * (y(r, c) - mean);
    }
    squared += residual;
    // As scikit-learn: a constant target scores 1 when predicted exactly, else 0.
    r2_sum += total > 0.0 ? 1.0 - residual / total : (residual == 0.0 ? 1.0 : 0.0);
  }
  const double elements = static_cast<double>(y.size());
  metrics.mse = squared / elements;
  metrics.mae = absolute / elements;
  metrics.r2 = r2_sum / static_cast<double>(y.cols());
  return metrics;
}

}  // namespace ember
