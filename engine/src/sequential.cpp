#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "activation_math.hpp"
#include "cpu/thread_pool.hpp"
#include "data_parallel.hpp"
#include "ember/error.hpp"
#include "ember/model.hpp"
#include "ember/random.hpp"
#include "fit_loop.hpp"
#include "layer_part.hpp"
#include "loss_part.hpp"
#include "parameter_layout.hpp"
#include "plan.hpp"
#include "preprocessing_ops.hpp"
#include "shape_checks.hpp"

namespace ember {
namespace {

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
  if (!linear_.empty()) {  // a blend's linear model: the same settings but its own optimizer
    CompileOptions linear = options;
    linear.optimizer = linear_.front().options_.optimizer;
    linear_.front().compile(linear);
  }
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
  return tensor(layer, "weight");
}

ConstView Sequential::bias(std::size_t layer) const {
  return tensor(layer, "bias");
}

void Sequential::set_weight(std::size_t layer, const Matrix& weight) {
  set_tensor(layer, "weight", weight);
}

void Sequential::set_bias(std::size_t layer, const Matrix& bias) {
  set_tensor(layer, "bias", bias);
}

std::vector<std::string> Sequential::tensor_names(std::size_t layer) const {
  if (!built()) throw InputError("the model has no weights yet; fit, build or load it first");
  std::vector<std::string> names;
  const std::string prefix = fmt::format("layers.{}.", layer);
  for (const ParameterLayout::Tensor& tensor : layer_width(layers_, input_width_, layer).tensors)
    names.push_back(tensor.name.substr(prefix.size()));
  return names;
}

ConstView Sequential::tensor(std::size_t layer, const std::string& name) const {
  if (!built()) throw InputError("the model has no weights yet; fit, build or load it first");
  return tensor_view(parameters_, parameter_tensor(layers_, input_width_, layer, name.c_str()));
}

void Sequential::set_tensor(std::size_t layer, const std::string& name, const Matrix& values) {
  const ConstView current = tensor(layer, name);
  if (values.rows() != current.rows || values.cols() != current.cols)
    throw InputError(fmt::format("layer {}'s {} is ({}, {}), not ({}, {})", layer, name, current.rows, current.cols,
                                 values.rows(), values.cols()));
  check_finite(values, name.c_str());
  layer_part::check_values(layers_[layer], name, std::span<const float>(values.data(), values.size()));
  std::copy(values.data(), values.data() + values.size(), parameters_.begin() + (current.data - parameters_.data()));
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
  const ParameterLayout::Layer placed = layer_width(layers_, input_width_, layer);
  return placed.count + placed.state_count;
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
    parameters_.assign(static_cast<std::size_t>(count), 0.0f);
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
  // Each part gives its tensors' values in its order; the layout says where each goes.
  const ParameterLayout layout(layers_, input_width);
  std::vector<float> values;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const ParameterLayout::Layer& layer = layout.layers()[l];
    values.clear();
    layer_part::initialize(layers_[l], layer.in, derive_seed(seed_, l), values);
    auto from = values.begin();
    for (const ParameterLayout::Tensor& tensor : layer.tensors) {
      std::copy(from, from + tensor.count, parameters_.begin() + tensor.offset);
      from += tensor.count;
    }
  }
  epochs_completed_ = 0;
  epoch_record_.reset();
  members_.clear();
  planned_members_ = 1;
  linear_.clear();
  linear_share_ = 0.0;
}

namespace {

/// R^2 as scikit-learn's r2_score: a constant target scores 1 when predicted exactly, else 0.
double r_squared(double residual, double total) {
  return total > 0.0 ? 1.0 - residual / total : (residual == 0.0 ? 1.0 : 0.0);
}

/// a's rows, then b's (the same columns).
Matrix stacked(ConstView a, ConstView b) {
  Matrix out(a.rows + b.rows, a.cols);
  std::copy(a.data, a.data + a.size(), out.data());
  std::copy(b.data, b.data + b.size(), out.data() + a.size());
  return out;
}

/// Whether this process writes FitOptions::checkpoint_path during the fit (rank 0 of several).
bool writes_checkpoints(const FitOptions& options) {
  return options.checkpoint_every > 0 && (!options.communicator || options.communicator->rank() == 0);
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

History Sequential::train_without(std::vector<Sequential> Sequential::*part,
                                  const std::function<History(Sequential&, const FitOptions&)>& train,
                                  const FitOptions& options) {
  std::vector<Sequential> aside = std::move(this->*part);
  (this->*part).clear();
  try {
    History history = train(*this, options);
    this->*part = std::move(aside);
    return history;
  } catch (...) {
    this->*part = std::move(aside);
    throw;
  }
}

History Sequential::fit_members(const FitOptions& options,
                                const std::function<History(Sequential&, const FitOptions&)>& train) {
  check_fit_options(options);
  if (!compiled_) throw InputError("compile the model before fit");
  const std::int64_t planned = options.members == 0 ? planned_members_ : options.members;
  if (planned < member_count())
    throw SettingError(
        "FitOptions::members",
        fmt::format("{}: the model has {} members; a fit trains them all and drops none", planned, member_count()));
  // One validation split for every member (their preprocessing and scaler are then the same); each
  // member shuffles its own order.
  FitOptions each = options;
  each.members = 1;
  each.seed = options.seed.value_or(seed_);
  each.checkpoint_every = 0;
  const auto for_member = [&](std::int64_t k) {
    if (options.on_train_begin)
      each.on_train_begin = [&options, k, planned](TrainingSummary summary) {
        summary.member = k;
        summary.members = planned;
        options.on_train_begin(summary);
      };
  };
  const bool writes = writes_checkpoints(options);
  const std::int64_t target = epochs_completed_ + options.epochs;  // the epoch new members train to

  // The first network, on its own (its fit must not see the others).
  for_member(0);
  History history = train_without(&Sequential::members_, train, each);
  planned_members_ = planned;  // after the first fit, which builds a new model
  if (options.stop.stop_requested()) return history;
  if (writes) save(options.checkpoint_path);
  // The members the model has: epochs more, each from its own state.
  for (std::size_t k = 0; k < members_.size() && options.epochs > 0; ++k) {
    for_member(static_cast<std::int64_t>(k + 1));
    history.members.push_back(train(members_[k], each));
    if (options.stop.stop_requested()) return history;
    if (writes) save(options.checkpoint_path);
  }
  // The members it lacks: the first network's preprocessing and scaler, weights of their own seed.
  for (std::int64_t k = member_count(); k < planned; ++k) {
    std::vector<Sequential> finished = std::move(members_);  // not copied into the new member
    members_.clear();
    Sequential member = *this;
    members_ = std::move(finished);
    member.seed_ = seed_ + static_cast<std::uint64_t>(k);
    member.schedule_state_ = {};
    member.build(input_width_);
    member.member_index_ = static_cast<std::uint64_t>(k);
    for_member(k);
    FitOptions to_target = each;
    to_target.epochs = target;
    History trained = train(member, to_target);
    if (options.stop.stop_requested()) {  // left out, to be trained again
      history.stopped = trained.stopped;
      return history;
    }
    members_.push_back(std::move(member));
    history.members.push_back(std::move(trained));
    if (writes) save(options.checkpoint_path);
  }
  return history;
}

namespace {

/// Probabilities from the logits, in float64: a sigmoid for one logit, else a softmax.
Matrix probabilities_of(const Matrix& output, std::int64_t classes) {
  Matrix probabilities(output.rows(), classes);
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

/// A blend's outputs: (1 - share) times a plus share times b, in float64.
Matrix weighed(const Matrix& a, const Matrix& b, double share) {
  Matrix blend(a.rows(), a.cols());
  for (std::int64_t i = 0; i < blend.size(); ++i)
    blend.data()[i] = static_cast<float>((1.0 - share) * a.data()[i] + share * static_cast<double>(b.data()[i]));
  return blend;
}

/// A regression's validation loss, as the fit measures it: outputs and targets standardized.
double loss_of(Backend& reference, const Loss& loss, const Matrix& outputs, const Matrix& targets) {
  std::vector<float> sums(static_cast<std::size_t>(loss_part::sums_width(loss, outputs.cols())), 0.0f);
  loss_part::enqueue(reference, loss, outputs.view(), targets.view(), sums.data(), std::nullopt);
  reference.synchronize();
  const auto columns = static_cast<std::size_t>(outputs.cols());
  return loss_part::figures(loss, sums, outputs.rows(), std::vector<double>(columns, 1.0),
                            std::vector<double>(columns, 0.0))
      .loss;
}

}  // namespace

const Sequential& Sequential::blended_linear() const {
  if (linear_.empty()) throw InputError("the model is not a blend of layers and a linear model");
  return linear_.front();
}

std::vector<double> Sequential::blend_losses(const Sequential& linear, const std::vector<double>& shares,
                                             Communicator* ranks) const {
  std::vector<double> losses(shares.size(), 0.0);
  const std::unique_ptr<Backend> reference = make_backend(Device::cpu, {.cpu_reference = true});
  for (std::int64_t k = 0; k < member_count(); ++k) {
    const Sequential& network = k == 0 ? *this : members_[static_cast<std::size_t>(k - 1)];
    const Sequential& other = k == 0 ? linear : linear.members_[static_cast<std::size_t>(k - 1)];
    const std::int64_t rows = network.validation_x_.rows();
    if (other.validation_x_.rows() != rows) throw std::logic_error("a blend's networks validated on different rows");
    // Each blend's loss times the rows, then the rows: summed over the ranks, their mean.
    std::vector<double> sums(shares.size() + 1, 0.0);
    sums.back() = static_cast<double>(rows);
    if (rows > 0) {
      const auto outputs = [&](const Sequential& of) {  // standardized, as the targets below
        const std::lock_guard lock(runtime_.mutex);
        return of.predict_rows(backend(), of.validation_x_.view(), 1024, of.parameters_);
      };
      const Matrix mine = outputs(network), theirs = outputs(other);
      const Matrix targets = scaler_.y.standardize(network.validation_y_);
      for (std::size_t i = 0; i < shares.size(); ++i)
        sums[i] =
            loss_of(*reference, options_.loss, weighed(mine, theirs, shares[i]), targets) * static_cast<double>(rows);
    }
    if (ranks != nullptr) ranks->all_reduce(sums, Reduction::sum);
    if (sums.back() == 0.0) return {};
    for (std::size_t i = 0; i < shares.size(); ++i)
      losses[i] += sums[i] / sums.back() / static_cast<double>(member_count());
  }
  return losses;
}

History Sequential::fit_comparing(const FitOptions& options,
                                  const std::function<History(Sequential&, const FitOptions&)>& train) {
  check_optimizer(options.linear_optimizer);  // before the layers train, not after
  FitOptions each = options;
  each.compare_linear = false;
  // The linear model's fit: the callbacks told which model trains, and no file of its own (the
  // fit writes it once it knows what it keeps).
  FitOptions for_linear = each;
  for_linear.checkpoint_every = 0;
  if (options.on_train_begin)
    for_linear.on_train_begin = [&options](TrainingSummary summary) {
      summary.linear = true;
      options.on_train_begin(summary);
    };
  if (!linear_.empty()) {
    // A blend's further fit: the layers, then the linear model with its own optimizer; the file
    // is written once both have trained, so that it never holds one without the other.
    each.checkpoint_every = 0;
    const History history = train_without(&Sequential::linear_, train, each);
    if (options.stop.stop_requested()) return history;
    train(linear_.front(), for_linear);
    if (writes_checkpoints(options)) save(options.checkpoint_path);
    return history;
  }
  const bool validates = options.validation_split > 0.0 || options.validation_data.has_value();
  const bool compares = !built() && validates && layers_.size() >= 2 && std::holds_alternative<Dense>(layers_.back());
  const auto forget_rows = [](Sequential& model) {
    const auto forget = [](Sequential& network) {
      network.keep_validation_rows_ = false;
      network.validation_x_ = {};
      network.validation_y_ = {};
    };
    forget(model);
    for (Sequential& member : model.members_) forget(member);
  };
  keep_validation_rows_ = compares;
  History history;
  try {
    history = train(*this, each);
  } catch (...) {
    forget_rows(*this);
    throw;
  }
  if (!compares || options.stop.stop_requested() || preprocessing_.embedded_columns() > 0) {
    forget_rows(*this);
    return history;
  }
  // The mean over a model's networks of the validation loss of the epoch each keeps.
  const auto validation_loss = [](const Sequential& model) {
    double sum = 0.0;
    for (std::int64_t k = 0; k < model.member_count(); ++k) {
      const std::optional<EpochRecord>& record = model.member_record(k);
      if (!record || !record->val_loss) return std::numeric_limits<double>::quiet_NaN();
      sum += *record->val_loss;
    }
    return sum / static_cast<double>(model.member_count());
  };
  // The same inputs, outputs, options (but the optimizer) and seed; the preprocessing and scaler
  // this fit learned. The last layer's own activation (a Dense before a loss takes none) is the
  // linear model's.
  Sequential linear({layers_.back()}, seed_);
  CompileOptions linear_options = options_;
  linear_options.optimizer = options.linear_optimizer;
  linear.compile(linear_options);
  linear.preprocessing_ = preprocessing_;
  linear.scaler_ = scaler_;
  linear.scaler_fitted_ = scaler_fitted_;
  linear.keep_validation_rows_ = true;
  History linear_history;
  // A linear model can diverge where the layers did not (its inputs' whole scale reaches the
  // output at once): it has lost the comparison, and the layers stay.
  bool diverged = false;
  try {
    linear_history = train(linear, for_linear);
  } catch (const DivergenceError&) {
    diverged = true;
  } catch (...) {
    forget_rows(*this);
    throw;
  }
  if (options.stop.stop_requested()) {
    forget_rows(*this);
    return history;
  }
  LinearComparison comparison{
      .network_loss = validation_loss(*this),
      .linear_loss = diverged ? std::numeric_limits<double>::infinity() : validation_loss(linear)};
  comparison.linear_share = comparison.linear_loss < comparison.network_loss ? 1.0 : 0.0;
  // Blends where the two validate within kBlendGap of each other: there the choice between them
  // is close to a coin flip, and their mean hedges it. Where one is clearly better, and for
  // classifiers (whose blends lowered the log-loss but not the accuracy on the tables of
  // docs/performance.md), the better one alone predicts better.
  const double gap = std::abs(comparison.linear_loss - comparison.network_loss) /
                     std::min(comparison.linear_loss, comparison.network_loss);
  if (!diverged && !is_classification(options_.loss) && gap <= LinearComparison::kBlendGap) {
    const std::vector<double> shares(std::begin(LinearComparison::kBlendShares),
                                     std::end(LinearComparison::kBlendShares));
    const std::vector<double> losses = blend_losses(linear, shares, options.communicator.get());
    if (!losses.empty()) {
      comparison.shares = shares;
      comparison.blend_losses = losses;
      // The lowest loss; of equal ones the smaller share (the layers' before the linear model's).
      comparison.linear_share =
          shares[static_cast<std::size_t>(std::min_element(losses.begin(), losses.end()) - losses.begin())];
    }
  }
  forget_rows(*this);
  forget_rows(linear);
  comparison.kept_linear = comparison.linear_share == 1.0;
  if (comparison.kept_linear) {
    *this = std::move(linear);
    history = std::move(linear_history);
  } else if (comparison.linear_share > 0.0) {
    linear_share_ = comparison.linear_share;
    linear_.push_back(std::move(linear));
  }
  if (comparison.linear_share > 0.0 && writes_checkpoints(options)) save(options.checkpoint_path);
  history.linear = comparison;
  return history;
}

History Sequential::fit(ConstView x, ConstView y, const FitOptions& options) {
  const auto fit_one = [&](Sequential& model, const FitOptions& each) { return model.fit(x, y, each); };
  if (options.compare_linear || !linear_.empty()) return fit_comparing(options, fit_one);
  if (!members_.empty() || options.members > 1 || (options.members == 0 && planned_members_ > 1))
    return fit_members(options, fit_one);
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
  // A member or linear model made from this model has its column handling: it is given that
  // handling's spec.
  const auto fit_one = [&](Sequential& model, const FitOptions& each) {
    return model.fit(table, &model == this ? columns : model.preprocessing_.spec(), each);
  };
  if (options.compare_linear || !linear_.empty()) return fit_comparing(options, fit_one);
  if (!members_.empty() || options.members > 1 || (options.members == 0 && planned_members_ > 1))
    return fit_members(options, fit_one);
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
  const std::vector<std::int64_t> order = validation_split_order(static_cast<std::int64_t>(rows.size()), options,
                                                                 parallel.broadcast(options.seed.value_or(seed_)),
                                                                 row_classes, static_cast<std::int64_t>(member_index_));
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
  const std::vector<Layer> previous_layers = layers_;
  if (!learned)
    layers_.front() = layer_part::sized_for_table(layers_.front(), p.embedded_columns(), p.embedding_categories());
  preprocessing_ = std::move(p);
  try {
    return fit_matrices(encoded.x, encoded.y, options, table.rows() - static_cast<std::int64_t>(rows.size()), true,
                        held_out, std::move(weights));
  } catch (const InputError&) {  // refused before training: the model is as it was
    if (!learned) {
      preprocessing_ = previous;
      if (!built()) layers_ = previous_layers;
    }
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
  return FitLoop(*this, x, y, options, dropped_rows, split_done, held_out, weights).run();
}

Matrix Sequential::predict_rows(Backend& backend, ConstView x, std::int64_t batch_size,
                                const std::vector<float>& parameters) const {
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
    worker->plan.upload_parameters(parameters);
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
      threads::single_thread_seconds(2.0 * static_cast<double>(rows) * static_cast<double>(parameters.size()), 0);
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
  check_input(x, layers_);
  Matrix result = mean_output(*this, x, batch_size);
  if (linear_.empty()) return result;
  // A blend: the layers' and the linear model's outputs weighed by its share, in float64.
  return weighed(result, linear_.front().mean_output(*this, x, batch_size), linear_share_);
}

Matrix Sequential::mean_output(const Sequential& runner, ConstView x, std::int64_t batch_size) const {
  const auto network = [&](const std::vector<float>& parameters) {
    const Matrix output = [&] {
      const std::lock_guard lock(runner.runtime_.mutex);
      return predict_rows(runner.backend(), x, batch_size, parameters);
    }();
    return is_classification(options_.loss) ? probabilities_of(output, class_count()) : scaler_.y.restore(output);
  };
  Matrix result = network(parameters_);
  if (members_.empty()) return result;
  // An ensemble's prediction: the mean of its members' (targets or probabilities), summed in float64.
  std::vector<double> sum(result.data(), result.data() + result.size());
  for (const Sequential& member : members_) {
    const Matrix output = network(member.parameters_);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += output.data()[i];
  }
  const auto count = static_cast<double>(member_count());
  for (std::size_t i = 0; i < sum.size(); ++i) result.data()[i] = static_cast<float>(sum[i] / count);
  return result;
}

std::uint64_t Sequential::member_seed(std::int64_t k) const {
  if (k < 0 || k >= member_count())
    throw InputError(fmt::format("member {} of a model of {} member(s)", k, member_count()));
  return k == 0 ? seed_ : members_[static_cast<std::size_t>(k - 1)].seed_;
}

ConstView Sequential::member_tensor(std::int64_t k, std::size_t layer, const std::string& name) const {
  member_seed(k);  // the range check
  return k == 0 ? tensor(layer, name) : members_[static_cast<std::size_t>(k - 1)].tensor(layer, name);
}

const std::optional<EpochRecord>& Sequential::member_record(std::int64_t k) const {
  member_seed(k);  // the range check
  return k == 0 ? epoch_record_ : members_[static_cast<std::size_t>(k - 1)].epoch_record_;
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
