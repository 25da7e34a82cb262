#include "ember/demo.hpp"

#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "ember/model.hpp"
#include "ember/random.hpp"

namespace ember::demo {
namespace {

/// Row indices [0, first) and [first, rows): a training and a held-out part.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> first_and_rest(std::int64_t rows, std::int64_t first) {
  std::vector<std::int64_t> head(static_cast<std::size_t>(first)), tail(static_cast<std::size_t>(rows - first));
  std::iota(head.begin(), head.end(), 0);
  std::iota(tail.begin(), tail.end(), first);
  return {head, tail};
}

}  // namespace

double seed_example(Device device) {
  Sequential model{Dense(1)};
  model.compile({.optimizer = SGD{.lr = 0.01f}, .loss = MeanSquaredError{}, .device = device});
  const Matrix x{{1}, {2}, {3}, {4}};
  model.fit(x, x, {.epochs = 1000, .normalize = false});
  return model.predict(Matrix{{5}})(0, 0);
}

Dataset house_prices(std::int64_t rows, std::uint64_t seed) {
  Random random(seed);
  Dataset data;
  data.feature_names = {"area_m2", "rooms", "age_years", "distance_km", "quality"};
  data.target_names = {"price"};
  data.x = Matrix(rows, 5);
  data.y = Matrix(rows, 1);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double area = 30.0 + 220.0 * random.uniform();
    const double rooms = std::floor(1.0 + area / 45.0 + 1.5 * random.uniform());
    const double age = 100.0 * random.uniform();
    const double distance = 0.5 + 29.5 * random.uniform();
    const double quality = std::floor(1.0 + 10.0 * random.uniform());
    // price in thousands: linear in area, diminishing in rooms, U-shaped in age (old houses are
    // "historic"), a city-centre premium decaying with distance, convex in quality, plus noise.
    const double price = 40.0 + 2.2 * area + 30.0 * std::sqrt(rooms) - 2.0 * age + 0.018 * age * age +
                         180.0 * std::exp(-distance / 6.0) + 3.0 * std::pow(quality, 1.5) + 15.0 * random.normal();
    data.x(r, 0) = static_cast<float>(area);
    data.x(r, 1) = static_cast<float>(rooms);
    data.x(r, 2) = static_cast<float>(age);
    data.x(r, 3) = static_cast<float>(distance);
    data.x(r, 4) = static_cast<float>(quality);
    data.y(r, 0) = static_cast<float>(price);
  }
  return data;
}

HousePriceResult house_price_mlp(Device device) {
  const Dataset data = house_prices(4000, 7);
  HousePriceResult result;
  result.train_rows = 3200;
  result.test_rows = data.x.rows() - result.train_rows;
  result.epochs = 40;
  const auto [train, test] = first_and_rest(data.x.rows(), result.train_rows);

  Sequential model{{Dense(64, Activation::relu), Dense(64, Activation::relu), Dense(1)}, 42};
  model.compile({.optimizer = SGD{.lr = 0.01f, .momentum = 0.9f}, .loss = MeanSquaredError{}, .device = device});
  model.fit(data.x.take_rows(train), data.y.take_rows(train), {.epochs = result.epochs, .batch_size = 32});
  const Metrics metrics = model.evaluate(data.x.take_rows(test), data.y.take_rows(test));
  result.test_r2 = metrics.r2;
  result.test_mae = metrics.mae;
  return result;
}

Dataset spirals(std::int64_t rows, std::uint64_t seed) {
  Random random(seed);
  Dataset data;
  data.feature_names = {"x", "y"};
  data.target_names = {"arm"};
  data.x = Matrix(rows, 2);
  data.y = Matrix(rows, 1);
  constexpr double kPi = 3.14159265358979323846;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t arm = r % 3;
    const double t = random.uniform();  // along the arm, 0 at the centre
    const double angle = 3.5 * kPi * t + 2.0 * kPi * static_cast<double>(arm) / 3.0;
    const double radius = 0.1 + t;
    data.x(r, 0) = static_cast<float>(radius * std::cos(angle) + 0.03 * random.normal());
    data.x(r, 1) = static_cast<float>(radius * std::sin(angle) + 0.03 * random.normal());
    data.y(r, 0) = static_cast<float>(arm);
  }
  return data;
}

ClassificationResult spiral_classifier(Device device) {
  const Dataset data = spirals(1500, 11);
  ClassificationResult result;
  result.train_rows = 1200;
  result.test_rows = data.x.rows() - result.train_rows;
  result.epochs = 50;
  const auto [train, test] = first_and_rest(data.x.rows(), result.train_rows);
  Sequential model{{Dense(64, Activation::relu), Dense(64, Activation::relu), Dense(3)}, 5};
  model.compile({.optimizer = Adam{.lr = 0.01f}, .loss = CrossEntropy{}, .device = device});
  model.fit(data.x.take_rows(train), data.y.take_rows(train), {.epochs = result.epochs, .batch_size = 100});
  result.test_accuracy = model.evaluate(data.x.take_rows(test), data.y.take_rows(test)).accuracy;
  return result;
}

}  // namespace ember::demo
