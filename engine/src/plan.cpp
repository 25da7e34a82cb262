#include "plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <optional>
#include <type_traits>
#include <variant>

#include "ember/error.hpp"
#include "loss_part.hpp"
#include "optimizer_part.hpp"

namespace ember {
namespace {

constexpr std::int64_t kAlignFloats = 64;  // 256 bytes: every region starts 16-byte (and cache-line) aligned

std::int64_t align_up(std::int64_t n) {
  return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
}

std::uint64_t next_plan_id() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

/// One callable of every lambda given: std::visit over it refuses a kind that none takes.
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};

}  // namespace

BackendMatrix::BackendMatrix(Backend& backend, const Matrix& host)
    : buffer(backend, static_cast<std::size_t>(std::max<std::int64_t>(host.size(), 1)) * sizeof(float)) {
  backend.copy_to_device(buffer.data(), host.data(), static_cast<std::size_t>(host.size()) * sizeof(float));
  view = {static_cast<const float*>(buffer.data()), host.rows(), host.cols()};
}

Plan::ArenaLayout Plan::arena_layout(const std::vector<Layer>& layers, std::int64_t input_width,
                                     std::int64_t batch_size, const std::optional<Optimizer>& optimizer,
                                     const Loss& loss) {
  ArenaLayout arena;
  const std::int64_t state_buffers =
      optimizer ? static_cast<std::int64_t>(optimizer_state_names(*optimizer).size()) : 0;
  const ParameterLayout layout(layers, input_width);
  std::int64_t widest = 1;
  for (const ParameterLayout::Layer& layer : layout.layers()) widest = std::max(widest, layer.out);
  const std::int64_t output_width = layout.layers().back().out;
  const std::int64_t target_width = loss_part::target_width(loss, output_width);
  const std::int64_t sums_width = loss_part::sums_width(loss, output_width);
  // Parameters, then (training) each optimizer state buffer, the gradients, the snapshot of
  // parameters and state; then the batch and each layer's output.
  arena.region_floats = align_up(layout.count());
  const std::int64_t training_regions = optimizer ? 1 + state_buffers + 1 + (1 + state_buffers) : 1;
  std::int64_t offset = training_regions * arena.region_floats;
  arena.x = offset;
  offset += align_up(batch_size * input_width);
  arena.y = offset;
  offset += align_up(batch_size * target_width);
  arena.weights = offset;  // a row weight per batch row, when fit weighs the rows
  offset += optimizer ? align_up(batch_size) : 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const layer_part::Buffers buffers = layer_part::buffers(layers[l], optimizer.has_value());
    const std::int64_t floats = align_up(batch_size * layout.layers()[l].out);
    arena.outputs.push_back(buffers.output ? offset : -1);
    if (buffers.output) offset += floats;
    arena.extras.push_back(buffers.extra ? offset : -1);
    if (buffers.extra) offset += floats;
  }
  if (optimizer) {
    arena.gradients = {offset, offset + align_up(batch_size * widest)};
    offset += 2 * align_up(batch_size * widest);
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const std::int64_t floats = optimizer ? layer_part::batch_scratch(layers[l], layout.layers()[l].in) : 0;
    arena.scratch.push_back(floats > 0 ? offset : -1);
    offset += align_up(floats);
  }
  arena.sums = offset;
  offset += align_up(2 * sums_width);
  arena.cursor = offset;
  offset += kAlignFloats;
  arena.scalars = offset;
  offset += kAlignFloats;
  arena.factor = offset;
  offset += kAlignFloats;
  arena.floats = offset;
  return arena;
}

double Plan::bytes_needed(const std::vector<Layer>& layers, std::int64_t input_width, std::int64_t batch_size,
                          const std::optional<Optimizer>& optimizer, const Loss& loss) {
  // A generous bound in floating point first (at most seven parameter regions of at most (in + 1)
  // out per layer, each layer's two buffers and two gradient buffers of the batch): beyond it the
  // layout's 64-bit offsets could overflow.
  const auto batch = static_cast<double>(batch_size);
  double bound = batch * static_cast<double>(input_width), in = static_cast<double>(input_width);
  std::int64_t width = input_width;
  for (const Layer& layer : layers) {
    width = layer_part::output_width(layer, width);
    const auto out = static_cast<double>(width);
    bound += 7 * (in + 1) * out + 4 * batch * out;
    in = out;
  }
  if (bound > 1e17) return bound * sizeof(float);
  return static_cast<double>(arena_layout(layers, input_width, batch_size, optimizer, loss).floats) * sizeof(float);
}

Plan::Plan(Backend& backend, const std::vector<Layer>& layers, std::int64_t input_width, std::int64_t batch_size,
           std::optional<Optimizer> optimizer, Loss loss, std::uint64_t seed, float clip_norm)
    : backend_(backend),
      id_(next_plan_id()),
      batch_size_(batch_size),
      input_width_(input_width),
      layout_(layers, input_width),
      optimizer_(std::move(optimizer)),
      loss_(loss),
      clip_norm_(clip_norm),
      layers_(layers) {
  if (batch_size <= 0) throw InputError(fmt::format("batch size must be positive, got {}", batch_size));
  if (optimizer_) state_buffers_ = static_cast<std::int64_t>(optimizer_state_names(*optimizer_).size());
  sums_width_ = loss_part::sums_width(loss_, layout_.layers().back().out);
  const ArenaLayout arena = arena_layout(layers, input_width, batch_size, optimizer_, loss_);
  region_floats_ = arena.region_floats;
  const std::int64_t x_offset = arena.x, y_offset = arena.y, sums_offset = arena.sums, cursor_offset = arena.cursor,
                     scalars_offset = arena.scalars, factor_offset = arena.factor;
  const std::vector<std::int64_t>& output_offsets = arena.outputs;
  const std::array<std::int64_t, 2>& gradient_offsets = arena.gradients;
  const std::int64_t offset = arena.floats;

  arena_ = Buffer(backend_, static_cast<std::size_t>(offset) * sizeof(float));
  float* base = static_cast<float*>(arena_.data());
  parameters_ = base;
  if (optimizer_) {
    state_ = base + region_floats_;
    gradients_ = base + (1 + state_buffers_) * region_floats_;
    snapshot_ = base + (2 + state_buffers_) * region_floats_;
    gradient_buffers_ = {base + gradient_offsets[0], base + gradient_offsets[1]};
  }
  x_batch_ = base + x_offset;
  y_batch_ = base + y_offset;
  weight_batch_ = base + arena.weights;
  loss_sums_ = base + sums_offset;
  cursor_ = reinterpret_cast<std::int32_t*>(base + cursor_offset);
  scalars_ = reinterpret_cast<OptimizerScalars*>(base + scalars_offset);
  sum_factor_ = base + factor_offset;

  for (std::size_t l = 0; l < layers.size(); ++l) {
    const ParameterLayout::Layer& span = layout_.layers()[l];
    layer_part::Slots slots{.in = span.in, .out = span.out};
    if (span.count > 0) {
      slots.parameters = parameters_ + span.offset;
      if (optimizer_) slots.gradients = gradients_ + span.offset;
    }
    if (span.state_count > 0) slots.state = parameters_ + span.state_offset;
    if (output_offsets[l] >= 0) slots.output = base + output_offsets[l];
    if (arena.extras[l] >= 0) slots.extra = base + arena.extras[l];
    if (arena.scratch[l] >= 0) slots.scratch = base + arena.scratch[l];
    spans_batch_ = spans_batch_ || slots.scratch != nullptr;
    slots.seed = layer_part::layer_seed(seed, l);
    slots_.push_back(slots);
  }
  layer_inputs_.resize(layers.size());
  sums_rows_exactly_ = optimizer_.has_value() && backend_.row_invariant() &&
                       std::all_of(layers.begin(), layers.end(), layer_part::takes_row_weights);
  // The last layer is Dense (Sequential checks it): some layer has parameters.
  while (first_with_parameters_ + 1 < slots_.size() && layout_.layers()[first_with_parameters_].count == 0)
    ++first_with_parameters_;
  // Parameters and state with their padding (the snapshot copies it); the state starts at zero.
  backend_.fill({parameters_, 1, (optimizer_ ? 1 + state_buffers_ : 1) * region_floats_}, 0.0f);
  // The gradients' tail, where the layers' state sits in the parameters, is never written: zeros.
  if (optimizer_) backend_.fill({gradients_, 1, region_floats_}, 0.0f);
  const OptimizerScalars first{};
  backend_.copy_to_device(scalars_, &first, sizeof(first));
  const float one = 1.0f;
  backend_.copy_to_device(sum_factor_ + 1, &one, sizeof(one));
  reset_epoch();
}

void Plan::require_training(const char* what) const {
  if (!optimizer_) throw Error(fmt::format("{} needs a training plan (one made with an optimizer)", what));
}

void Plan::upload_parameters(const std::vector<float>& parameters, const std::vector<float>& state, std::int32_t step) {
  const std::size_t count = static_cast<std::size_t>(layout_.count());
  if (parameters.size() != count) throw Error(fmt::format("{} parameters for a plan of {}", parameters.size(), count));
  backend_.copy_to_device(parameters_, parameters.data(), count * sizeof(float));
  if (!optimizer_) return;
  if (state.size() != count * static_cast<std::size_t>(state_buffers_))
    throw Error(fmt::format("{} optimizer state values for {} buffers of {}", state.size(), state_buffers_, count));
  for (std::int64_t b = 0; b < state_buffers_; ++b)
    backend_.copy_to_device(state_ + b * region_floats_, state.data() + static_cast<std::size_t>(b) * count,
                            count * sizeof(float));
  backend_.copy_to_device(&scalars_->step, &step, sizeof(step));
}

void Plan::download_parameters(std::vector<float>& parameters, std::vector<float>& state, std::int32_t& step) {
  const std::size_t count = static_cast<std::size_t>(layout_.count());
  parameters.resize(count);
  backend_.copy_to_host(parameters.data(), parameters_, count * sizeof(float));
  if (!optimizer_) return;
  state.resize(count * static_cast<std::size_t>(state_buffers_));
  for (std::int64_t b = 0; b < state_buffers_; ++b)
    backend_.copy_to_host(state.data() + static_cast<std::size_t>(b) * count, state_ + b * region_floats_,
                          count * sizeof(float));
  backend_.copy_to_host(&step, &scalars_->step, sizeof(step));
}

std::vector<float> Plan::download_gradients() {
  require_training("download_gradients");
  std::vector<float> gradients(static_cast<std::size_t>(layout_.count()));
  backend_.copy_to_host(gradients.data(), gradients_, gradients.size() * sizeof(float));
  return gradients;
}

void Plan::snapshot_state() {
  // Parameters and optimizer state are adjacent regions: one copy each way. The step count is not
  // part of it: Sequential keeps it on the host.
  require_training("snapshot_state");
  const std::int64_t floats = (1 + state_buffers_) * region_floats_;
  backend_.copy({parameters_, 1, floats}, {snapshot_, 1, floats});
}

void Plan::restore_state() {
  require_training("restore_state");
  const std::int64_t floats = (1 + state_buffers_) * region_floats_;
  backend_.copy({snapshot_, 1, floats}, {parameters_, 1, floats});
}

void Plan::reserve_best() {
  require_training("reserve_best");
  if (best_.data() == nullptr)
    best_ = Buffer(backend_, static_cast<std::size_t>((1 + state_buffers_) * region_floats_) * sizeof(float));
}

void Plan::keep_best() {
  const std::int64_t floats = (1 + state_buffers_) * region_floats_;
  backend_.copy({parameters_, 1, floats}, {static_cast<float*>(best_.data()), 1, floats});
}

void Plan::restore_best() {
  const std::int64_t floats = (1 + state_buffers_) * region_floats_;
  backend_.copy({static_cast<const float*>(best_.data()), 1, floats}, {parameters_, 1, floats});
}

void Plan::set_lr_scale(float scale) {
  backend_.copy_to_device(&scalars_->lr_scale, &scale, sizeof(scale));
}

void Plan::set_step(std::int32_t step) {
  backend_.copy_to_device(&scalars_->step, &step, sizeof(step));
}

void Plan::bind_training_set(ConstView x, ConstView y, const std::int32_t* indices) {
  train_x_ = x;
  train_y_ = y;
  train_indices_ = indices;
}

void Plan::bind_row_weights(ConstView weights) {
  if (weights.data != nullptr && (weights.cols != 1 || weights.rows != train_x_.rows))
    throw Error(fmt::format("bind_row_weights: ({}, {}) weights for {} training rows", weights.rows, weights.cols,
                            train_x_.rows));
  train_weights_ = weights;
}

void Plan::reset_epoch(std::int64_t epoch) {
  backend_.fill({loss_sums_, 1, 2 * sums_width_}, 0.0f);
  const std::int32_t counters[2] = {0, static_cast<std::int32_t>(epoch)};
  backend_.copy_to_device(cursor_, counters, sizeof(counters));
}

void Plan::check_step(std::int64_t rows, std::int64_t fewest) const {
  require_training("train_step");
  if (rows < fewest || rows > batch_size_)
    throw Error(fmt::format("step of {} rows does not fit the plan's batch size {}", rows, batch_size_));
  if (train_indices_ == nullptr) throw Error("train_step called before bind_training_set");
}

void Plan::train_step(std::int64_t rows, const StepSum& sum) {
  std::visit(overloaded{[&](const LocalGradients&) { local_step(rows); },
                        [&](const HostReduction& host) { host_reduced_step(rows, host); },
                        [&](const DeviceSum& device) { device_summed_step(rows, device); }},
             sum);
}

// Each kind of step is recorded under its own keys: the row count for a local step, keys no row
// count takes for the others.
void Plan::local_step(std::int64_t rows) {
  check_step(rows, 1);
  backend_.run_step(id_, static_cast<std::uint64_t>(rows), [&] { enqueue_train_step(rows); });
}

void Plan::host_reduced_step(std::int64_t rows, const HostReduction& host) {
  check_step(rows, 0);
  if (rows == 0) backend_.fill({gradients_, 1, layout_.trained()}, 0.0f);
  if (spans_batch_) {
    // The statistics' sums come to the host mid-step: unrecorded, each op run as it is enqueued.
    if (!host.sum_statistics)
      throw Error("a plan with layers whose statistics span the batch needs HostReduction::sum_statistics");
    std::vector<float> values;
    const SumOverRanks ranks = [&](float* device_values, std::int64_t count, bool scaled) {
      values.resize(static_cast<std::size_t>(count));
      backend_.copy_to_host(values.data(), device_values, values.size() * sizeof(float));
      host.sum_statistics(values, scaled);
      backend_.copy_to_device(device_values, values.data(), values.size() * sizeof(float));
    };
    if (rows > 0)
      enqueue_gradients(rows, nullptr, &ranks);
    else
      enqueue_sums_without_rows(&ranks, nullptr);
  } else if (rows > 0) {
    backend_.run_step(id_, static_cast<std::uint64_t>(rows), [&] { enqueue_gradients(rows); });
  }
  std::vector<float> gradients = download_gradients();
  host.reduce(gradients);
  backend_.copy_to_device(gradients_, gradients.data(), gradients.size() * sizeof(float));
  backend_.run_step(id_, std::numeric_limits<std::uint64_t>::max(), [&] { enqueue_update(); });
}

void Plan::device_summed_step(std::int64_t rows, const DeviceSum& device) {
  check_step(rows, 0);
  set_sum_factor(device.factor);
  constexpr std::uint64_t kCollectiveStep = std::uint64_t{1} << 62;
  const SumOverRanks ranks = collective_sum(*device.collective);
  backend_.run_step(id_, kCollectiveStep | (device.shape & (kCollectiveStep - 1)), [&] {
    if (rows > 0) {
      enqueue_gradients(rows, device.collective, &ranks);
    } else {  // this rank has no rows left (sharded data): it adds zeros, in the same sums
      backend_.fill({gradients_, 1, layout_.trained()}, 0.0f);
      enqueue_sums_without_rows(&ranks, device.collective);
    }
    device.collective->finish();
    enqueue_update();
  });
}

void Plan::set_sum_factor(float factor) {
  // The factor changes only at an epoch's last (shorter) batch: written when it does.
  if (factor == sum_factor_value_) return;
  backend_.copy_to_device(sum_factor_, &factor, sizeof(factor));
  sum_factor_value_ = factor;
}

float* Plan::sum_bucket_after(std::size_t l, float* bucket_end, DeviceCollective& collective) {
  float* first = slots_[l].gradients;
  if (first == nullptr) return bucket_end;
  if (l > first_with_parameters_ && bucket_end - first < bucket_floats_) return bucket_end;
  collective.start_scaled_sum(first, bucket_end - first, sum_factor_);
  return first;
}

SumOverRanks Plan::collective_sum(DeviceCollective& collective) {
  return [this, &collective](float* values, std::int64_t count, bool scaled) {
    collective.start_scaled_sum(values, count, scaled ? sum_factor_ : sum_factor_ + 1);
    collective.finish();  // the layer goes on with the totals
  };
}

void Plan::enqueue_sums_without_rows(const SumOverRanks* ranks, DeviceCollective* collective) {
  const layer_part::Pass pass{backend_, 0, true, cursor_, ranks};
  std::vector<ConstView> inputs(layers_.size());
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    inputs[l] = ConstView{x_batch_, 0, slots_[l].in};
    if (slots_[l].scratch != nullptr) layer_part::forward(layers_[l], slots_[l], pass, inputs[l]);
  }
  float* bucket_end = gradients_ + layout_.trained();
  for (std::size_t l = layers_.size(); l-- > 0;) {
    if (slots_[l].scratch != nullptr) {
      const View dy{gradient_buffers_[0], 0, slots_[l].out};
      layer_part::backward(layers_[l], slots_[l], pass, inputs[l], dy, dy, false, std::nullopt, std::nullopt);
    }
    if (collective != nullptr) bucket_end = sum_bucket_after(l, bucket_end, *collective);
  }
}

void Plan::warm_up(DeviceCollective& collective) {
  require_training("warm_up");
  set_sum_factor(0.0f);
  // Every sum a step makes, of its sizes, outside a recording.
  const SumOverRanks ranks = collective_sum(collective);
  enqueue_sums_without_rows(&ranks, &collective);
  collective.finish();
  backend_.synchronize();
}

ConstView Plan::forward(ConstView input, bool training) {
  const std::int64_t rows = input.rows;
  if (rows > batch_size_ || input.cols != input_width_)
    throw Error(fmt::format("forward input ({}, {}) does not fit the plan ({}, {})", input.rows, input.cols,
                            batch_size_, input_width_));
  const layer_part::Pass pass{backend_, rows, training, cursor_};
  ConstView activation = input;
  for (std::size_t l = 0; l < layers_.size(); ++l)
    activation = layer_part::forward(layers_[l], slots_[l], pass, activation);
  return activation;
}

void Plan::enqueue_train_step(std::int64_t rows) {
  enqueue_gradients(rows, nullptr, nullptr, sums_rows_exactly_);
  enqueue_update();
}

void Plan::enqueue_gradients(std::int64_t rows, DeviceCollective* collective, const SumOverRanks* ranks, bool exact) {
  const std::int64_t output_width = slots_.back().out;
  View x{x_batch_, rows, input_width_};
  View y{y_batch_, rows, loss_part::target_width(loss_, output_width)};
  const View weights{weight_batch_, rows, 1};
  const bool weighted = train_weights_.data != nullptr;
  if (weighted)
    backend_.gather_rows(train_weights_, train_indices_, cursor_, weights);  // before the cursor moves
  else if (exact)
    backend_.fill(weights, 1.0f);
  backend_.gather_batch(train_x_, train_y_, train_indices_, cursor_, x, y);

  // Forward, keeping each layer's input for backward.
  layer_part::Pass pass{backend_, rows, true, cursor_, ranks};
  if (exact) pass.row_weights = weights;
  std::vector<ConstView>& inputs = layer_inputs_;
  ConstView prediction = x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    inputs[l] = prediction;
    prediction = layer_part::forward(layers_[l], slots_[l], pass, prediction);
  }

  // Backward, last layer first. gradient holds dL/d(output of layer l) on entry to iteration l,
  // already through that layer's ReLU when folded (into the input gradient of the layer above).
  std::size_t ping = 0;
  View gradient{gradient_buffers_[ping], rows, output_width};
  if (exact) {
    // Each row's own loss gradient (the loss of a batch of that row alone), so that a row's
    // gradient does not depend on the batch; the layers weigh the rows in their sums.
    for (std::int64_t r = 0; r < rows; ++r)
      loss_part::enqueue(backend_, loss_, prediction.row_range(r, 1), ConstView(y).row_range(r, 1), loss_sums_,
                         gradient.row_range(r, 1));
  } else {
    loss_part::enqueue(backend_, loss_, prediction, y, loss_sums_, gradient);
    if (weighted) backend_.scale_rows(weights, gradient);
  }
  bool folded = false;
  // With a collective, the gradients are summed in buckets of whole layers as backward produces
  // them (as PyTorch DDP's buckets), so that a bucket's sum runs beside the backward of the layers
  // below it. The layers' parameters are contiguous, last layer last: a bucket is one range.
  float* bucket_end = gradients_ + layout_.trained();
  for (std::size_t l = layers_.size(); l-- > 0;) {
    const layer_part::Slots& slots = slots_[l];
    const ConstView output = l + 1 < layers_.size() ? inputs[l + 1] : prediction;
    std::optional<View> input_gradient;
    std::optional<ConstView> relu_below;
    if (l > 0) {  // the input gradient goes to the other buffer (the first layer needs none)
      ping ^= 1;
      input_gradient = View{gradient_buffers_[ping], rows, slots.in};
      if (layer_part::folds_relu(layers_[l - 1])) relu_below = inputs[l];
    }
    folded =
        layer_part::backward(layers_[l], slots, pass, inputs[l], output, gradient, folded, relu_below, input_gradient);
    if (input_gradient) gradient = *input_gradient;
    if (collective != nullptr) bucket_end = sum_bucket_after(l, bucket_end, *collective);
  }
}

void Plan::enqueue_update() {
  // The trained parameters alone: the layers' state (after them) is forward's to update.
  if (clip_norm_ > 0.0f) backend_.clip_by_norm(gradients_, layout_.trained(), clip_norm_);
  optimizer_part::enqueue_update(backend_, *optimizer_, parameters_, gradients_, state_, region_floats_,
                                 layout_.trained(), scalars_);
}

void Plan::accumulate_validation(ConstView prediction, ConstView target) {
  loss_part::enqueue(backend_, loss_, prediction, target, loss_sums_ + sums_width_, std::nullopt);
}

Plan::LossSums Plan::read_loss_sums() {
  const auto width = static_cast<std::size_t>(sums_width_);
  std::vector<float> both(2 * width);
  backend_.copy_to_host(both.data(), loss_sums_, both.size() * sizeof(float));
  return {{both.begin(), both.begin() + static_cast<std::ptrdiff_t>(width)},
          {both.begin() + static_cast<std::ptrdiff_t>(width), both.end()}};
}

}  // namespace ember
