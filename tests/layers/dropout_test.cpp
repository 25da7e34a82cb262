// Dropout: the example the tests over every kind use, its float64 form, and its formula tests.
#include <gtest/gtest.h>

#include "dropout_math.hpp"
#include "ember/ember.hpp"
#include "layer_part.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// The mask of a plan of seed 0's first training step (counters: the cursor after the batch's rows,
// epoch 0), kept elements scaled by 1 / (1 - rate).
EMBER_LAYER_EXAMPLE(3, Dropout(0.35f),
                    [](const Dropout& dropout, Rows& rows, const double*, const FormContext& at) -> std::size_t {
                      const std::int32_t counters[2] = {static_cast<std::int32_t>(at.rows), 0};
                      const dropout_math::Mask mask =
                          dropout_math::mask_for(layer_part::layer_seed(0, at.layer), dropout.rate);
                      const auto in = static_cast<std::uint64_t>(rows.front().size());
                      for (std::size_t r = 0; r < rows.size(); ++r)
                        for (std::uint64_t i = 0; i < in; ++i) {
                          const std::uint64_t index = r * in + i;
                          const bool kept =
                              (dropout_math::kept_bits(mask, counters, index / 4) >> (index % 4) & 1u) != 0;
                          rows[r][i] *= kept ? static_cast<double>(mask.scale) : 0.0;
                        }
                      return 0;
                    });

/// Regression data: y = a sum of x's columns with noise.
std::pair<Matrix, Matrix> data(std::int64_t rows) {
  const Matrix x = random_matrix(rows, 6, 8);
  Matrix y(rows, 1);
  for (std::int64_t r = 0; r < rows; ++r) y(r, 0) = x(r, 0) - 2 * x(r, 3) + x(r, 4) * x(r, 5);
  return {x, y};
}

/// model's Dense layers' weights set into other, whose Dense layers are the same in order.
void copy_dense_weights(const Sequential& model, Sequential& other) {
  std::size_t o = 0;
  for (std::size_t l = 0; l < model.layers().size(); ++l) {
    if (!std::holds_alternative<Dense>(model.layers()[l])) continue;
    while (!std::holds_alternative<Dense>(other.layers()[o])) ++o;
    const ConstView w = model.weight(l), b = model.bias(l);
    other.set_weight(o, Matrix(w.rows, w.cols, std::span<const float>(w.data, w.size())));
    other.set_bias(o, Matrix(1, b.cols, std::span<const float>(b.data, b.size())));
    ++o;
  }
}

TEST(LayerKind, DropoutPredictsAsTheIdentity) {
  const auto [x, y] = data(200);
  Sequential with({Dense(16, Activation::relu), Dropout(0.5f), Dense(16, Activation::relu), Dropout(0.2f), Dense(1)},
                  3);
  with.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  with.fit(x, y, {.epochs = 3, .batch_size = 32});
  Sequential without({Dense(16, Activation::relu), Dense(16, Activation::relu), Dense(1)});
  without.compile({.device = Device::cpu});
  without.fit(x, y, {.epochs = 0});  // fits the scaler, on the same rows: the same statistics
  copy_dense_weights(with, without);
  EXPECT_EQ(with.predict(x), without.predict(x));
  EXPECT_EQ(with.predict(x), with.predict(x));  // no draw at all when predicting
}

TEST(LayerKind, DropoutAtRateZeroTrainsAsWithoutItAndAtOtherRatesNot) {
  const auto [x, y] = data(150);
  const auto train = [&](const std::vector<Layer>& layers, const Sequential* start) {
    Sequential model(layers, 5);
    model.compile({.optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .device = Device::cpu});
    model.build(x.cols());
    if (start != nullptr) copy_dense_weights(*start, model);
    model.fit(x, y, {.epochs = 3, .batch_size = 16});
    return model;
  };
  Sequential plain({Dense(12, Activation::relu), Dense(12, Activation::relu), Dense(1)}, 5);
  plain.build(x.cols());
  const Sequential reference = train(plain.layers(), &plain);
  const Sequential zero =
      train({Dense(12, Activation::relu), Dropout(0.0f), Dense(12, Activation::relu), Dropout(0.0f), Dense(1)}, &plain);
  const Sequential half =
      train({Dense(12, Activation::relu), Dropout(0.5f), Dense(12, Activation::relu), Dropout(0.0f), Dense(1)}, &plain);
  EXPECT_EQ(zero.parameters(), reference.parameters());
  EXPECT_NE(half.parameters(), reference.parameters());
  // Another seed draws other masks.
  Sequential other({Dense(12, Activation::relu), Dropout(0.5f), Dense(12, Activation::relu), Dropout(0.0f), Dense(1)},
                   6);
  other.compile({.optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .device = Device::cpu});
  other.build(x.cols());
  copy_dense_weights(plain, other);
  other.fit(x, y, {.epochs = 3, .batch_size = 16});
  EXPECT_NE(other.parameters(), half.parameters());
}

}  // namespace
}  // namespace ember::testing
