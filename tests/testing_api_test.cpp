// The installed testing helpers (ember/testing.hpp): the error measures, and comparing a model's
// training on two backends, as users call them in their own tests.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "ember/testing.hpp"

namespace ember {
namespace {

TEST(TestingApi, ErrorMeasures) {
  const Matrix reference{{3, 4}}, out{{3, 4.5f}};
  EXPECT_DOUBLE_EQ(testing::relative_error(out, reference), 0.5 / 5.0);
  EXPECT_DOUBLE_EQ(testing::max_abs_difference(out.view(), reference.view()), 0.5);
  EXPECT_EQ(testing::relative_error(Matrix{{3, NAN}}, reference), std::numeric_limits<double>::infinity());
  EXPECT_EQ(testing::relative_error(Matrix{{3}}, reference), std::numeric_limits<double>::infinity());
  EXPECT_EQ(testing::max_abs_difference(Matrix{{NAN, 4}}.view(), reference.view()),
            std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(testing::relative_error(Matrix{{0, 2}}, Matrix{{0, 0}}), 2.0);  // against zeros: the norm
}

TEST(TestingApi, CompareTrainingOnTwoBackends) {
  const Matrix x = Matrix(64, 3), y = Matrix(64, 2);
  Matrix xs = x, ys = y;
  Random random(3);
  for (std::int64_t i = 0; i < xs.size(); ++i) xs.data()[i] = static_cast<float>(random.normal());
  for (std::int64_t r = 0; r < 64; ++r) {
    ys(r, 0) = xs(r, 0) - 2 * xs(r, 1);
    ys(r, 1) = xs(r, 2) * xs(r, 2);
  }
  const std::vector<Layer> layers{Dense(16, Activation::relu), Dropout(0.25f), Dense(2)};
  const testing::TrainingSide reference{.device = Device::cpu, .backend = {.cpu_reference = true}};
  const testing::TrainingSide fast{.device = Device::cpu};
  const testing::TrainingComparison same = testing::compare_training(layers, {.optimizer = Adam{.lr = 0.01f}}, xs, ys,
                                                                     {.epochs = 3, .batch_size = 16}, reference, fast);
  EXPECT_TRUE(same.within_tolerance()) << same.report();
  ASSERT_EQ(same.tensors.size(), 4u);  // no tensor for the Dropout layer
  EXPECT_EQ(same.tensors[3].name, "layers.2.bias");
  EXPECT_EQ(same.losses_a.size(), 3u);
  EXPECT_GT(same.parameter_error, 0.0);  // float32 against float64: close, not equal
  EXPECT_NE(same.report().find("epoch 3: loss "), std::string::npos) << same.report();
  // With no room at all, the same runs differ, and the report says so.
  const testing::TrainingComparison strict = testing::compare_training(
      layers, {.optimizer = Adam{.lr = 0.01f}}, xs, ys, {.epochs = 3, .batch_size = 16}, reference, fast, 0.0);
  EXPECT_FALSE(strict.within_tolerance());
  EXPECT_NE(strict.report().find("DIFFERENT"), std::string::npos);
  // One backend against itself: the same bits.
  EXPECT_EQ(testing::compare_training(layers, {}, xs, ys, {.epochs = 2}, fast, fast, 0.0).parameter_error, 0.0);
}

}  // namespace
}  // namespace ember
