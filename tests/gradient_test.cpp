// A whole MLP's gradients, as the plan's backward schedule computes them (fused ops included), against
// central finite differences of a float64 re-implementation of its loss, on the reference and the
// fast CPU path.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "activation_math.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/fast_cpu_backend.hpp"
#include "dropout_math.hpp"
#include "plan.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

/// MSE of an MLP with float64 arithmetic, layer by layer over the batch; parameters in the plan's
/// layout (a LayerNorm's or BatchNorm's scale, then its shift; an Embedding's table; a BatchNorm's
/// running figures after every trained tensor, unread: training normalizes by the batch's). A
/// Dropout layer applies the mask of a plan of seed 0's first training step (counters: the cursor
/// after rows rows, epoch 0).
double reference_loss(const std::vector<Layer>& layers, std::int64_t inputs, const std::vector<double>& parameters,
                      const Matrix& x, const Matrix& y) {
  const std::int32_t counters[2] = {static_cast<std::int32_t>(x.rows()), 0};
  const auto rows = static_cast<std::size_t>(x.rows());
  std::vector<std::vector<double>> batch(rows);
  for (std::size_t r = 0; r < rows; ++r) batch[r].assign(x.data() + r * x.cols(), x.data() + (r + 1) * x.cols());
  std::size_t offset = 0;
  std::int64_t in = inputs;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto width = static_cast<std::size_t>(in);
    if (const auto* norm = std::get_if<BatchNorm>(&layers[l])) {
      for (std::size_t k = 0; k < width; ++k) {
        double mean = 0.0, variance = 0.0;
        for (const std::vector<double>& row : batch) mean += row[k] / static_cast<double>(rows);
        for (const std::vector<double>& row : batch)
          variance += (row[k] - mean) * (row[k] - mean) / static_cast<double>(rows);
        for (std::vector<double>& row : batch)
          row[k] = (row[k] - mean) / std::sqrt(variance + norm->epsilon) * parameters[offset + k] +
                   parameters[offset + width + k];
      }
      offset += 2 * width;
      continue;
    }
    std::int64_t out_width = in;
    for (std::size_t r = 0; r < rows; ++r) {
      std::vector<double>& activation = batch[r];
      if (const auto* dropout = std::get_if<Dropout>(&layers[l])) {
        const dropout_math::Mask mask = dropout_math::mask_for(layer_part::layer_seed(0, l), dropout->rate);
        for (std::int64_t i = 0; i < in; ++i) {
          const auto index = static_cast<std::uint64_t>(static_cast<std::int64_t>(r) * in + i);
          const bool kept = (dropout_math::kept_bits(mask, counters, index / 4) >> (index % 4) & 1u) != 0;
          activation[static_cast<std::size_t>(i)] *= kept ? static_cast<double>(mask.scale) : 0.0;
        }
      } else if (const auto* norm = std::get_if<LayerNorm>(&layers[l])) {
        double mean = 0.0, variance = 0.0;
        for (const double v : activation) mean += v / static_cast<double>(in);
        for (const double v : activation) variance += (v - mean) * (v - mean) / static_cast<double>(in);
        for (std::size_t k = 0; k < width; ++k)
          activation[k] = (activation[k] - mean) / std::sqrt(variance + norm->epsilon) * parameters[offset + k] +
                          parameters[offset + width + k];
      } else if (const auto* rms = std::get_if<RMSNorm>(&layers[l])) {
        double squares = 0.0;
        for (const double v : activation) squares += v * v / static_cast<double>(in);
        for (std::size_t k = 0; k < width; ++k)
          activation[k] = activation[k] / std::sqrt(squares + rms->epsilon) * parameters[offset + k];
      } else if (const auto* embedding = std::get_if<Embedding>(&layers[l])) {
        const std::int64_t columns = embedding->columns == 0 ? in : embedding->columns, passed = in - columns;
        std::vector<double> out(activation.begin(), activation.begin() + passed);
        for (std::int64_t j = 0; j < columns; ++j) {
          const auto row = static_cast<std::size_t>(activation[static_cast<std::size_t>(passed + j)]);
          for (std::int64_t d = 0; d < embedding->output_dim; ++d)
            out.push_back(parameters[offset + row * static_cast<std::size_t>(embedding->output_dim) +
                                     static_cast<std::size_t>(d)]);
        }
        activation = out;
        out_width = passed + columns * embedding->output_dim;
      } else {
        const Dense& layer = std::get<Dense>(layers[l]);
        std::vector<double> out(static_cast<std::size_t>(layer.units));
        for (std::int64_t o = 0; o < layer.units; ++o) {
          double sum = parameters[offset + static_cast<std::size_t>(layer.units * in + o)];  // bias
          for (std::int64_t i = 0; i < in; ++i)
            sum += parameters[offset + static_cast<std::size_t>(o * in + i)] * activation[static_cast<std::size_t>(i)];
          activations::visit(layer.activation,
                             [&](auto part) { out[static_cast<std::size_t>(o)] = decltype(part)::forward(sum); });
        }
        activation = out;
        out_width = layer.units;
      }
    }
    if (std::holds_alternative<LayerNorm>(layers[l])) offset += 2 * width;
    if (std::holds_alternative<RMSNorm>(layers[l])) offset += width;
    if (const auto* embedding = std::get_if<Embedding>(&layers[l]))
      offset += static_cast<std::size_t>(embedding->input_dim * embedding->output_dim);
    if (const auto* dense = std::get_if<Dense>(&layers[l]))
      offset += static_cast<std::size_t>(dense->units * in + dense->units);
    in = out_width;
  }
  double total = 0.0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < y.cols(); ++o) {
      const double e = batch[r][static_cast<std::size_t>(o)] - y(static_cast<std::int64_t>(r), o);
      total += e * e;
    }
  return total / static_cast<double>(y.size());
}

/// The plan's gradients on backend against finite differences, for layers on 3 inputs and 7 rows.
void expect_gradients_match(Backend& backend, const std::vector<Layer>& layers) {
  const std::int64_t inputs = 3, rows = 7;
  const std::int64_t outputs = std::get<Dense>(layers.back()).units;
  const Matrix x = testing::random_input(layers, rows, inputs, 11), y = testing::random_matrix(rows, outputs, 12);
  Sequential model(layers, 3);
  model.build(inputs);
  std::vector<float> parameters = model.parameters();
  // Non-zero biases, so their gradients are exercised away from the initial point.
  const Matrix noise = testing::random_matrix(1, model.parameter_count(), 13);
  for (std::size_t i = 0; i < parameters.size(); ++i) parameters[i] += 0.1f * noise.data()[i];

  Plan plan(backend, layers, inputs, rows, SGD{.lr = 1e-3f});
  plan.upload_parameters(parameters);
  const BackendMatrix device_x(backend, x), device_y(backend, y);
  std::vector<std::int32_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  plan.bind_training_set(device_x.view, device_y.view, order.data());
  plan.train_step(rows);
  const std::vector<float> analytic = plan.download_gradients();

  std::vector<double> point(parameters.begin(), parameters.end()), numeric;
  const double step = 1e-6;
  for (std::size_t i = 0; i < point.size(); ++i) {
    const double original = point[i];
    point[i] = original + step;
    const double up = reference_loss(layers, inputs, point, x, y);
    point[i] = original - step;
    const double down = reference_loss(layers, inputs, point, x, y);
    point[i] = original;
    numeric.push_back((up - down) / (2 * step));
  }
  EXPECT_LT(testing::relative_error(analytic.data(), numeric.data(), static_cast<std::int64_t>(numeric.size())),
            testing::kGradientTolerance);
  // And the loss the step accumulated is the loss at this point.
  const std::vector<float> sums = plan.read_loss_sums().train;
  const std::size_t width = sums.size() / 3;  // the loss per output comes first
  double squared = 0.0;
  for (std::size_t c = 0; c < width; ++c) squared += sums[c];
  EXPECT_NEAR(squared / static_cast<double>(rows * width), reference_loss(layers, inputs, point, x, y), 1e-5);
}

const std::vector<Layer> kReluMlp{Dense(5, Activation::relu), Dense(4, Activation::relu), Dense(2)};
// A linear hidden layer (no ReLU to fold into the input gradient above it) and a ReLU output
// (its ReLU backward is the one the backward pass applies on its own).
const std::vector<Layer> kMixedMlp{Dense(5, Activation::relu), Dense(4), Dense(3, Activation::relu),
                                   Dense(2, Activation::relu)};

TEST(Gradients, WholeMlpMatchesFiniteDifferences) {
  CpuBackend reference;
  expect_gradients_match(reference, kReluMlp);
}

TEST(Gradients, MixedActivationsMatchFiniteDifferences) {
  CpuBackend reference;
  expect_gradients_match(reference, kMixedMlp);
}

/// Every activation part as a hidden layer, between ReLU layers (so its output is folded into no
/// ReLU mask) and as the output layer: the plan keeps the pre-activation where backward reads it.
std::vector<std::vector<Layer>> every_activation_mlp() {
  std::vector<std::vector<Layer>> mlps;
  activations::for_each_part([&](auto part) {
    const Activation kind = decltype(part)::kind;
    mlps.push_back({Dense(5, Activation::relu), Dense(4, kind), Dense(3, kind), Dense(2, kind)});
  });
  return mlps;
}

TEST(Gradients, FastCpuPathMatchesFiniteDifferences) {
  FastCpuBackend fast;
  expect_gradients_match(fast, kReluMlp);
  expect_gradients_match(fast, kMixedMlp);
}

TEST(Gradients, EveryActivationMatchesFiniteDifferences) {
  CpuBackend reference;
  FastCpuBackend fast;
  for (const std::vector<Layer>& layers : every_activation_mlp()) {
    SCOPED_TRACE(describe(layers[1]));
    expect_gradients_match(reference, layers);
    expect_gradients_match(fast, layers);
  }
}

// Dropout between layers: its backward applies the forward's mask to the gradient, and the ReLU
// below it runs its own backward (no layer above folds it). Also as the first layer.
TEST(Gradients, DropoutMatchesFiniteDifferences) {
  CpuBackend reference;
  FastCpuBackend fast;
  const std::vector<Layer> layers{
      Dropout(0.3f), Dense(6, Activation::relu), Dropout(0.4f), Dense(5, Activation::gelu), Dropout(0.2f), Dense(2)};
  expect_gradients_match(reference, layers);
  expect_gradients_match(fast, layers);
}

// Every kind of layer (its float64 form in reference_loss above; a kind without one fails here).
TEST(Gradients, EveryLayerKindMatchesFiniteDifferences) {
  CpuBackend reference;
  FastCpuBackend fast;
  std::vector<Layer> layers = testing::one_layer_of_each_kind();
  layers.push_back(Dense(2));
  expect_gradients_match(reference, layers);
  expect_gradients_match(fast, layers);
}

// An Embedding over every input column and over the last two (the first passing through), with a
// table that the batch's indices cover partly (the rest has zero gradients), before ReLU and GELU.
TEST(Gradients, EmbeddingMatchesFiniteDifferences) {
  CpuBackend reference;
  FastCpuBackend fast;
  for (const Embedding& embedding : {Embedding(4, 2), Embedding(9, 3, 2)}) {
    const std::vector<Layer> layers{embedding, Dense(6, Activation::relu), Dense(5, Activation::gelu), Dense(2)};
    expect_gradients_match(reference, layers);
    expect_gradients_match(fast, layers);
  }
}

// LayerNorm first (on the inputs), between a ReLU layer and a GELU one (the ReLU below runs its own
// backward), after Dropout and before the output; a large epsilon too. The parameters start away
// from LayerNorm's ones and zeros (the noise above), so its scale matters in the input gradient.
TEST(Gradients, LayerNormMatchesFiniteDifferences) {
  CpuBackend reference;
  FastCpuBackend fast;
  const std::vector<Layer> layers{
      LayerNorm(), Dense(6, Activation::relu), LayerNorm(0.5f), Dense(5, Activation::gelu), Dropout(0.2f), LayerNorm(),
      Dense(2)};
  expect_gradients_match(reference, layers);
  expect_gradients_match(fast, layers);
}

// BatchNorm on the inputs (off centre: the batch's mean matters), after a ReLU layer and after
// Dropout, with a large epsilon too; the running figures' gradients are zero (training reads the
// batch's statistics alone), as finite differences find.
TEST(Gradients, BatchNormMatchesFiniteDifferences) {
  CpuBackend reference;
  FastCpuBackend fast;
  const std::vector<Layer> layers{BatchNorm(),
                                  Dense(6, Activation::relu),
                                  BatchNorm(0.3f, 0.5f),
                                  Dense(5, Activation::gelu),
                                  Dropout(0.2f),
                                  BatchNorm(),
                                  Dense(2)};
  expect_gradients_match(reference, layers);
  expect_gradients_match(fast, layers);
}

}  // namespace
}  // namespace ember
