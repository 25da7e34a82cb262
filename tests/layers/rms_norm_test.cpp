// RMSNorm: the example the tests over every kind use, its float64 form, and its formula.
#include <gtest/gtest.h>

#include "ember/ember.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// Each row over sqrt(the mean of its squares + epsilon), times the weight.
EMBER_LAYER_EXAMPLE(5, RMSNorm(1e-4f),
                    [](const RMSNorm& norm, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const std::size_t width = rows.front().size();
                      for (std::vector<double>& row : rows) {
                        double squares = 0.0;
                        for (const double v : row) squares += v * v / static_cast<double>(width);
                        for (std::size_t k = 0; k < width; ++k)
                          row[k] = row[k] / std::sqrt(squares + norm.epsilon) * p[k];
                      }
                      return width;
                    });

// The formula, as torch.nn.RMSNorm: each row divided by its root mean square (no centring), then
// scaled per feature by its one parameter, weight, which starts at one; a row of zeros stays zero.
TEST(LayerKind, RMSNormDividesEachRowByItsRootMeanSquareThenScales) {
  Sequential model({RMSNorm(0.25f), Dense(2)});
  model.compile({.device = Device::cpu});
  model.build(4);
  EXPECT_EQ(model.tensor_names(0), std::vector<std::string>{"weight"});
  EXPECT_EQ(std::vector<float>(model.weight(0).data, model.weight(0).data + 4), std::vector<float>(4, 1.0f));
  model.set_weight(0, Matrix{{1.0f, 2.0f, -1.0f, 0.5f}});
  model.set_weight(1, Matrix{{1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 1.0f, 1.0f}});
  model.set_bias(1, Matrix{{0.0f, 0.0f}});
  const Matrix x{{1.0f, 2.0f, 3.0f, 6.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
  const Matrix y = model.predict(x);
  // Row one: mean square (1 + 4 + 9 + 36) / 4 = 12.5.
  const double rms = std::sqrt(12.5 + 0.25);
  EXPECT_NEAR(y(0, 0), 1 / rms * 1.0, 1e-6);
  EXPECT_NEAR(y(0, 1), 2 / rms * 2.0 - 3 / rms + 6 / rms * 0.5, 1e-6);
  EXPECT_EQ(y(1, 0), 0.0f);
  EXPECT_EQ(y(1, 1), 0.0f);
  try {
    Sequential({RMSNorm(0.0f), Dense(1)});
    ADD_FAILURE() << "a zero epsilon was taken";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("an RMSNorm layer's epsilon must be positive"), std::string::npos);
  }
}

}  // namespace
}  // namespace ember::testing
