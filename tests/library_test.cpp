// The library as a C++ user meets it: Matrix conveniences, copies of models, per-layer weights,
// const inference, and threads (distinct models in parallel; one model's const members from
// several threads at once). The threading tests also run under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "ember/ember.hpp"
#include "ember/format.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

TEST(Library, MatrixConveniences) {
  const std::vector<float> values{1, 2, 3, 4, 5, 6};
  const Matrix from_vector(2, 3, values), from_list(2, 3, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(from_vector, from_list);
  EXPECT_EQ(from_vector, (Matrix{{1, 2, 3}, {4, 5, 6}}));
  EXPECT_THROW(Matrix(2, 2, values), InputError);
  EXPECT_THROW(Matrix(-1, 2), InputError);
  EXPECT_EQ(from_vector.at(1, 2), 6.0f);
  EXPECT_THROW(from_vector.at(2, 0), InputError);
  EXPECT_THROW(from_vector.at(0, -1), InputError);
  Matrix m = from_vector;
  m.at(0, 1) = 9;
  const std::span<const float> row = std::as_const(m).row(0);
  EXPECT_EQ(std::vector<float>(row.begin(), row.end()), (std::vector<float>{1, 9, 3}));
  m.row(1)[0] = -0.5f;
  EXPECT_EQ(m(1, 0), -0.5f);
  EXPECT_THROW(m.row(2), InputError);
  EXPECT_EQ(to_string(m), "[[1, 9, 3], [-0.5, 5, 6]]");
  EXPECT_EQ(fmt::format("{}", Matrix{{0.1f}}), "[[0.1]]");
  std::ostringstream out;
  out << Matrix{{1, 2}};
  EXPECT_EQ(out.str(), "[[1, 2]]");
}

Matrix line_x() {
  Matrix x(50, 2);
  for (std::int64_t r = 0; r < 50; ++r) {
    x(r, 0) = static_cast<float>(r % 7) - 3;
    x(r, 1) = static_cast<float>(r % 5) * 0.5f;
  }
  return x;
}

TEST(Library, LayerWeightsReadAndSet) {
  Sequential model{Dense(1)};
  model.compile({.device = Device::cpu});
  EXPECT_THROW(model.weight(0), InputError);  // not built
  model.build(2);
  model.set_weight(0, Matrix{{2, -1}});
  model.set_bias(0, Matrix{{0.5f}});
  const Matrix x = line_x();
  const Matrix predicted = model.predict(x);
  for (std::int64_t r = 0; r < x.rows(); ++r) EXPECT_FLOAT_EQ(predicted(r, 0), 2 * x(r, 0) - x(r, 1) + 0.5f);
  EXPECT_EQ(model.weight(0).rows, 1);
  EXPECT_EQ(model.weight(0).cols, 2);
  EXPECT_EQ(model.bias(0).data[0], 0.5f);
  EXPECT_EQ(model.weight(0).data, model.parameters().data() + model.weight_offset(0));
  EXPECT_THROW(model.set_weight(0, Matrix{{1, 2, 3}}), InputError);
  EXPECT_THROW(model.set_bias(0, Matrix{{NAN}}), InputError);
  EXPECT_THROW(model.weight(1), InputError);
}

TEST(Library, CopiesAreDeepAndPredictConst) {
  const Matrix x = line_x();
  Matrix y(50, 1);
  for (std::int64_t r = 0; r < 50; ++r) y(r, 0) = x(r, 0) * x(r, 1);
  Sequential model({Dense(8, Activation::relu), Dense(1)}, 3);
  model.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  model.fit(x, y, {.epochs = 3});
  const Sequential snapshot = model;       // e.g. the best model so far
  EXPECT_EQ(snapshot.backend_name(), "");  // its own backend comes at first use
  EXPECT_EQ(snapshot.predict(x), model.predict(x));
  EXPECT_EQ(snapshot.optimizer_state(), model.optimizer_state());
  model.fit(x, y, {.epochs = 2});
  EXPECT_NE(snapshot.parameters(), model.parameters());
  EXPECT_EQ(snapshot.epochs_completed(), 3);
  Sequential resumed = snapshot;
  resumed.fit(x, y, {.epochs = 2});
  EXPECT_EQ(resumed.parameters(), model.parameters());  // the copy carried the optimizer state
  const Metrics metrics = snapshot.evaluate(x, y);
  EXPECT_EQ(metrics.rows, 50);
}

TEST(Library, DistinctModelsTrainInParallelAsInSequence) {
  const Matrix x = line_x();
  Matrix y(50, 1);
  for (std::int64_t r = 0; r < 50; ++r) y(r, 0) = x(r, 0) - x(r, 1);
  const auto train = [&](std::uint64_t seed) {
    Sequential model({Dense(16, Activation::relu), Dense(1)}, seed);
    model.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
    model.fit(x, y, {.epochs = 5, .batch_size = 8});
    return model.parameters();
  };
  std::vector<float> a, b;
  std::thread first([&] { a = train(1); }), second([&] { b = train(2); });
  first.join();
  second.join();
  EXPECT_EQ(a, train(1));
  EXPECT_EQ(b, train(2));
}

TEST(Library, OneModelPredictsFromSeveralThreads) {
  const Matrix x = line_x();
  Sequential model({Dense(16, Activation::relu), Dense(1)}, 5);
  model.compile({.device = Device::cpu});
  model.build(2);
  const Matrix expected = model.predict(x);
  std::vector<Matrix> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) results[t] = std::as_const(model).predict(x);
    });
  for (std::thread& thread : threads) thread.join();
  for (const Matrix& result : results) EXPECT_EQ(result, expected);
}

}  // namespace
}  // namespace ember
