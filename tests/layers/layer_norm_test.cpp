// LayerNorm: the example the tests over every kind use, its float64 form, and its formula tests.
#include <gtest/gtest.h>

#include "ember/ember.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// Each row less its mean, over sqrt(its biased variance + epsilon), times the scale plus the shift.
EMBER_LAYER_EXAMPLE(4, LayerNorm(1e-3f),
                    [](const LayerNorm& norm, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const std::size_t width = rows.front().size();
                      for (std::vector<double>& row : rows) {
                        double mean = 0.0, variance = 0.0;
                        for (const double v : row) mean += v / static_cast<double>(width);
                        for (const double v : row) variance += (v - mean) * (v - mean) / static_cast<double>(width);
                        for (std::size_t k = 0; k < width; ++k)
                          row[k] = (row[k] - mean) / std::sqrt(variance + norm.epsilon) * p[k] + p[width + k];
                      }
                      return 2 * width;
                    });

// The formula, as torch.nn.LayerNorm: each row centred and divided by its (biased) standard
// deviation, then scaled and shifted per feature; the scale and shift are its parameters, weight
// and bias, the ones and zeros of the start.
TEST(LayerKind, LayerNormNormalizesEachRowThenScalesAndShifts) {
  Sequential model({LayerNorm(0.25f), Dense(2)});
  model.compile({.device = Device::cpu});
  model.build(4);
  EXPECT_EQ(model.parameter_count(0), 8);
  EXPECT_EQ(std::vector<float>(model.weight(0).data, model.weight(0).data + 4), std::vector<float>(4, 1.0f));
  EXPECT_EQ(std::vector<float>(model.bias(0).data, model.bias(0).data + 4), std::vector<float>(4, 0.0f));
  model.set_weight(0, Matrix{{1.0f, 2.0f, -1.0f, 0.5f}});
  model.set_bias(0, Matrix{{0.0f, 1.0f, 0.0f, -3.0f}});
  model.set_weight(1, Matrix{{1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 1.0f, 1.0f}});
  model.set_bias(1, Matrix{{0.0f, 0.0f}});
  const Matrix x{{1.0f, 2.0f, 3.0f, 6.0f}, {-2.0f, -2.0f, -2.0f, -2.0f}};
  const Matrix y = model.predict(x);
  // Row one: mean 3, deviations (-2, -1, 0, 3), variance 14 / 4; row two is constant: its
  // normalized values are 0, the output the shift's.
  const double std = std::sqrt(3.5 + 0.25);
  const double n[4] = {-2 / std * 1.0 + 0.0, -1 / std * 2.0 + 1.0, 0.0 * -1.0 + 0.0, 3 / std * 0.5 - 3.0};
  EXPECT_NEAR(y(0, 0), n[0], 1e-6);
  EXPECT_NEAR(y(0, 1), n[1] + n[2] + n[3], 1e-6);
  EXPECT_NEAR(y(1, 0), 0.0, 1e-6);
  EXPECT_NEAR(y(1, 1), 1.0 + 0.0 - 3.0, 1e-6);
}

}  // namespace
}  // namespace ember::testing
