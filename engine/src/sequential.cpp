#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "activation_math.hpp"
#include "cpu/thread_pool.hpp"
#include "data_parallel.hpp"
#include "ember/error.hpp"
#include "ember/model.hpp"
#include "ember/random.hpp"
#include "loss_part.hpp"
#include "optimizer_part.hpp"
#include "parameter_layout.hpp"
#include "plan.hpp"
#include "preprocessing_ops.hpp"
#include "shape_checks.hpp"

namespace ember {
namespace {

void check_finite(ConstView values, const char* what) {
  for (std::int64_t r = 0; r < values.rows; ++r)
    for (std::int64_t c = 0; c < values.cols; ++c)
      if (!std::isfinite(values(r, c)))
        throw InputError(
            fmt::format("{} row {} column {} is not finite ({}); remove or fix it", what, r + 1, c + 1, values(r, c)));
}

/// Layer l's place in the layout of a built model; InputError for a layer the model lacks.
ParameterLayout::Layer layer_width(const std::vector<Layer>& layers, std::int64_t input_width, std::size_t l) {
  if (l >= layers.size())
    throw InputError(fmt::format("the model has {} layers; there is no layer {}", layers.size(), l));
  return ParameterLayout(layers, input_width).layers()[l];
}

/// Layer l's tensor named name; InputError when the layer has none (a Dropout layer's weight).
ParameterLayout::Tensor parameter_tensor(const std::vector<Layer>& layers, std::int64_t input_width, std::size_t l,
                                         const char* name) {
  const std::vector<ParameterLayout::Tensor>& tensors = layer_width(layers, input_width, l).tensors;
  for (const ParameterLayout::Tensor& tensor : tensors)
    if (tensor.name == fmt::format("layers.{}.{}", l, name)) return tensor;
  throw InputError(fmt::format("layer {} ({}) has no {}", l, describe(layers[l]), name));
}

/// A tensor of parameters as a matrix: (rows, cols) for two dimensions, (1, n) for one.
ConstView tensor_view(const std::vector<float>& parameters, const ParameterLayout::Tensor& tensor) {
  const bool matrix = tensor.shape.size() == 2;
  return {parameters.data() + tensor.offset, matrix ? tensor.shape[0] : 1, matrix ? tensor.shape[1] : tensor.shape[0]};
}

}  // namespace

std::string to_string(Activation activation) {
  std::string name;
  activations::visit(activation, [&](auto part) { name = decltype(part)::name; });
  return name;
}

std::vector<std::string> activation_names() {
  std::vector<std::string> names;
  activations::for_each_part([&](auto part) { names.emplace_back(decltype(part)::name); });
  return names;
}

Activation parse_activation(const std::string& text) {
  std::optional<Activation> found;
  activations::for_each_part([&](auto part) {
    if (text == decltype(part)::name) found = decltype(part)::kind;
  });
  if (!found) {
    std::string names;
    for (const std::string& name : activation_names()) names += (names.empty() ? "" : ", ") + name;
    throw InputError(fmt::format("unknown activation '{}'; use one of {}", printable(text), names));
  }
  return *found;
}

namespace {

/// Every optional figure of an epoch record and its name: the one table for naming them.
constexpr std::pair<const char*, std::optional<double> EpochRecord::*> kOptionalFigures[] = {
    {"mae", &EpochRecord::mae},
    {"r2", &EpochRecord::r2},
    {"accuracy", &EpochRecord::accuracy},
    {"val_loss", &EpochRecord::val_loss},
    {"val_mae", &EpochRecord::val_mae},
    {"val_r2", &EpochRecord::val_r2},
    {"val_accuracy", &EpochRecord::val_accuracy}};

}  // namespace

std::vector<std::pair<std::string, double>> epoch_figures(const EpochRecord& record) {
  std::vector<std::pair<std::string, double>> figures{{"loss", record.loss}};
  for (const auto& [name, member] : kOptionalFigures)
    if (record.*member) figures.emplace_back(name, *(record.*member));
  return figures;
}

bool set_epoch_figure(EpochRecord& record, const std::string& name, double value) {
  if (name == "loss") {
    record.loss = value;
    return true;
  }
  for (const auto& [known, member] : kOptionalFigures)
    if (name == known) {
      record.*member = value;
      return true;
    }
  return false;
}

Sequential::Sequential(std::initializer_list<Layer> layers, std::uint64_t seed)
    : Sequential(std::vector<Layer>(layers), seed) {}

Sequential::Sequential(std::vector<Layer> layers, std::uint64_t seed) : layers_(std::move(layers)), seed_(seed) {
  if (layers_.empty()) throw InputError("a Sequential model needs at least one Dense layer");
  for (const Layer& layer : layers_) layer_part::check(layer);
  if (!std::holds_alternative<Dense>(layers_.back()))
    throw InputError(
        fmt::format("a Sequential model ends with a Dense layer (its outputs), not {}", describe(layers_.back())));
}

Sequential::~Sequential() = default;
Sequential::Sequential(Sequential&&) noexcept = default;
Sequential& Sequential::operator=(Sequential&&) noexcept = default;
Sequential::Sequential(const Sequential& other) = default;
Sequential& Sequential::operator=(const Sequential& other) = default;

Sequential::Runtime::Runtime() = default;
Sequential::Runtime::~Runtime() = default;
Sequential::Runtime::Runtime(const Runtime&) {}
Sequential::Runtime& Sequential::Runtime::operator=(const Runtime&) {
  const std::lock_guard lock(mutex);
  backend.reset();
  name.clear();
  notice.clear();
  return *this;
}
Sequential::Runtime::Runtime(Runtime&& other) noexcept
    : backend(std::move(other.backend)), name(std::move(other.name)), notice(std::move(other.notice)) {}
Sequential::Runtime& Sequential::Runtime::operator=(Runtime&& other) noexcept {
  backend = std::move(other.backend);
  name = std::move(other.name);
  notice = std::move(other.notice);
  return *this;
}

void Sequential::set_options(const CompileOptions& options) {
  check_optimizer(options.optimizer);
  check_loss(options.loss);
  check_schedule(options.schedule);
  if (!(options.clip_norm >= 0.0f && std::isfinite(options.clip_norm)))
    throw InputError(
        fmt::format("CompileOptions::clip_norm must be 0 (off) or a positive number, got {}", options.clip_norm));
  // Another schedule starts from its beginning.
  if (options.schedule.index() != options_.schedule.index()) schedule_state_ = {};
  // Another optimizer (or SGD with momentum switched on or off) starts from fresh state, as a new
  // torch.optim optimizer would; new settings of the same one keep it.
  if (optimizer_state_names(options.optimizer) != optimizer_state_names(options_.optimizer) ||
      options.optimizer.index() != options_.optimizer.index()) {
    optimizer_state_.assign(parameters_.size() * optimizer_state_names(options.optimizer).size(), 0.0f);
    optimizer_step_ = 0;
  }
  options_ = options;
  compiled_ = true;
}

void Sequential::compile(const CompileOptions& options) {
  set_options(options);
  const std::lock_guard lock(runtime_.mutex);
  runtime_.backend.reset();
  backend();
}

Backend& Sequential::backend() const {
  if (!runtime_.backend) {
    runtime_.notice.clear();
    runtime_.backend = make_backend(options_.device, options_.backend, &runtime_.notice);
    runtime_.name = runtime_.backend->name();
  }
  return *runtime_.backend;
}

ConstView Sequential::weight(std::size_t layer) const {
  if (!built()) throw InputError("the model has no weights yet; fit, build or load it first");
  return tensor_view(parameters_, parameter_tensor(layers_, input_width_, layer, "weight"));
}

ConstView Sequential::bias(std::size_t layer) const {
  if (!built()) throw InputError("the model has no weights yet; fit, build or load it first");
  return tensor_view(parameters_, parameter_tensor(layers_, input_width_, layer, "bias"));
}

void Sequential::set_weight(std::size_t layer, const Matrix& weight) {
  const ConstView current = this->weight(layer);
  if (weight.rows() != current.rows || weight.cols() != current.cols)
    throw InputError(fmt::format("layer {}'s weight is ({}, {}), not ({}, {})", layer, current.rows, current.cols,
                                 weight.rows(), weight.cols()));
  check_finite(weight, "weight");
  std::copy(weight.data(), weight.data() + weight.size(), parameters_.begin() + (current.data - parameters_.data()));
}

void Sequential::set_bias(std::size_t layer, const Matrix& bias) {
  const ConstView current = this->bias(layer);
  if (bias.rows() != 1 || bias.cols() != current.cols)
    throw InputError(
        fmt::format("layer {}'s bias is (1, {}), not ({}, {})", layer, current.cols, bias.rows(), bias.cols()));
  check_finite(bias, "bias");
  std::copy(bias.data(), bias.data() + bias.size(), parameters_.begin() + (current.data - parameters_.data()));
}

void Sequential::set_column_names(std::vector<std::string> features, std::vector<std::string> targets) {
  if (built() && static_cast<std::int64_t>(features.size()) != input_width_)
    throw InputError(fmt::format("{} feature names for a model of {} inputs", features.size(), input_width_));
  if (!targets.empty() && static_cast<std::int64_t>(targets.size()) != output_width())
    throw InputError(fmt::format("{} target names for a model of {} outputs", targets.size(), output_width()));
  std::vector<std::string> classes = std::move(preprocessing_.classes);
  preprocessing_ = preprocessing::numeric(features, targets);
  preprocessing_.classes = std::move(classes);
}

void Sequential::set_classes(std::vector<std::string> labels) {
  if (!is_classification(options_.loss))
    throw InputError("set_classes needs a classification model (a CrossEntropy loss)");
  if (static_cast<std::int64_t>(labels.size()) != class_count())
    throw InputError(fmt::format("{} class labels for a model of {} classes", labels.size(), class_count()));
  if (std::set<std::string>(labels.begin(), labels.end()).size() != labels.size())
    throw InputError("the class labels repeat one; each class needs its own");
  if (preprocessing_.targets.size() > 1)
    throw InputError(
        fmt::format("a classification model has one target column, not {}", preprocessing_.targets.size()));
  preprocessing_.classes = std::move(labels);
}

std::int64_t Sequential::parameter_count(std::size_t layer) const {
  if (!built()) throw InputError("the model has no weights yet; fit, build or load it first");
  return layer_width(layers_, input_width_, layer).count;
}

std::int64_t Sequential::weight_offset(std::size_t layer) const {
  return parameter_tensor(layers_, input_width_, layer, "weight").offset;
}

std::int64_t Sequential::bias_offset(std::size_t layer) const {
  return parameter_tensor(layers_, input_width_, layer, "bias").offset;
}

std::int64_t Sequential::parameter_count_for(std::int64_t input_width) const {
  return ParameterLayout(layers_, input_width).count();
}

void Sequential::build(std::int64_t input_width) {
  const std::int64_t count = parameter_count_for(input_width);
  const std::size_t state_buffers = optimizer_state_names(options_.optimizer).size();
  try {
    parameters_.clear();
    parameters_.reserve(static_cast<std::size_t>(count));
    optimizer_state_.assign(static_cast<std::size_t>(count) * state_buffers, 0.0f);
  } catch (const std::exception&) {  // std::bad_alloc, or std::length_error beyond max_size()
    parameters_ = {};
    optimizer_state_ = {};
    input_width_ = 0;
    throw InputError(fmt::format(
        "cannot allocate the model's {} parameters ({:.1f} GiB with the optimizer state); "
        "use narrower or fewer layers",
        count, static_cast<double>(1 + state_buffers) * static_cast<double>(count) * sizeof(float) / (1u << 30)));
  }
  optimizer_step_ = 0;
  // Until the first fit fixes them, inputs and outputs pass through unscaled (predict after build).
  if (!scaler_fitted_)
    scaler_ = {false, ColumnStatistics::identity(input_width), ColumnStatistics::identity(output_width())};
  input_width_ = input_width;
  std::int64_t in = input_width;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    layer_part::initialize(layers_[l], in, derive_seed(seed_, l), parameters_);
    in = layer_part::output_width(layers_[l], in);
  }
  epochs_completed_ = 0;
  epoch_record_.reset();
}

namespace {

/// The training rows of a split: as Keras counts them, the validation rows being the rest.
std::int64_t training_rows(std::int64_t rows, double validation_split) {
  return static_cast<std::int64_t>(static_cast<double>(rows) * (1.0 - validation_split));
}

/// Positions 0..n-1, the training rows first and the validation rows last, each in their own
/// order. ValidationRows::random draws the validation rows; with classes (one per row) it draws
/// the same fraction of each class: every row's key is its random rank within its class divided
/// by the class's size, and the largest keys are held out.
std::vector<std::int64_t> validation_split_order(std::int64_t n, const FitOptions& options, std::uint64_t seed,
                                                 const std::vector<std::int64_t>& classes) {
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
  for (std::int64_t i = train; i < n; ++i)
    held_out[static_cast<std::size_t>(shuffled[static_cast<std::size_t>(i)])] = true;
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
  if (options.batch_size <= 0) throw InputError(fmt::format("batch size must be >= 1, got {}", options.batch_size));
  if (!(options.validation_split >= 0.0 && options.validation_split < 1.0))
    throw InputError(fmt::format("validation split must be in [0, 1), got {}", options.validation_split));
}

using Warn = std::function<void(const std::string&)>;
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

/// R^2 as scikit-learn's r2_score: a constant target scores 1 when predicted exactly, else 0.
double r_squared(double residual, double total) {
  return total > 0.0 ? 1.0 - residual / total : (residual == 0.0 ? 1.0 : 0.0);
}

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

/// a's rows, then b's (the same columns).
Matrix stacked(ConstView a, ConstView b) {
  Matrix out(a.rows + b.rows, a.cols);
  std::copy(a.data, a.data + a.size(), out.data());
  std::copy(b.data, b.data + b.size(), out.data() + a.size());
  return out;
}

/// FitOptions::sample_weight checked against the rows it weighs: copied, or empty when not given.
std::vector<float> checked_weights(std::span<const float> weights, std::int64_t rows, const char* what) {
  if (weights.empty()) return {};
  if (static_cast<std::int64_t>(weights.size()) != rows)
    throw SettingError("FitOptions::sample_weight",
                       fmt::format("holds {} weights for {} {}; give one per row", weights.size(), rows, what));
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (!(weights[i] >= 0.0f && std::isfinite(weights[i])))
      throw SettingError("FitOptions::sample_weight",
                         fmt::format("row {} weighs {}: weights must be finite and 0 or more", i + 1, weights[i]));
  return {weights.begin(), weights.end()};
}

}  // namespace

History Sequential::fit(ConstView x, ConstView y, const FitOptions& options) {
  std::vector<float> weights = checked_weights(options.sample_weight, x.rows, "rows of x");
  if (!options.validation_data) return fit_matrices(x, y, options, 0, false, std::nullopt, std::move(weights));
  const ValidationData& v = *options.validation_data;
  if (v.table != nullptr)
    throw SettingError("FitOptions::validation_data", "is a table; a fit on matrices validates on matrices (x, y)");
  if (v.x.rows == 0 || v.x.rows != v.y.rows || v.x.cols != x.cols || v.y.cols != y.cols)
    throw SettingError("FitOptions::validation_data",
                       fmt::format("holds ({}, {}) inputs and ({}, {}) targets; it needs rows of {} inputs and {} "
                                   "targets, as many of each",
                                   v.x.rows, v.x.cols, v.y.rows, v.y.cols, x.cols, y.cols));
  if (!weights.empty()) weights.resize(static_cast<std::size_t>(x.rows + v.x.rows), 1.0f);  // validation rows
  return fit_matrices(stacked(x, v.x), stacked(y, v.y), options, 0, true, v.x.rows, std::move(weights));
}

History Sequential::fit(const CsvTable& table, const ColumnSpec& columns, const FitOptions& options) {
  if (!compiled_) throw InputError("compile the model before fit");
  check_fit_options(options);
  const std::vector<float> table_weights = checked_weights(options.sample_weight, table.rows(), "rows of the table");
  const bool learned = !preprocessing_.empty();
  const bool classification = is_classification(options_.loss);
  Preprocessing p;
  const Warn warn = warner(options.on_warning);
  if (learned) {
    preprocessing::check_spec_matches(preprocessing_, columns);
    if (classification != !preprocessing_.classes.empty())
      throw InputError(fmt::format("the model was trained for {}; compile it with a {} loss",
                                   classification ? "regression" : "classification",
                                   classification ? "regression" : "classification"));
    p = preprocessing_;
  } else {
    std::vector<std::string> warnings;
    p = preprocessing::columns_of(table, columns, classification, &warnings);
    for (const std::string& message : warnings) warn(message);
  }
  std::vector<std::int64_t> rows = preprocessing::usable_rows(p, table, true, true);
  if (rows.empty())
    throw InputError(
        fmt::format("{}: every row has a missing value in a column the model uses; no row is left to "
                    "train on",
                    table.path));
  const std::int64_t train = training_rows(static_cast<std::int64_t>(rows.size()), options.validation_split);
  // Sharded data: categories, classes and fill values from every rank's rows.
  DataParallel parallel(options.communicator.get(), options.deterministic_reduction, options.sharded_data);
  const RankSums ranks = parallel.rank_sums();
  if (!learned && classification) {
    p.classes = preprocessing::class_labels(p, table, rows, ranks);
    const std::int64_t needed = outputs_for_classes(static_cast<std::int64_t>(p.classes.size()));
    if (needed != output_width())
      throw InputError(fmt::format("the target '{}' has {} classes, so the model's last layer needs {} unit{}, not {}",
                                   printable(p.targets[0]), p.classes.size(), needed, needed == 1 ? "" : "s",
                                   output_width()));
  }
  // The validation rows are drawn before anything is learned, so that only training rows teach the
  // categories and fill values; stratified by the class codes for classification.
  std::vector<std::int64_t> row_classes;
  if (classification) {
    Preprocessing labels = p;
    labels.features.clear();
    const Matrix codes = preprocessing::encode(labels, table, rows, true).y;
    for (std::int64_t i = 0; i < codes.rows(); ++i) row_classes.push_back(static_cast<std::int64_t>(codes(i, 0)));
  }
  const std::vector<std::int64_t> order = validation_split_order(
      static_cast<std::int64_t>(rows.size()), options, parallel.broadcast(options.seed.value_or(seed_)), row_classes);
  std::vector<std::int64_t> split_rows;
  split_rows.reserve(rows.size());
  for (const std::int64_t i : order) split_rows.push_back(rows[static_cast<std::size_t>(i)]);
  rows = std::move(split_rows);
  if (!learned) preprocessing::learn(p, table, {rows.begin(), rows.begin() + std::max<std::int64_t>(train, 1)}, ranks);
  preprocessing::Encoded encoded = preprocessing::encode(p, table, rows, true);
  for (const std::string& message : encoded.warnings) warn(message);
  std::optional<std::int64_t> held_out;
  if (options.validation_data) {
    // The rows to validate on, preprocessed as the training rows taught, after them.
    const CsvTable* validation = options.validation_data->table;
    if (validation == nullptr)
      throw SettingError("FitOptions::validation_data",
                         "holds matrices; a fit on a table validates on a table of the same columns");
    const std::vector<std::int64_t> validation_rows = preprocessing::usable_rows(p, *validation, true, true);
    if (validation_rows.empty())
      throw InputError(
          fmt::format("{}: no row to validate on (every row misses a value the model needs)", validation->path));
    preprocessing::Encoded encoded_validation = preprocessing::encode(p, *validation, validation_rows, true);
    for (const std::string& message : encoded_validation.warnings) warn(validation->path + ": " + message);
    held_out = encoded_validation.x.rows();
    encoded.x = stacked(encoded.x, encoded_validation.x);
    encoded.y = stacked(encoded.y, encoded_validation.y);
  }
  // The weights of the rows trained on, in their order; 1 for rows given to validate on.
  std::vector<float> weights;
  if (!table_weights.empty()) {
    for (const std::int64_t r : rows) weights.push_back(table_weights[static_cast<std::size_t>(r)]);
    weights.resize(static_cast<std::size_t>(encoded.x.rows()), 1.0f);
  }
  const Preprocessing previous = preprocessing_;
  preprocessing_ = std::move(p);
  try {
    return fit_matrices(encoded.x, encoded.y, options, table.rows() - static_cast<std::int64_t>(rows.size()), true,
                        held_out, std::move(weights));
  } catch (const InputError&) {  // refused before training: the model is as it was
    if (!learned) preprocessing_ = previous;
    throw;
  }
}

void Sequential::check_memory(std::int64_t input_width, std::int64_t batch_size) const {
  // Known from the architecture before anything is allocated: a model far beyond the memory is
  // refused at once rather than after minutes of allocating and initializing.
  Backend& backend = this->backend();
  const double needed = Plan::bytes_needed(layers_, input_width, batch_size, options_.optimizer, options_.loss);
  const auto capacity = static_cast<double>(backend.memory_bytes());
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  if (capacity > 0 && needed > capacity)
    throw InputError(fmt::format(
        "training these layers at a batch of {} rows needs about {:.1f} GiB of memory on {}, which has {:.1f} GiB; "
        "use fewer or narrower layers (Dense::units) or a smaller FitOptions::batch_size",
        batch_size, needed / kGiB, backend.name(), capacity / kGiB));
}

History Sequential::fit_matrices(ConstView x, ConstView y, const FitOptions& options, std::int64_t dropped_rows,
                                 bool split_done, std::optional<std::int64_t> held_out, std::vector<float> weights) {
  if (!compiled_) throw InputError("compile the model before fit");
  check_fit_options(options);
  if (x.rows == 0) throw InputError("fit needs at least one row");
  if (x.rows != y.rows) throw InputError(fmt::format("{} input rows do not match {} target rows", x.rows, y.rows));
  const bool classification = is_classification(options_.loss);
  check_targets(y);
  if (built() && x.cols != input_width_)
    throw InputError(
        fmt::format("the model takes {} inputs but the data has {} feature columns", input_width_, x.cols));
  check_finite(x, "input");
  const std::int64_t train_rows = held_out ? x.rows - *held_out : training_rows(x.rows, options.validation_split);
  const std::int64_t validation_rows = x.rows - train_rows;
  if (train_rows == 0)
    throw InputError(
        fmt::format("FitOptions::validation_split {} leaves no training rows out of {}; use a smaller split",
                    options.validation_split, x.rows));
  check_memory(x.cols, std::min(options.batch_size, train_rows));
  if (!built()) build(x.cols);
  const Warn warn = warner(options.on_warning);
  // With several ranks, each trains on its slice of every batch and the steps' gradients are
  // summed; with sharded data each rank holds other rows, and what is learned from them (the
  // scaler, the figures' totals) is summed over the ranks.
  DataParallel parallel(options.communicator.get(), options.deterministic_reduction, options.sharded_data,
                        options.gradient_sum);
  const RankSums ranks = parallel.rank_sums();
  const std::int64_t all_train_rows = parallel.total(train_rows), all_validation_rows = parallel.total(validation_rows);

  std::vector<std::int64_t> split(static_cast<std::size_t>(x.rows));
  std::iota(split.begin(), split.end(), 0);
  if (!split_done) {
    std::vector<std::int64_t> row_classes;
    for (std::int64_t r = 0; classification && r < y.rows; ++r)
      row_classes.push_back(static_cast<std::int64_t>(y(r, 0)));
    split = validation_split_order(x.rows, options, parallel.broadcast(options.seed.value_or(seed_)), row_classes);
  }
  const std::vector<std::int64_t> train_index(split.begin(), split.begin() + train_rows);
  const std::vector<std::int64_t> validation_index(split.begin() + train_rows, split.end());
  const Matrix x_train = Matrix::take_rows(x, train_index), y_train = Matrix::take_rows(y, train_index);
  // The training rows' weights, in x_train's order.
  std::vector<float> train_weights;
  if (!weights.empty()) {
    float total = 0.0f;
    for (const std::int64_t i : train_index) {
      train_weights.push_back(weights[static_cast<std::size_t>(i)]);
      total += train_weights.back();
    }
    if (parallel.sum({total})[0] == 0.0f)
      throw SettingError("FitOptions::sample_weight", "is 0 for every training row: nothing would be learned");
  }

  if (!scaler_fitted_) {
    scaler_.enabled = options.normalize;
    // Weighted rows count as often as their weights, as repeated rows would.
    scaler_.x =
        options.normalize ? column_statistics(x_train, ranks, train_weights) : ColumnStatistics::identity(x.cols);
    // Indicators stay 0 or 1 (and bins in [0, 1]): standardized, a category in 1 row of 1000 would
    // become an input near 30 that the network fits as an outlier (scikit-learn's pipelines scale
    // numbers only).
    const std::vector<bool> indicators = preprocessing_.unit_inputs();
    if (static_cast<std::int64_t>(indicators.size()) == x.cols) {
      for (std::size_t c = 0; c < indicators.size(); ++c)
        if (indicators[c]) {
          scaler_.x.mean[c] = 0.0;
          scaler_.x.std[c] = 1.0;
        }
      std::erase_if(scaler_.x.constant_columns,
                    [&](std::int64_t c) { return indicators[static_cast<std::size_t>(c)]; });
    }
    // Class labels are indices, never standardized.
    scaler_.y = options.normalize && !classification ? column_statistics(y_train, ranks, train_weights)
                                                     : ColumnStatistics::identity(output_width());
    const std::vector<std::string> inputs = preprocessing_.input_names();
    for (std::int64_t c : scaler_.x.constant_columns)
      warn(fmt::format("{} is constant; its standard deviation is taken as 1", column_label(inputs, c, "feature")));
    for (std::int64_t c : scaler_.y.constant_columns)
      warn(fmt::format("{} is constant; its standard deviation is taken as 1",
                       column_label(preprocessing_.targets, c, "target")));
    if (!classification) warn_about_label_targets(y_train, preprocessing_.targets, warn);
    scaler_fitted_ = true;
  }

  const std::lock_guard lock(runtime_.mutex);
  Backend& backend = this->backend();
  const std::int64_t batch_size = std::min(options.batch_size, all_train_rows);
  parallel.set_rows(batch_size, train_rows);
  Plan plan(backend, layers_, input_width_, parallel.plan_batch_size(), options_.optimizer, options_.loss, seed_,
            options_.clip_norm);
  parallel.broadcast(parameters_, optimizer_state_);
  plan.upload_parameters(parameters_, optimizer_state_, optimizer_step_);
  const std::string data_parallel = parallel.connect(backend);

  // The data goes to the backend once; the steps gather their batches there.
  const Matrix y_train_scaled = classification ? y_train : scaler_.y.standardize(y_train);
  const Matrix y_validation_scaled = classification ? Matrix::take_rows(y, validation_index)
                                                    : scaler_.y.standardize(Matrix::take_rows(y, validation_index));
  // R²'s totals: the squared deviations of the targets from their mean.
  const std::vector<double> train_totals =
      classification ? std::vector<double>{} : column_moments(y_train_scaled, ranks).squares;
  const std::vector<double> validation_totals =
      classification ? std::vector<double>{} : column_moments(y_validation_scaled, ranks).squares;
  const BackendMatrix train_x(backend, scaler_.x.standardize(x_train));
  const BackendMatrix train_y(backend, y_train_scaled);
  const BackendMatrix validation_x(backend, scaler_.x.standardize(Matrix::take_rows(x, validation_index)));
  const BackendMatrix validation_y(backend, y_validation_scaled);
  Buffer indices_buffer(backend, static_cast<std::size_t>(train_rows) * sizeof(std::int32_t));
  auto* indices = static_cast<std::int32_t*>(indices_buffer.data());
  plan.bind_training_set(train_x.view, train_y.view, indices);
  // With sample weights, each row's factor on its loss gradient for the epoch's order (row_scales).
  Buffer scales_buffer(backend, std::max<std::size_t>(1, train_weights.size()) * sizeof(float));
  auto* scales = static_cast<float*>(scales_buffer.data());
  if (!train_weights.empty()) plan.bind_row_weights({scales, train_rows, 1});
  if (options.on_train_begin)
    options.on_train_begin({.training_rows = all_train_rows,
                            .validation_rows = all_validation_rows,
                            .dropped_rows = dropped_rows,
                            .inputs = input_width_,
                            .outputs = output_width(),
                            .parameters = parameter_count(),
                            .backend = runtime_.name,
                            .data_parallel = data_parallel});

  std::uint64_t shuffle_seed = parallel.broadcast(options.seed.value_or(seed_));
  if (parallel.sharded())  // each rank shuffles its own rows
    shuffle_seed = derive_seed(shuffle_seed, 0x5eed0000u + static_cast<std::uint64_t>(options.communicator->rank()));
  const std::int64_t batches = parallel.batches();
  // The row order of an epoch (absolute epoch numbers, so a resumed run shuffles as an uninterrupted one).
  std::vector<std::int32_t> order(static_cast<std::size_t>(train_rows));
  const auto shuffle_for = [&](std::int64_t epoch) {
    std::iota(order.begin(), order.end(), 0);
    if (options.shuffle) Random(derive_seed(shuffle_seed, static_cast<std::uint64_t>(epoch))).shuffle(order);
  };
  // The step count of the snapshot (counted on the host: the snapshot copies only the buffers).
  const bool counts_steps = optimizer_part::counts_steps(options_.optimizer);
  const std::int32_t step_at_start = optimizer_step_;
  std::int32_t step_before_epoch = step_at_start;
  const std::int64_t epochs_before = epochs_completed_;
  std::int64_t completed = 0;  // epochs of this fit whose state the snapshot holds
  // The model's host state from the plan: the state after `done` epochs of this fit.
  History history;
  const auto take_state = [&](std::int64_t done, std::int32_t step) {
    plan.download_parameters(parameters_, optimizer_state_, optimizer_step_);
    optimizer_step_ = step;
    epochs_completed_ = epochs_before + done;
    for (const EpochRecord& record : history.epochs)
      if (record.epoch == epochs_completed_) epoch_record_ = record;
  };
  if (options.epochs > 0) shuffle_for(epochs_completed_ + 1);
  // An epoch's steps; false when a stop was requested (the epoch then ends at that batch).
  const auto upload_order = [&] {
    const std::vector<std::int32_t> local = parallel.local_order(order);
    backend.copy_to_device(indices, local.data(), local.size() * sizeof(std::int32_t));
    if (train_weights.empty()) return;
    // A step's loss gradient is the mean over its rows; times w_i * rows / (the batch's sum of w),
    // it is the weighted mean's (exactly 1 where every weight is equal).
    const std::vector<float> row_scales = parallel.row_factors(order, train_weights);
    backend.copy_to_device(scales, row_scales.data(), row_scales.size() * sizeof(float));
  };
  // Batch b's step; whether a stop was requested (on any rank).
  const auto step = [&](std::int64_t b) {
    if (parallel.active()) return parallel.step(plan, b, options.stop.stop_requested());
    plan.train_step(std::min(batch_size, train_rows - b * batch_size));
    return options.stop.stop_requested();
  };
  // With several ranks, their parameters are compared every kStepsBetweenChecks steps and at the
  // end of each epoch: ranks that drift apart stop the run instead of training on silently.
  constexpr std::int64_t kStepsBetweenChecks = 256;
  const auto check_ranks = [&](const std::string& when) {
    std::vector<float> parameters, state;
    std::int32_t unused = 0;
    plan.download_parameters(parameters, state, unused);
    parallel.check_same(parameters, when);
  };
  const auto run_epoch = [&](std::int64_t epoch) {
    upload_order();
    plan.reset_epoch(epoch);
    for (std::int64_t b = 0; b < batches; ++b) {
      const bool stop = step(b);
      if (options.on_batch) options.on_batch(b + 1, batches);
      if (stop) return false;
      if (parallel.active() && (b + 1) % kStepsBetweenChecks == 0 && b + 1 < batches)
        check_ranks(fmt::format("at batch {} of epoch {}", b + 1, epoch));
    }
    return true;
  };
  // The first batch of an epoch whose loss is not finite: the epoch again from its start (the
  // steps are deterministic), reading the sums after each step.
  const auto first_bad_batch = [&](std::int64_t epoch) -> std::optional<std::int64_t> {
    shuffle_for(epoch);
    plan.restore_state();
    plan.set_step(step_before_epoch);
    upload_order();
    plan.reset_epoch(epoch);
    for (std::int64_t b = 0; b < batches; ++b) {
      step(b);
      const std::vector<float> sums = parallel.sum(plan.read_loss_sums().train);
      if (!std::all_of(sums.begin(), sums.end(), [](float v) { return std::isfinite(v); })) return b + 1;
    }
    return std::nullopt;
  };
  const std::optional<EarlyStopping>& early = options.early_stopping;
  if (early && early->restore_best) plan.reserve_best();
  double best_loss = std::numeric_limits<double>::infinity();
  std::int64_t best_completed = 0, waited = 0;
  std::int32_t best_step = step_before_epoch;
  ScheduleState best_schedule = schedule_state_;
  plan.snapshot_state();
  try {
    for (std::int64_t e = 0; e < options.epochs; ++e) {
      const auto start = std::chrono::steady_clock::now();
      const std::int64_t epoch = epochs_before + e + 1;
      const double base_rate = learning_rate(options_.optimizer);
      float scale = schedule_scale(options_.schedule, epoch - 1, schedule_state_);
      if (options.on_epoch_begin)
        scale = scale_for_rate(options.on_epoch_begin(epoch, base_rate * scale), base_rate, epoch);
      plan.set_lr_scale(scale);
      if (!run_epoch(epoch)) {  // stopped inside the epoch: back to its start
        history.stopped = "stop requested";
        break;
      }
      for (std::int64_t first = 0; first < validation_rows; first += plan.batch_size()) {
        const std::int64_t rows = std::min(plan.batch_size(), validation_rows - first);
        plan.accumulate_validation(plan.forward(validation_x.view.row_range(first, rows)),
                                   validation_y.view.row_range(first, rows));
      }
      // The next epoch's order, shuffled on the host while a GPU still runs this epoch's queued steps
      // (its upload above has completed: copy_to_device returns once the source may be reused).
      if (e + 1 < options.epochs) shuffle_for(epoch + 1);
      Plan::LossSums sums = plan.read_loss_sums();
      sums.train = parallel.sum(sums.train);
      if (parallel.sharded()) sums.validation = parallel.sum(sums.validation);  // else every rank has them all
      EpochRecord record;
      record.epoch = epoch;
      record.lr = base_rate * scale;
      const loss_part::Figures train =
          loss_part::figures(options_.loss, sums.train, all_train_rows, scaler_.y.std, train_totals);
      record.loss = train.loss;
      record.mae = train.mae;
      record.r2 = train.r2;
      record.accuracy = train.accuracy;
      if (all_validation_rows > 0) {
        const loss_part::Figures validation =
            loss_part::figures(options_.loss, sums.validation, all_validation_rows, scaler_.y.std, validation_totals);
        record.val_loss = validation.loss;
        record.val_mae = validation.mae;
        record.val_r2 = validation.r2;
        record.val_accuracy = validation.accuracy;
      }
      record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!std::isfinite(record.loss) || (record.val_loss && !std::isfinite(*record.val_loss))) {
        const std::string what = std::isfinite(record.loss)
                                     ? fmt::format("the validation loss became {}", *record.val_loss)
                                     : fmt::format("the loss became {}", record.loss);
        const std::optional<std::int64_t> batch = std::isfinite(record.loss) ? std::nullopt : first_bad_batch(epoch);
        const std::int64_t kept = epochs_before + completed;
        throw DivergenceError(fmt::format(
            "training diverged at epoch {}{}: {}; {}; the model keeps the weights of {}", epoch,
            batch ? fmt::format(", batch {} of {}", *batch, batches) : std::string(), what,
            divergence_causes(options_.optimizer, options_.clip_norm, scaler_.enabled),
            kept > 0 ? fmt::format("epoch {}, the last finite one", kept) : std::string("before training")));
      }
      plan.snapshot_state();
      if (parallel.active()) check_ranks(fmt::format("after epoch {}", epoch));
      completed = e + 1;
      if (counts_steps) step_before_epoch = step_at_start + static_cast<std::int32_t>(completed * batches);
      history.epochs.push_back(record);
      const double monitored = record.val_loss.value_or(record.loss);
      schedule_observe(options_.schedule, monitored, schedule_state_);
      bool stop = false;
      if (early) {  // Keras: an improvement is a loss below best - min_delta
        if (monitored < best_loss - early->min_delta) {
          best_loss = monitored;
          best_completed = completed;
          best_step = step_before_epoch;
          history.best_epoch = epoch;
          best_schedule = schedule_state_;
          waited = 0;
          if (early->restore_best) plan.keep_best();
        } else if (++waited >= early->patience) {
          stop = true;
          history.stopped = "early stopping";
        }
      }
      const bool checkpoint = options.checkpoint_every > 0 && epoch % options.checkpoint_every == 0;
      // The model holds the epoch's state for the checkpoint and for on_epoch_end.
      if (checkpoint || options.on_epoch_end) take_state(completed, step_before_epoch);
      if (checkpoint) {
        // Rank 0 writes; the others wait to hear whether it could.
        std::exception_ptr failed;
        if (parallel.writes_files()) try {
            save(options.checkpoint_path);
          } catch (...) {
            failed = std::current_exception();
          }
        if (parallel.any(failed != nullptr)) {
          if (failed) std::rethrow_exception(failed);
          throw Error(fmt::format("rank 0 could not write the checkpoint {}", options.checkpoint_path));
        }
      }
      if (options.on_epoch_end) options.on_epoch_end(record);
      if (stop) break;
      if (parallel.any(options.stop.stop_requested())) {
        if (e + 1 < options.epochs) history.stopped = "stop requested";
        break;
      }
    }
  } catch (...) {
    // An exception from a callback, a divergence or a failing backend: the model keeps the state
    // after the last completed epoch (the snapshot).
    plan.restore_state();
    take_state(completed, step_before_epoch);
    throw;
  }
  plan.restore_state();  // a stop inside an epoch left part of it in the plan
  take_state(completed, step_before_epoch);
  if (early && early->restore_best && history.best_epoch && best_completed != completed) {
    plan.restore_best();
    take_state(best_completed, best_step);
    schedule_state_ = best_schedule;
  }
  return history;
}

Matrix Sequential::predict_rows(Backend& backend, ConstView x, std::int64_t batch_size) const {
  const std::int64_t rows = x.rows, batch = std::min(batch_size, rows), batches = (rows + batch - 1) / batch;
  Matrix output(rows, output_width());
  // What one batch needs: an inference plan, and its input standardized in host memory.
  struct Worker {
    Plan plan;
    Matrix scaled;
    Buffer input;
  };
  const auto make_worker = [&] {
    // Braces build the plan in place (a Plan does not move).
    std::unique_ptr<Worker> worker(
        new Worker{Plan(backend, layers_, input_width_, batch), Matrix(batch, x.cols),
                   Buffer(backend, static_cast<std::size_t>(batch * x.cols) * sizeof(float))});
    worker->plan.upload_parameters(parameters_);
    return worker;
  };
  const auto run_batch = [&](Worker& worker, std::int64_t index) {
    const std::int64_t first = index * batch, count = std::min(batch, rows - first);
    const View scaled = worker.scaled.view().row_range(0, count);
    scaler_.x.standardize_into(x.row_range(first, count), scaled);
    backend.copy_to_device(worker.input.data(), scaled.data, static_cast<std::size_t>(scaled.size()) * sizeof(float));
    const ConstView result = worker.plan.forward({static_cast<const float*>(worker.input.data()), count, x.cols});
    backend.copy_to_host(output.data() + first * output.cols(), result.data,
                         static_cast<std::size_t>(result.size()) * sizeof(float));
  };
  // On the CPU, threads take whole batches, each with a plan of its own: one hand-off per batch
  // rather than per op, so that a thread held up by another process costs at most its last batch.
  // Every batch is computed the same way on any thread. The GPU runs the batches on its stream.
  const double seconds =
      threads::single_thread_seconds(2.0 * static_cast<double>(rows) * static_cast<double>(parameters_.size()), 0);
  const int threads = backend.device() == Device::cpu ? threads::threads_for_tasks(seconds, batches) : 1;
  if (threads <= 1) {
    const std::unique_ptr<Worker> worker = make_worker();
    for (std::int64_t index = 0; index < batches; ++index) run_batch(*worker, index);
    return output;
  }
  std::mutex idle_mutex;
  std::vector<std::unique_ptr<Worker>> idle;  // workers between batches
  threads::run_chunks(batches, threads, [&](std::int64_t index) {
    std::unique_ptr<Worker> worker;
    {
      const std::lock_guard lock(idle_mutex);
      if (!idle.empty()) {
        worker = std::move(idle.back());
        idle.pop_back();
      }
    }
    if (!worker) worker = make_worker();
    run_batch(*worker, index);
    const std::lock_guard lock(idle_mutex);
    idle.push_back(std::move(worker));
  });
  return output;
}

std::int64_t Sequential::class_count() const {
  return output_width() == 1 ? 2 : output_width();
}

void Sequential::check_targets(ConstView y) const {
  if (!is_classification(options_.loss)) {
    if (y.cols != output_width())
      throw InputError(fmt::format("the model has {} outputs but the targets have {} columns", output_width(), y.cols));
    check_finite(y, "target");
    return;
  }
  if (y.cols != 1)
    throw InputError(fmt::format("classification targets are one column of class indices, not {}", y.cols));
  for (std::int64_t r = 0; r < y.rows; ++r) {
    const float label = y(r, 0);
    if (!(label >= 0.0f && label < static_cast<float>(class_count())) || label != std::floor(label))
      throw InputError(fmt::format("target row {} is {}, not a class index from 0 to {} (the model has {} output{})",
                                   r + 1, label, class_count() - 1, output_width(), output_width() == 1 ? "" : "s"));
  }
}

Matrix Sequential::predict(ConstView x, std::int64_t batch_size) const {
  if (!built()) throw InputError("the model has no weights yet; fit or load it before predict");
  if (x.rows == 0) throw InputError("predict needs at least one row");
  if (batch_size <= 0) throw InputError(fmt::format("batch size must be >= 1, got {}", batch_size));
  if (x.cols != input_width_)
    throw InputError(fmt::format("the model takes {} inputs but the data has {} columns", input_width_, x.cols));
  check_finite(x, "input");
  const Matrix output = [&] {
    const std::lock_guard lock(runtime_.mutex);
    return predict_rows(backend(), x, batch_size);
  }();
  if (!is_classification(options_.loss)) return scaler_.y.restore(output);
  // Probabilities from the logits, in float64: a sigmoid for one logit, else a softmax.
  Matrix probabilities(output.rows(), class_count());
  for (std::int64_t r = 0; r < output.rows(); ++r) {
    if (output.cols() == 1) {
      const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(output(r, 0))));
      probabilities(r, 0) = static_cast<float>(1.0 - p);
      probabilities(r, 1) = static_cast<float>(p);
      continue;
    }
    double largest = output(r, 0), sum = 0.0;
    for (std::int64_t c = 1; c < output.cols(); ++c) largest = std::max<double>(largest, output(r, c));
    for (std::int64_t c = 0; c < output.cols(); ++c) sum += std::exp(output(r, c) - largest);
    for (std::int64_t c = 0; c < output.cols(); ++c)
      probabilities(r, c) = static_cast<float>(std::exp(output(r, c) - largest) / sum);
  }
  return probabilities;
}

std::vector<std::int64_t> Sequential::predict_classes(ConstView x, std::int64_t batch_size) const {
  if (!is_classification(options_.loss))
    throw InputError("predict_classes needs a classification model (a CrossEntropy loss)");
  const Matrix probabilities = predict(x, batch_size);
  std::vector<std::int64_t> classes(static_cast<std::size_t>(probabilities.rows()));
  for (std::int64_t r = 0; r < probabilities.rows(); ++r) {
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < probabilities.cols(); ++c)
      if (probabilities(r, c) > probabilities(r, best)) best = c;
    classes[static_cast<std::size_t>(r)] = best;
  }
  return classes;
}

std::vector<std::string> Sequential::classes() const {
  if (!is_classification(options_.loss)) return {};
  if (!preprocessing_.classes.empty()) return preprocessing_.classes;
  std::vector<std::string> names;
  for (std::int64_t c = 0; c < class_count(); ++c) names.push_back(std::to_string(c));
  return names;
}

Preprocessing Sequential::table_preprocessing(const CsvTable& table) const {
  if (!built()) throw InputError("the model has no weights yet; fit or load it before predict");
  if (!preprocessing_.empty()) return preprocessing_;
  // A model trained on matrices without column names: the table's columns, in order.
  std::vector<std::string> names;
  for (const CsvColumn& column : table.columns)
    if (column.type != ColumnType::skipped) names.push_back(column.name);
  if (static_cast<std::int64_t>(names.size()) != input_width_)
    throw InputError(
        fmt::format("{}: {} columns, but the model takes {} inputs (it stores no column names to select "
                    "them by)",
                    table.path, names.size(), input_width_));
  return preprocessing::numeric(names, {});
}

Matrix Sequential::predict(const CsvTable& table, const PredictOptions& options) const {
  const Preprocessing p = table_preprocessing(table);
  const std::vector<std::int64_t> rows = preprocessing::usable_rows(p, table, false, false);
  const preprocessing::Encoded encoded = preprocessing::encode(p, table, rows, false);
  const Warn warn = warner(options.on_warning);
  for (const std::string& message : encoded.warnings) warn(message);
  const std::int64_t width = is_classification(options_.loss) ? class_count() : output_width();
  Matrix output(table.rows(), width, std::numeric_limits<float>::quiet_NaN());
  if (rows.empty()) {
    warn("every row has a missing feature; every prediction is NaN");
    return output;
  }
  const Matrix predicted = predict(encoded.x, options.batch_size);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::int64_t c = 0; c < output.cols(); ++c) output(rows[i], c) = predicted(static_cast<std::int64_t>(i), c);
  const auto dropped = table.rows() - static_cast<std::int64_t>(rows.size());
  if (dropped > 0)
    warn(fmt::format("{} row{} with a missing feature {} no prediction (NaN)", dropped, dropped == 1 ? "" : "s",
                     dropped == 1 ? "has" : "have"));
  return output;
}

std::vector<std::string> Sequential::predict_labels(const CsvTable& table, const PredictOptions& options) const {
  if (!is_classification(options_.loss))
    throw InputError("predict_labels needs a classification model (a CrossEntropy loss)");
  const Matrix probabilities = predict(table, options);
  const std::vector<std::string> names = classes();
  std::vector<std::string> labels(static_cast<std::size_t>(probabilities.rows()));
  for (std::int64_t r = 0; r < probabilities.rows(); ++r) {
    if (std::isnan(probabilities(r, 0))) continue;  // left out: a missing feature
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < probabilities.cols(); ++c)
      if (probabilities(r, c) > probabilities(r, best)) best = c;
    labels[static_cast<std::size_t>(r)] = names[static_cast<std::size_t>(best)];
  }
  return labels;
}

namespace {

/// Accuracy, log-loss, macro-F1 and the confusion matrix of probabilities (rows, classes) against
/// class indices, as scikit-learn computes them (log_loss clips p to [eps, 1 - eps] with float64's
/// eps; f1_score(average="macro") over the classes that are true or predicted, 0 where undefined).
void classification_metrics(const Matrix& probabilities, ConstView labels, Metrics& metrics) {
  const std::int64_t k = probabilities.cols();
  metrics.confusion.assign(static_cast<std::size_t>(k), std::vector<std::int64_t>(static_cast<std::size_t>(k), 0));
  double log_loss = 0.0, correct = 0.0;
  constexpr double eps = std::numeric_limits<double>::epsilon();
  for (std::int64_t r = 0; r < probabilities.rows(); ++r) {
    const auto y = static_cast<std::int64_t>(labels(r, 0));
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < k; ++c)
      if (probabilities(r, c) > probabilities(r, best)) best = c;
    ++metrics.confusion[static_cast<std::size_t>(y)][static_cast<std::size_t>(best)];
    correct += best == y ? 1.0 : 0.0;
    log_loss -= std::log(std::clamp<double>(probabilities(r, y), eps, 1.0 - eps));
  }
  const auto rows = static_cast<double>(probabilities.rows());
  metrics.accuracy = correct / rows;
  metrics.log_loss = log_loss / rows;
  double f1_sum = 0.0, counted = 0.0;
  for (std::int64_t c = 0; c < k; ++c) {
    double true_positive = 0, actual = 0, predicted = 0;
    for (std::int64_t o = 0; o < k; ++o) {
      actual += static_cast<double>(metrics.confusion[static_cast<std::size_t>(c)][static_cast<std::size_t>(o)]);
      predicted += static_cast<double>(metrics.confusion[static_cast<std::size_t>(o)][static_cast<std::size_t>(c)]);
    }
    true_positive = static_cast<double>(metrics.confusion[static_cast<std::size_t>(c)][static_cast<std::size_t>(c)]);
    if (actual == 0 && predicted == 0) continue;
    f1_sum += 2.0 * true_positive / (actual + predicted);
    counted += 1;
  }
  metrics.macro_f1 = counted > 0 ? f1_sum / counted : 0.0;
}

}  // namespace

Metrics Sequential::evaluate(ConstView x, ConstView y, std::int64_t batch_size) const {
  if (x.rows != y.rows) throw InputError(fmt::format("{} input rows do not match {} target rows", x.rows, y.rows));
  check_targets(y);
  const Matrix prediction = predict(x, batch_size);
  Metrics metrics;
  metrics.rows = x.rows;
  if (is_classification(options_.loss)) {
    metrics.classes = classes();
    classification_metrics(prediction, y, metrics);
    return metrics;
  }
  double squared = 0.0, absolute = 0.0, r2_sum = 0.0;
  for (std::int64_t c = 0; c < y.cols; ++c) {
    double mean = 0.0;
    for (std::int64_t r = 0; r < y.rows; ++r) mean += y(r, c);
    mean /= static_cast<double>(y.rows);
    double residual = 0.0, total = 0.0, column_absolute = 0.0;
    for (std::int64_t r = 0; r < y.rows; ++r) {
      const double error = static_cast<double>(prediction(r, c)) - y(r, c);
      residual += error * error;
      column_absolute += std::abs(error);
      total += (y(r, c) - mean) * (y(r, c) - mean);
    }
    squared += residual;
    absolute += column_absolute;
    const double r2 = r_squared(residual, total);
    r2_sum += r2;
    const auto name = static_cast<std::size_t>(c) < target_names().size() ? target_names()[static_cast<std::size_t>(c)]
                                                                          : std::string();
    const double rows = static_cast<double>(y.rows);
    metrics.targets.push_back({name, residual / rows, column_absolute / rows, r2});
  }
  const double elements = static_cast<double>(y.size());
  metrics.mse = squared / elements;
  metrics.mae = absolute / elements;
  metrics.r2 = r2_sum / static_cast<double>(y.cols);
  return metrics;
}

Metrics Sequential::evaluate(const CsvTable& table, const PredictOptions& options) const {
  if (!built()) throw InputError("the model has no weights yet; fit or load it before evaluate");
  if (preprocessing_.targets.empty())
    throw InputError(fmt::format("{}: the model stores no target column names to evaluate against", table.path));
  const std::vector<std::int64_t> rows = preprocessing::usable_rows(preprocessing_, table, true, false);
  if (rows.empty())
    throw InputError(
        fmt::format("{}: every row has a missing value in a column the model uses; no row is left to "
                    "evaluate",
                    table.path));
  const preprocessing::Encoded encoded = preprocessing::encode(preprocessing_, table, rows, true);
  const Warn warn = warner(options.on_warning);
  for (const std::string& message : encoded.warnings) warn(message);
  Metrics metrics = evaluate(encoded.x, encoded.y, options.batch_size);
  metrics.dropped_rows = table.rows() - static_cast<std::int64_t>(rows.size());
  return metrics;
}

}  // namespace ember
