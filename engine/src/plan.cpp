#include "plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <optional>

#include "ember/error.hpp"

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

}  // namespace

BackendMatrix::BackendMatrix(Backend& backend, const Matrix& host)
    : buffer(backend, static_cast<std::size_t>(std::max<std::int64_t>(host.size(), 1)) * sizeof(float)) {
  backend.copy_to_device(buffer.data(), host.data(), static_cast<std::size_t>(host.size()) * sizeof(float));
  view = {static_cast<const float*>(buffer.data()), host.rows(), host.cols()};
}

Plan::Plan(Backend& backend, const std::vector<Dense>& layers, std::int64_t input_width, std::int64_t batch_size)
    : backend_(backend), id_(next_plan_id()), batch_size_(batch_size), input_width_(input_width) {
  if (batch_size <= 0) throw InputError(fmt::format("batch size must be positive, got {}", batch_size));
  // First pass: offsets in floats from the arena start; second pass turns them into pointers.
  std::int64_t parameter_floats = 0;
  std::int64_t widest = 1;
  std::int64_t in = input_width;
  for (const Dense& layer : layers) {
    parameter_floats += layer.units * in + layer.units;
    widest = std::max(widest, layer.units);
    in = layer.units;
  }
  parameter_count_ = parameter_floats;
  const std::int64_t output_width = layers.back().units;
  const std::int64_t region = align_up(parameter_floats);
  region_floats_ = region;
  std::int64_t offset = 5 * region;
  const std::int64_t x_offset = offset;
  offset += align_up(batch_size * input_width);
  const std::int64_t y_offset = offset;
  offset += align_up(batch_size * output_width);
  std::vector<std::int64_t> output_offsets;
  for (const Dense& layer : layers) {
    output_offsets.push_back(offset);
    offset += align_up(batch_size * layer.units);
  }
  const std::array<std::int64_t, 2> gradient_offsets{offset, offset + align_up(batch_size * widest)};
  offset += 2 * align_up(batch_size * widest);
  const std::int64_t sums_offset = offset;
  offset += align_up(4 * output_width);
  const std::int64_t cursor_offset = offset;
  offset += kAlignFloats;

  arena_ = Buffer(backend_, static_cast<std::size_t>(offset) * sizeof(float));
  float* base = static_cast<float*>(arena_.data());
  parameters_ = base;
  velocity_ = base + region;
  gradients_ = base + 2 * region;
  snapshot_ = base + 3 * region;
  x_batch_ = base + x_offset;
  y_batch_ = base + y_offset;
  gradient_buffers_ = {base + gradient_offsets[0], base + gradient_offsets[1]};
  error_sums_ = base + sums_offset;
  cursor_ = reinterpret_cast<std::int32_t*>(base + cursor_offset);

  std::int64_t parameter_offset = 0;
  in = input_width;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    LayerSlots slots;
    slots.in = in;
    slots.out = layers[l].units;
    slots.activation = layers[l].activation;
    slots.weight = parameters_ + parameter_offset;
    slots.weight_gradient = gradients_ + parameter_offset;
    parameter_offset += slots.out * slots.in;
    slots.bias = parameters_ + parameter_offset;
    slots.bias_gradient = gradients_ + parameter_offset;
    parameter_offset += slots.out;
    slots.output = base + output_offsets[l];
    layers_.push_back(slots);
    in = slots.out;
  }
  backend_.fill({parameters_, 1, 2 * region}, 0.0f);  // the padding too: the snapshot copies it
  reset_epoch();
}

void Plan::upload_parameters(const std::vector<float>& parameters, const std::vector<float>& velocity) {
  const std::size_t bytes = static_cast<std::size_t>(parameter_count_) * sizeof(float);
  backend_.copy_to_device(parameters_, parameters.data(), bytes);
  backend_.copy_to_device(velocity_, velocity.data(), bytes);
}

void Plan::download_parameters(std::vector<float>& parameters, std::vector<float>& velocity) {
  const std::size_t bytes = static_cast<std::size_t>(parameter_count_) * sizeof(float);
  parameters.resize(static_cast<std::size_t>(parameter_count_));
  velocity.resize(static_cast<std::size_t>(parameter_count_));
  backend_.copy_to_host(parameters.data(), parameters_, bytes);
  backend_.copy_to_host(velocity.data(), velocity_, bytes);
}

std::vector<float> Plan::download_gradients() {
  std::vector<float> gradients(static_cast<std::size_t>(parameter_count_));
  backend_.copy_to_host(gradients.data(), gradients_, gradients.size() * sizeof(float));
  return gradients;
}

void Plan::snapshot_state() {
  // Parameters and optimizer state are adjacent regions: one copy each way.
  backend_.copy({parameters_, 1, 2 * region_floats_}, {snapshot_, 1, 2 * region_floats_});
}

void Plan::restore_state() {
  backend_.copy({snapshot_, 1, 2 * region_floats_}, {parameters_, 1, 2 * region_floats_});
}

void Plan::bind_training_set(ConstView x, ConstView y, const std::int32_t* indices) {
  train_x_ = x;
  train_y_ = y;
  train_indices_ = indices;
}

void Plan::reset_epoch() {
  backend_.fill({error_sums_, 1, 4 * layers_.back().out}, 0.0f);
  const std::int32_t zero = 0;
  backend_.copy_to_device(cursor_, &zero, sizeof(zero));
}

void Plan::train_step(std::int64_t rows, const SgdParams& sgd) {
  if (rows <= 0 || rows > batch_size_)
    throw Error(fmt::format("step of {} rows does not fit the plan's batch size {}", rows, batch_size_));
  if (train_indices_ == nullptr) throw Error("train_step called before bind_training_set");
  backend_.run_step(id_, static_cast<std::uint64_t>(rows), [&] { enqueue_train_step(rows, sgd); });
}

ConstView Plan::forward(ConstView input) {
  const std::int64_t rows = input.rows;
  if (rows > batch_size_ || input.cols != input_width_)
    throw Error(fmt::format("forward input ({}, {}) does not fit the plan ({}, {})", input.rows, input.cols,
                            batch_size_, input_width_));
  ConstView activation = input;
  for (const LayerSlots& layer : layers_) {
    View output{layer.output, rows, layer.out};
    // output (rows, out) = act(activation (rows, in) @ weight (out, in)^T + bias)
    backend_.dense_forward(activation, ConstView{layer.weight, layer.out, layer.in},
                           ConstView{layer.bias, 1, layer.out}, layer.activation == Activation::relu, output);
    activation = output;
  }
  return activation;
}

void Plan::enqueue_train_step(std::int64_t rows, const SgdParams& sgd) {
  const std::int64_t output_width = layers_.back().out;
  View x{x_batch_, rows, input_width_};
  View y{y_batch_, rows, output_width};
  backend_.gather_batch(train_x_, train_y_, train_indices_, cursor_, x, y);

  ConstView prediction = forward(x);

  // Backward, last layer first. gradient holds dL/d(output of layer l) on entry to iteration l,
  // already through that layer's ReLU when masked is set (folded into the input-gradient matmul).
  std::size_t ping = 0;
  View gradient{gradient_buffers_[ping], rows, output_width};
  backend_.mse_loss_and_gradient(prediction, y, error_sums_, gradient);
  bool masked = false;
  for (std::size_t l = layers_.size(); l-- > 0;) {
    const LayerSlots& layer = layers_[l];
    if (layer.activation == Activation::relu && !masked)
      backend_.relu_backward(gradient, ConstView{layer.output, rows, layer.out}, gradient);
    ConstView input = l == 0 ? ConstView(x) : ConstView{layers_[l - 1].output, rows, layer.in};
    // weight_gradient (out, in) = gradient (rows, out)^T @ input (rows, in), bias_gradient its
    // column sums; below the first layer, the input gradient (rows, in) = gradient @ weight
    // (out, in), through layer l - 1's ReLU.
    std::optional<View> input_gradient;
    if (l > 0) {
      ping ^= 1;
      input_gradient = View{gradient_buffers_[ping], rows, layer.in};
      masked = layers_[l - 1].activation == Activation::relu;
    }
    backend_.dense_backward(gradient, input, ConstView{layer.weight, layer.out, layer.in},
                            l > 0 && masked ? std::optional<ConstView>(input) : std::nullopt,
                            View{layer.weight_gradient, layer.out, layer.in}, View{layer.bias_gradient, 1, layer.out},
                            input_gradient);
    if (input_gradient) gradient = *input_gradient;
  }
  backend_.sgd_update(parameters_, gradients_, velocity_, parameter_count_, sgd);
}

void Plan::accumulate_validation(ConstView prediction, ConstView target) {
  backend_.mse_loss_and_gradient(prediction, target, error_sums_ + 2 * target.cols, std::nullopt);
}

Plan::ErrorSums Plan::read_error_sums() {
  const std::size_t width = 2 * static_cast<std::size_t>(layers_.back().out);
  std::vector<float> both(2 * width);
  backend_.copy_to_host(both.data(), error_sums_, both.size() * sizeof(float));
  return {{both.begin(), both.begin() + static_cast<std::ptrdiff_t>(width)},
          {both.begin() + static_cast<std::ptrdiff_t>(width), both.end()}};
}

}  // namespace ember
