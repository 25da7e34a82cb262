// CrossEntropy: the example the tests over every loss use, its float64 form, and its formula.
#include <gtest/gtest.h>

#include "backend_conformance.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// -sum over classes of the smoothed target times log p, the mean over rows (one logit: the two
// classes' p and 1 - p).
EMBER_LOSS_EXAMPLE(CrossEntropy{.label_smoothing = 0.1f},
                   [](const CrossEntropy& loss, const Matrix& p, const Matrix& t) {
                     const double eps = loss.label_smoothing;
                     double sum = 0;
                     for (std::int64_t r = 0; r < p.rows(); ++r) {
                       const auto y = static_cast<std::int64_t>(t(r, 0));
                       if (p.cols() == 1) {
                         const double probability = 1 / (1 + std::exp(-static_cast<double>(p(r, 0))));
                         const double target = (y == 1 ? 1 - eps : 0.0) + eps / 2;
                         sum -= target * std::log(probability) + (1 - target) * std::log(1 - probability);
                         continue;
                       }
                       double normalizer = 0;
                       for (std::int64_t c = 0; c < p.cols(); ++c) normalizer += std::exp(static_cast<double>(p(r, c)));
                       for (std::int64_t c = 0; c < p.cols(); ++c)
                         sum -= ((c == y ? 1 - eps : 0.0) + eps / static_cast<double>(p.cols())) *
                                (static_cast<double>(p(r, c)) - std::log(normalizer));
                     }
                     return sum / static_cast<double>(p.rows());
                   });

CpuBackend cpu;

TEST(LossKind, CrossEntropyByHand) {
  // Two classes on one logit: BCE with logits. z = 0 gives log 2 and a gradient of (0.5 - y) / rows.
  const Matrix z{{0}, {2}, {-1}}, y{{1}, {0}, {0}};
  float sums[2] = {0, 0};
  Matrix gradient = poisoned(3, 1);
  run_loss(cpu, CrossEntropy{0.0f}, z.view(), y.view(), sums, gradient.view());
  const double expected = std::log(2.0) + (2 + std::log1p(std::exp(-2.0))) + std::log1p(std::exp(-1.0));
  EXPECT_NEAR(sums[0], expected, 1e-6);
  EXPECT_EQ(sums[1], 1.0f);  // only the last row is predicted right (z <= 0 is class 0; z = 0 too)
  EXPECT_NEAR(gradient(0, 0), (0.5 - 1) / 3, 1e-7);
  EXPECT_NEAR(gradient(1, 0), 1 / (1 + std::exp(-2.0)) / 3, 1e-7);
  // Three classes: softmax. Equal logits give log 3, the first of the tied logits is predicted.
  const Matrix logits{{1, 1, 1}, {0, 5, 0}}, labels{{0}, {2}};
  float softmax_sums[2] = {0, 0};
  Matrix softmax_gradient = poisoned(2, 3);
  run_loss(cpu, CrossEntropy{0.0f}, logits.view(), labels.view(), softmax_sums, softmax_gradient.view());
  const double second = std::log(2 + std::exp(5.0)) - 0.0;
  EXPECT_NEAR(softmax_sums[0], std::log(3.0) + second, 1e-5);
  EXPECT_EQ(softmax_sums[1], 1.0f);
  EXPECT_NEAR(softmax_gradient(0, 0), (1.0 / 3 - 1) / 2, 1e-7);
  EXPECT_NEAR(softmax_gradient(0, 1), (1.0 / 3) / 2, 1e-7);
  EXPECT_NEAR(softmax_gradient(1, 2), (1 / (2 + std::exp(5.0)) - 1) / 2, 1e-7);
  // A label that is no class index is an error, not a read out of bounds.
  EXPECT_THROW(run_loss(cpu, CrossEntropy{}, logits.view(), Matrix{{0}, {3}}.view(), softmax_sums, std::nullopt),
               Error);
  EXPECT_THROW(run_loss(cpu, CrossEntropy{}, z.view(), Matrix{{0}, {2}, {0.5f}}.view(), sums, std::nullopt), Error);
}

// torch.nn.CrossEntropyLoss(label_smoothing=0.1) as its documentation defines it, at logits
// (1, 2, 3) and label 0: the target (0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3), the loss
// -sum(target * log_softmax) = 2.3076059644 (float64), the gradient softmax - target. One logit:
// Keras' BinaryCrossentropy(label_smoothing=0.2) at z = 0.5, y = 1: the target 0.9.
TEST(LossKind, LabelSmoothingFollowsPyTorchAndKeras) {
  const Matrix logits{{1, 2, 3}}, labels{{0}};
  float sums[2] = {0, 0};
  Matrix gradient = poisoned(1, 3);
  run_loss(cpu, CrossEntropy{0.1f}, logits.view(), labels.view(), sums, gradient.view());
  const double normalizer = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const double target[3] = {0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3};
  double loss = 0;
  for (int c = 0; c < 3; ++c) {
    const double log_p = (c + 1) - std::log(normalizer);
    loss -= target[c] * log_p;
    EXPECT_NEAR(gradient(0, c), std::exp(log_p) - target[c], 1e-7) << c;
  }
  EXPECT_NEAR(loss, 2.3076059644, 1e-9);
  EXPECT_NEAR(sums[0], loss, 1e-6);
  const Matrix z{{0.5f}}, y{{1}};
  float binary[2] = {0, 0};
  Matrix binary_gradient = poisoned(1, 1);
  run_loss(cpu, CrossEntropy{0.2f}, z.view(), y.view(), binary, binary_gradient.view());
  const double p = 1 / (1 + std::exp(-0.5));
  EXPECT_NEAR(binary[0], -(0.9 * std::log(p) + 0.1 * std::log(1 - p)), 1e-6);
  EXPECT_NEAR(binary_gradient(0, 0), p - 0.9, 1e-7);
  for (const float bad : {-0.1f, 1.0f})
    EXPECT_THROW(check_loss(CrossEntropy{.label_smoothing = bad}), InputError) << bad;
}

}  // namespace
}  // namespace ember::testing
