// BatchNorm: the example the tests over every kind use, its float64 form, and its formula tests.
#include <gtest/gtest.h>

#include "ember/ember.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// Training: each column less the batch's mean, over sqrt(its biased variance + epsilon), times the
// scale plus the shift. The running figures lie after every trained parameter, unread here.
// After an activation in one_layer_of_each_kind: after a shift of its own columns (LayerNorm's, a
// Dense layer's bias), that shift's gradient is zero, and noise then steers Adam's steps.
EMBER_LAYER_EXAMPLE(2, BatchNorm(0.2f, 1e-3f),
                    [](const BatchNorm& norm, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const std::size_t width = rows.front().size();
                      const auto n = static_cast<double>(rows.size());
                      for (std::size_t k = 0; k < width; ++k) {
                        double mean = 0.0, variance = 0.0;
                        for (const std::vector<double>& row : rows) mean += row[k] / n;
                        for (const std::vector<double>& row : rows) variance += (row[k] - mean) * (row[k] - mean) / n;
                        for (std::vector<double>& row : rows)
                          row[k] = (row[k] - mean) / std::sqrt(variance + norm.epsilon) * p[k] + p[width + k];
                      }
                      return 2 * width;
                    });

// As torch.nn.BatchNorm1d: training normalizes each column by the batch's mean and biased
// variance and moves the running figures toward the batch's (the variance unbiased); predicting
// normalizes by the running figures. They are state: the optimizer leaves them alone (weight decay
// included), the checkpoint keeps them, and they lie after every trained parameter.
TEST(LayerKind, BatchNormTrainsOnTheBatchAndPredictsWithTheRunningFigures) {
  Sequential model({BatchNorm(0.25f, 0.5f), Dense(2)});
  model.compile({.optimizer = AdamW{.lr = 0.1f, .weight_decay = 0.5f}, .device = Device::cpu});
  model.build(2);
  EXPECT_EQ(model.parameter_count(0), 8);
  EXPECT_EQ(model.tensor_names(0), (std::vector<std::string>{"weight", "bias", "running_mean", "running_var"}));
  EXPECT_EQ(model.tensor(0, "running_var").data - model.parameters().data(), 4 + 6 + 2);  // after Dense's 6
  const Matrix x{{1.0f, 10.0f}, {2.0f, 10.0f}, {6.0f, 10.0f}, {3.0f, 14.0f}};
  model.fit(x, Matrix(4, 2, 0.5f), {.epochs = 1, .batch_size = 4, .normalize = false});
  // One step on the whole batch: column one mean 3, unbiased variance 14 / 3; column two mean 11,
  // unbiased variance 4.
  const ConstView mean = model.tensor(0, "running_mean"), var = model.tensor(0, "running_var");
  EXPECT_NEAR(mean(0, 0), 0.25 * 3.0, 1e-6);
  EXPECT_NEAR(mean(0, 1), 0.25 * 11.0, 1e-6);
  EXPECT_NEAR(var(0, 0), 0.75 + 0.25 * 14.0 / 3.0, 1e-6);
  EXPECT_NEAR(var(0, 1), 0.75 + 0.25 * 4.0, 1e-6);
  model.set_weight(0, Matrix{{2.0f, -1.0f}});
  model.set_bias(0, Matrix{{0.5f, 0.0f}});
  model.set_weight(1, Matrix{{1.0f, 0.0f}, {0.0f, 1.0f}});
  model.set_bias(1, Matrix{{0.0f, 0.0f}});
  const Matrix y = model.predict(x);
  for (std::int64_t r = 0; r < 4; ++r) {
    EXPECT_NEAR(y(r, 0), (x(r, 0) - mean(0, 0)) / std::sqrt(var(0, 0) + 0.5) * 2.0 + 0.5, 1e-5);
    EXPECT_NEAR(y(r, 1), -(x(r, 1) - mean(0, 1)) / std::sqrt(var(0, 1) + 0.5), 1e-5);
  }
  const std::string path = work_path("batch_norm.safetensors");
  model.save(path);
  const Sequential loaded = load_on_cpu(path);
  EXPECT_EQ(loaded.parameters(), model.parameters());
  EXPECT_EQ(loaded.predict(x), y);
  EXPECT_NE(input_error_message([&] {
              model.set_tensor(0, "running_var", Matrix{{1.0f, -0.5f}});
            }).find("a BatchNorm layer's running variance cannot be negative: -0.5 in column 1"),
            std::string::npos);
  EXPECT_EQ(model.predict(x), y);  // refused: nothing changed
  EXPECT_NE(input_error_message([] {
              Sequential({BatchNorm(1.5f), Dense(1)});
            }).find("momentum must be 0 to 1"),
            std::string::npos);
  EXPECT_NE(input_error_message([] {
              Sequential({BatchNorm(0.1f, 0.0f), Dense(1)});
            }).find("epsilon must be positive"),
            std::string::npos);
}

}  // namespace
}  // namespace ember::testing
