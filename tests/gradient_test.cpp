// A whole MLP's gradients, as the plan's backward schedule computes them (fused ops included), against
// central finite differences of a float64 re-implementation of its loss, on the reference and the
// fast CPU path.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "activation_math.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/fast_cpu_backend.hpp"
#include "plan.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

/// MSE of a model with float64 arithmetic, layer by layer over the batch, each layer by its kind's
/// float64 form (tests/layers/NAME_test.cpp); parameters in the plan's layout (a BatchNorm's running
/// figures after every trained tensor, unread: training normalizes by the batch's).
double reference_loss(const std::vector<Layer>& layers, const std::vector<double>& parameters, const Matrix& x,
                      const Matrix& y) {
  const auto rows = static_cast<std::size_t>(x.rows());
  testing::Rows batch(rows);
  for (std::size_t r = 0; r < rows; ++r) batch[r].assign(x.data() + r * x.cols(), x.data() + (r + 1) * x.cols());
  std::size_t offset = 0;
  for (std::size_t l = 0; l < layers.size(); ++l)
    offset += testing::example_of(layers[l]).float64(layers[l], batch, parameters.data() + offset,
                                                     {.layer = l, .rows = x.rows()});
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
    const double up = reference_loss(layers, point, x, y);
    point[i] = original - step;
    const double down = reference_loss(layers, point, x, y);
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
  EXPECT_NEAR(squared / static_cast<double>(rows * width), reference_loss(layers, point, x, y), 1e-5);
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

// Every kind of layer (its float64 form registered by its tests/layers/NAME_test.cpp; a kind without one fails here).
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
