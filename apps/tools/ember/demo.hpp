#pragma once
// The built-in demonstrations behind `ember demo`, also used by the tests.
#include <cstdint>

#include "ember/backend.hpp"
#include "ember/data.hpp"

namespace ember::demo {

/// Keras' seed example: Dense(1), SGD lr 0.01, MSE, x = y = [1, 2, 3, 4], 1000 epochs, no
/// normalization. Returns predict([[5]]), which should be close to 5.
double seed_example(Device device = Device::automatic);

/// A deterministic synthetic house-price table (docs/demo.md gives the formula). Columns:
/// area_m2, rooms, age_years, distance_km, quality, then price (thousands).
Dataset house_prices(std::int64_t rows, std::uint64_t seed);

struct HousePriceResult {
  double test_r2 = 0;
  double test_mae = 0;
  std::int64_t train_rows = 0, test_rows = 0;
  std::int64_t epochs = 0;
};
/// Trains an MLP (64, 64, relu) on 4000 generated rows, 20% held out; returns the held-out figures.
HousePriceResult house_price_mlp(Device device = Device::automatic);

/// Three interleaved spirals in the plane, rows points in all (a third each, with noise): x is
/// (rows, 2), y (rows, 1) holds the arm's index 0, 1 or 2. Not separable by a linear model.
Dataset spirals(std::int64_t rows, std::uint64_t seed);

struct ClassificationResult {
  double test_accuracy = 0;
  std::int64_t train_rows = 0, test_rows = 0;
  std::int64_t epochs = 0;
};
/// Trains an MLP (64, 64, relu; softmax cross-entropy, Adam) on 1500 spiral points, 20% held out;
/// returns the held-out accuracy.
ClassificationResult spiral_classifier(Device device = Device::automatic);

}  // namespace ember::demo
