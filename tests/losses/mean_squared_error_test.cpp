// MeanSquaredError: the example the tests over every loss use, its float64 form, and its formula.
#include <gtest/gtest.h>

#include "backend_conformance.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

EMBER_LOSS_EXAMPLE(MeanSquaredError{}, [](const MeanSquaredError&, const Matrix& p, const Matrix& t) {
  double sum = 0;
  for (std::int64_t i = 0; i < p.size(); ++i) {
    const double e = static_cast<double>(p.data()[i]) - t.data()[i];
    sum += e * e;
  }
  return sum / static_cast<double>(p.size());
});

TEST(LossKind, MeanSquaredErrorSumsAndGradientByHand) {
  CpuBackend cpu;
  const Matrix prediction{{1, 2}, {3, 4}};
  const Matrix target{{0, 2}, {5, 1}};  // errors 1, 0 / -2, 3
  // Sums per column: the loss, the squared errors, the absolute errors; they accumulate.
  Matrix sums{{0.5f, 0, 0, 0, 0, 0}};
  Matrix gradient = poisoned(2, 2);
  run_loss(cpu, MeanSquaredError{}, prediction.view(), target.view(), sums.data(), gradient.view());
  EXPECT_EQ(sums, (Matrix{{0.5f + 1 + 4, 0 + 9, 1 + 4, 0 + 9, 1 + 2, 0 + 3}}));
  EXPECT_EQ(gradient, (Matrix{{0.5f, 0}, {-1, 1.5f}}));  // 2 e / 4
  run_loss(cpu, MeanSquaredError{}, prediction.view(), target.view(), sums.data(), std::nullopt);
  EXPECT_EQ(sums, (Matrix{{0.5f + 2 * 5, 2 * 9, 2 * 5, 2 * 9, 2 * 3, 2 * 3}}));
}

}  // namespace
}  // namespace ember::testing
