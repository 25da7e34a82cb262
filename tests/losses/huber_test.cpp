// Huber: the example the tests over every loss use, its float64 form, and its formula.
#include <gtest/gtest.h>

#include "backend_conformance.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

EMBER_LOSS_EXAMPLE(Huber{.delta = 0.6f}, [](const Huber& huber, const Matrix& p, const Matrix& t) {
  const double delta = huber.delta;
  double sum = 0;
  for (std::int64_t i = 0; i < p.size(); ++i) {
    const double e = std::abs(static_cast<double>(p.data()[i]) - t.data()[i]);
    sum += e <= delta ? 0.5 * e * e : delta * (e - 0.5 * delta);
  }
  return sum / static_cast<double>(p.size());
});

// torch.nn.HuberLoss(delta=1.5): 0.5 e^2 for |e| <= 1.5, else 1.5 (|e| - 0.75); the gradient
// clamp(e, -1.5, 1.5) / elements.
TEST(LossKind, HuberSumsAndGradientByHand) {
  CpuBackend cpu;
  const Matrix prediction{{1, 2}, {3, 4}};
  const Matrix target{{0, 2}, {5, 1}};  // errors 1, 0 / -2, 3
  Matrix sums(1, 6);
  Matrix gradient = poisoned(2, 2);
  run_loss(cpu, Huber{1.5f}, prediction.view(), target.view(), sums.data(), gradient.view());
  EXPECT_EQ(sums, (Matrix{{0.5f + 1.5f * 1.25f, 0 + 1.5f * 2.25f, 1 + 4, 0 + 9, 1 + 2, 0 + 3}}));
  EXPECT_EQ(gradient, (Matrix{{0.25f, 0}, {-1.5f / 4, 1.5f / 4}}));
  for (const float bad : {0.0f, -1.0f, std::numeric_limits<float>::infinity()})
    EXPECT_THROW(check_loss(Huber{bad}), InputError) << bad;
}

}  // namespace
}  // namespace ember::testing
