// MeanAbsoluteError: the example the tests over every loss use, its float64 form, and its formula.
#include <gtest/gtest.h>

#include "backend_conformance.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

EMBER_LOSS_EXAMPLE(MeanAbsoluteError{}, [](const MeanAbsoluteError&, const Matrix& p, const Matrix& t) {
  double sum = 0;
  for (std::int64_t i = 0; i < p.size(); ++i) sum += std::abs(static_cast<double>(p.data()[i]) - t.data()[i]);
  return sum / static_cast<double>(p.size());
});

// torch.nn.L1Loss: the mean of |e|; its gradient sign(e) / elements, 0 where e = 0 (torch's
// autograd of abs at 0).
TEST(LossKind, MeanAbsoluteErrorSumsAndGradientByHand) {
  CpuBackend cpu;
  const Matrix prediction{{1, 2}, {3, 4}};
  const Matrix target{{0, 2}, {5, 1}};  // errors 1, 0 / -2, 3
  Matrix sums(1, 6);
  Matrix gradient = poisoned(2, 2);
  run_loss(cpu, MeanAbsoluteError{}, prediction.view(), target.view(), sums.data(), gradient.view());
  EXPECT_EQ(sums, (Matrix{{1 + 2, 0 + 3, 1 + 4, 0 + 9, 1 + 2, 0 + 3}}));
  EXPECT_EQ(gradient, (Matrix{{0.25f, 0}, {-0.25f, 0.25f}}));
}

// Fitting a constant to 1, 2, 3, 10 by the mean absolute error lands on the median's interval [2,
// 3] where MSE goes to the mean, 4: the loss trains what it says.
TEST(LossKind, MeanAbsoluteErrorFitsTheMedian) {
  const Matrix x{{0}, {0}, {0}, {0}}, y{{1}, {2}, {3}, {10}};
  const auto fitted = [&](const Loss& loss) {
    Sequential model({Dense(1)});
    model.compile({.optimizer = SGD{.lr = 0.05f}, .loss = loss, .device = Device::cpu});
    model.fit(x, y, {.epochs = 400, .batch_size = 4, .shuffle = false, .normalize = false});
    return model.predict(Matrix{{0}})(0, 0);
  };
  const float median = fitted(MeanAbsoluteError{}), mean = fitted(MeanSquaredError{});
  EXPECT_GE(median, 1.9f);
  EXPECT_LE(median, 3.1f);
  EXPECT_NEAR(mean, 4.0f, 0.05f);
}

}  // namespace
}  // namespace ember::testing
