// Scale: the example the tests over every kind use, its float64 form, and its formula.
#include <gtest/gtest.h>

#include "ember/ember.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// Each feature times its weight.
EMBER_LAYER_EXAMPLE(6, Scale(0.75f), [](const Scale&, Rows& rows, const double* p, const FormContext&) -> std::size_t {
  const std::size_t width = rows.front().size();
  for (std::vector<double>& row : rows)
    for (std::size_t k = 0; k < width; ++k) row[k] *= p[k];
  return width;
});

// The formula: y = x * weight per feature, the weight starting at init; its gradient is the column
// sum of dy * x, which one SGD step applies.
TEST(LayerKind, ScaleMultipliesEachFeatureByItsLearnedFactor) {
  Sequential model({Scale(0.5f), Dense(1)});
  model.compile({.optimizer = SGD{.lr = 0.1f}, .device = Device::cpu});
  model.build(3);
  EXPECT_EQ(model.tensor_names(0), std::vector<std::string>{"weight"});
  EXPECT_EQ(std::vector<float>(model.weight(0).data, model.weight(0).data + 3), std::vector<float>(3, 0.5f));
  model.set_weight(0, Matrix{{2.0f, -1.0f, 0.0f}});
  model.set_weight(1, Matrix{{1.0f, 1.0f, 1.0f}});
  model.set_bias(1, Matrix{{0.0f}});
  const Matrix x{{1.0f, 2.0f, 3.0f}, {-1.0f, 0.5f, 4.0f}};
  const Matrix y = model.predict(x);
  EXPECT_FLOAT_EQ(y(0, 0), 2.0f - 2.0f + 0.0f);
  EXPECT_FLOAT_EQ(y(1, 0), -2.0f - 0.5f + 0.0f);
  // MSE against zeros: dL/dy = 2 y / rows; dL/dweight_k = sum_r dL/dy_r * x_rk (the Dense weight 1).
  const Matrix targets{{0.0f}, {0.0f}};
  model.fit(x, targets, {.epochs = 1, .batch_size = 2, .shuffle = false, .normalize = false});
  const float d[2] = {y(0, 0), y(1, 0)};  // 2 y / 2
  const float expected[3] = {2.0f - 0.1f * (d[0] * 1.0f + d[1] * -1.0f), -1.0f - 0.1f * (d[0] * 2.0f + d[1] * 0.5f),
                             0.0f - 0.1f * (d[0] * 3.0f + d[1] * 4.0f)};
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(model.weight(0).data[k], expected[k], 1e-6) << k;
  try {
    Sequential({Scale(std::numeric_limits<float>::infinity()), Dense(1)});
    ADD_FAILURE() << "an infinite init was taken";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("a Scale layer's init must be finite"), std::string::npos);
  }
}

}  // namespace
}  // namespace ember::testing
