// Every CPU reference op against hand-computed values, and the derivative ops against finite
// differences of the forward ops.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>

#include "activation_math.hpp"
#include "backend_conformance.hpp"
#include "cpu/cpu_backend.hpp"
#include "dropout_math.hpp"
#include "ember/error.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

using testing::kGradientTolerance;
using testing::LossExample;
using testing::one_loss_of_each_kind;
using testing::poisoned;
using testing::random_matrix;
using testing::relative_error;
using testing::run_loss;

CpuBackend cpu;

TEST(CpuOps, MatmulAllTransposeModesByHand) {
  const Matrix a{{1, 2, 3}, {4, 5, 6}};       // (2, 3)
  const Matrix b{{7, 8}, {9, 10}, {11, 12}};  // (3, 2)
  Matrix c = poisoned(2, 2);
  cpu.matmul(Transpose::no, Transpose::no, 1.0f, a.view(), b.view(), 0.0f, c.view());
  EXPECT_EQ(c, (Matrix{{58, 64}, {139, 154}}));

  const Matrix bt{{7, 9, 11}, {8, 10, 12}};  // b transposed
  Matrix d = poisoned(2, 2);
  cpu.matmul(Transpose::no, Transpose::yes, 1.0f, a.view(), bt.view(), 0.0f, d.view());
  EXPECT_EQ(d, c);

  const Matrix at{{1, 4}, {2, 5}, {3, 6}};  // a transposed
  Matrix e = poisoned(2, 2);
  cpu.matmul(Transpose::yes, Transpose::no, 1.0f, at.view(), b.view(), 0.0f, e.view());
  EXPECT_EQ(e, c);

  Matrix f{{1, 1}, {1, 1}};
  cpu.matmul(Transpose::yes, Transpose::yes, 2.0f, at.view(), bt.view(), -1.0f, f.view());  // 2ab - 1
  EXPECT_EQ(f, (Matrix{{115, 127}, {277, 307}}));
}

TEST(CpuOps, MatmulRejectsMismatchedShapes) {
  const Matrix a(2, 3), b(2, 2);
  Matrix c(2, 2);
  EXPECT_THROW(cpu.matmul(Transpose::no, Transpose::no, 1.0f, a.view(), b.view(), 0.0f, c.view()), Error);
  // Shapes that agree but exceed the 32-bit dimensions of BLAS and the kernels: refused before any
  // memory is touched (the views' data is one float).
  const std::int64_t rows = std::int64_t{1} << 31;
  float one = 1.0f;
  EXPECT_THROW(cpu.matmul(Transpose::no, Transpose::no, 1.0f, ConstView{&one, rows, 1}, ConstView{&one, 1, 1}, 0.0f,
                          View{&one, rows, 1}),
               InputError);
}

TEST(CpuOps, BiasReluByHand) {
  Matrix y{{1, -2}, {-3, 4}};
  const Matrix bias{{0.5f, 1.0f}};
  cpu.bias_add(y.view(), bias.view());
  EXPECT_EQ(y, (Matrix{{1.5f, -1}, {-2.5f, 5}}));
  Matrix gradient = poisoned(1, 2);
  cpu.bias_gradient(y.view(), gradient.view());
  EXPECT_EQ(gradient, (Matrix{{-1, 4}}));
  Matrix relu = poisoned(2, 2);
  cpu.activation_forward(Activation::relu, y.view(), relu.view());
  EXPECT_EQ(relu, (Matrix{{1.5f, 0}, {0, 5}}));
  const Matrix dy{{10, 20}, {30, 40}};
  Matrix dx = poisoned(2, 2);
  cpu.activation_backward(Activation::relu, dy.view(), y.view(), relu.view(), dx.view());
  EXPECT_EQ(dx, (Matrix{{10, 0}, {0, 40}}));
}

TEST(CpuOps, OptimizersRejectBadSettingsNamingThem) {
  const auto error = [](const Optimizer& optimizer) {
    try {
      check_optimizer(optimizer);
    } catch (const SettingError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(SGD{.lr = 0}), "SGD::lr 0: must be a finite number > 0");
  EXPECT_EQ(error(SGD{.nesterov = true}), "SGD::nesterov needs a momentum > 0");
  EXPECT_EQ(error(SGD{.momentum = -1}), "SGD::momentum -1: must be a finite number >= 0");
  EXPECT_EQ(error(Adam{.beta1 = 1.0f}), "Adam::beta1 1: must be in [0, 1)");
  EXPECT_EQ(error(AdamW{.eps = 0}), "AdamW::eps 0: must be a finite number > 0");
  EXPECT_EQ(error(Adam{.lr = std::numeric_limits<float>::infinity()}), "Adam::lr inf: must be a finite number > 0");
  EXPECT_EQ(error(AdamW{}), "no error");
  EXPECT_EQ(error(RMSprop{.alpha = 1.0f}), "RMSprop::alpha 1: must be in [0, 1)");
  EXPECT_EQ(error(RMSprop{.momentum = -0.5f}), "RMSprop::momentum -0.5: must be a finite number >= 0");
  EXPECT_EQ(error(RMSprop{}), "no error");
  float w = 1, g = 1, b = 0;
  const OptimizerScalars one{};
  EXPECT_THROW(cpu.optimizer_update(SGD{.lr = 0}, &w, &g, &b, 1, 1, &one), InputError);
}

// Random123's published known-answer vectors for Philox4x32-10 (its kat_vectors file).
TEST(CpuOps, PhiloxMatchesRandom123KnownAnswers) {
  struct Case {
    std::array<std::uint32_t, 4> counter;
    std::array<std::uint32_t, 2> key;
    std::array<std::uint32_t, 4> expected;
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Case& c : cases) {
    const dropout_math::Philox4x32 out =
        dropout_math::philox4x32_10({{c.counter[0], c.counter[1], c.counter[2], c.counter[3]}}, c.key[0], c.key[1]);
    EXPECT_EQ((std::array<std::uint32_t, 4>{out.v[0], out.v[1], out.v[2], out.v[3]}), c.expected);
  }
}

// As torch.nn.Dropout in training: each element zeroed with probability rate, the others scaled
// by 1 / (1 - rate); the mask a function of the seed and the counters alone.
TEST(CpuOps, DropoutDropsTheRateAndScalesTheRest) {
  CpuBackend cpu;
  const std::int64_t rows = 1000, cols = 503;  // 503: groups of four that straddle rows
  const Matrix x = random_matrix(rows, cols, 3);
  const std::int32_t counters[2] = {256, 4}, later[2] = {288, 4}, next_epoch[2] = {256, 5};
  for (const float rate : {0.1f, 0.3f, 0.75f}) {
    Matrix y = poisoned(rows, cols);
    testing::run_dropout(cpu, x.view(), y.view(), rate, 99, counters);
    const float scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(rate)));
    std::int64_t dropped = 0;
    for (std::int64_t i = 0; i < x.size(); ++i) {
      if (y.data()[i] == 0.0f) {
        ++dropped;
      } else {
        ASSERT_EQ(y.data()[i], x.data()[i] * scale) << i;
      }
    }
    // Within five standard deviations of the binomial count.
    const double n = static_cast<double>(x.size()), expected = n * rate;
    EXPECT_NEAR(static_cast<double>(dropped), expected, 5 * std::sqrt(expected * (1 - rate))) << rate;
    // The same counters draw the same mask; the next batch's or epoch's, and another seed, other ones.
    Matrix again = poisoned(rows, cols), other = poisoned(rows, cols);
    testing::run_dropout(cpu, x.view(), again.view(), rate, 99, counters);
    EXPECT_EQ(again, y);
    for (const std::int32_t* c : {later, next_epoch}) {
      testing::run_dropout(cpu, x.view(), other.view(), rate, 99, c);
      EXPECT_NE(other, y) << rate;
    }
    testing::run_dropout(cpu, x.view(), other.view(), rate, 100, counters);
    EXPECT_NE(other, y) << rate;
  }
  Matrix y = poisoned(rows, cols);
  testing::run_dropout(cpu, x.view(), y.view(), 0.0f, 99, counters);
  EXPECT_EQ(y, x);  // rate 0: the identity
  for (const float bad : {-0.1f, 1.0f, std::numeric_limits<float>::quiet_NaN()})
    EXPECT_THROW(testing::run_dropout(cpu, x.view(), y.view(), bad, 99, counters), Error) << bad;
  Matrix narrow = poisoned(rows, cols - 1);
  EXPECT_THROW(testing::run_dropout(cpu, x.view(), narrow.view(), 0.5f, 99, counters), Error);
}

// As torch.nn.utils.clip_grad_norm_: above max_norm, every value scaled by max_norm / (norm + 1e-6),
// which keeps the direction and brings the norm to max_norm; at or below it, nothing changes.
TEST(CpuOps, ClipByNormScalesDownToTheNormAsPyTorch) {
  CpuBackend cpu;
  const Matrix values = random_matrix(1, 10007, 5);
  double squares = 0.0;
  for (std::int64_t i = 0; i < values.size(); ++i) squares += static_cast<double>(values.data()[i]) * values.data()[i];
  const double norm = std::sqrt(squares);
  for (const double share : {0.01, 0.5, 0.999}) {
    Matrix clipped = values;
    cpu.clip_by_norm(clipped.data(), clipped.size(), static_cast<float>(share * norm));
    const double factor = static_cast<double>(static_cast<float>(share * norm)) / (norm + 1e-6);
    double clipped_squares = 0.0;
    for (std::int64_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(clipped.data()[i], static_cast<float>(values.data()[i] * factor)) << i;
      clipped_squares += static_cast<double>(clipped.data()[i]) * clipped.data()[i];
    }
    EXPECT_NEAR(std::sqrt(clipped_squares), share * norm, 1e-6 * norm) << share;
  }
  for (const double above : {1.0, 1.5}) {  // at the norm (the 1e-6 keeps the factor below 1: torch's too)
    Matrix same = values;
    cpu.clip_by_norm(same.data(), same.size(), static_cast<float>(above * norm) * 1.0001f);
    EXPECT_EQ(same, values) << above;
  }
  Matrix zeros(1, 5);
  cpu.clip_by_norm(zeros.data(), zeros.size(), 1.0f);
  EXPECT_EQ(zeros, Matrix(1, 5));
  cpu.clip_by_norm(zeros.data(), 0, 1.0f);
  for (const float bad : {0.0f, -1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    EXPECT_THROW(cpu.clip_by_norm(zeros.data(), zeros.size(), bad), Error) << bad;
}

// The reference's BatchNorm over a batch across ranks (its phases and sums) against its own
// BatchNorm of the whole batch.
TEST(CpuOps, BatchNormAcrossRanksMatchesTheWholeBatch) {
  CpuBackend cpu;
  testing::expect_batch_norm_across_ranks_matches_whole_batch(cpu);
}

TEST(CpuOps, FillCopyGatherAdvance) {
  const Matrix source{{1, 2}, {3, 4}, {5, 6}};
  const std::vector<std::int32_t> indices{2, 0, 1, 2};
  std::int32_t cursor = 1;
  Matrix batch = poisoned(2, 2);
  cpu.gather_rows(source.view(), indices.data(), &cursor, batch.view());
  EXPECT_EQ(batch, (Matrix{{1, 2}, {3, 4}}));
  cpu.advance_cursor(&cursor, 2);
  EXPECT_EQ(cursor, 3);
  Matrix last = poisoned(1, 2);
  cpu.gather_rows(source.view(), indices.data(), &cursor, last.view());
  EXPECT_EQ(last, (Matrix{{5, 6}}));
  Matrix filled = poisoned(2, 3);
  cpu.fill(filled.view(), 7.0f);
  EXPECT_EQ(filled, Matrix(2, 3, 7.0f));
  Matrix copied = poisoned(3, 2);
  cpu.copy(source.view(), copied.view());
  EXPECT_EQ(copied, source);
}

// ---- finite differences ------------------------------------------------------------------------

/// Central difference of f at x[i] in float64 (the inputs are float32, perturbed in float64).
/// The step is large where f is linear in x (exact then) and small near ReLU's kink.
double central_difference(Matrix& x, std::int64_t i, const std::function<double()>& f, double step = 1e-2) {
  const float original = x.data()[i];
  x.data()[i] = static_cast<float>(original + step);
  const double up_x = x.data()[i];
  const double up = f();
  x.data()[i] = static_cast<float>(original - step);
  const double down_x = x.data()[i];
  const double down = f();
  x.data()[i] = original;
  return (up - down) / (up_x - down_x);
}

// Every kind of loss (its registered example): the op's summed loss equals the example's float64
// form, and its gradient that form's central differences. Where a kink lies within the step (Huber's
// |e| = delta, the absolute error's 0), the two one-sided differences disagree and the element is
// skipped.
TEST(CpuOpsFiniteDifferences, EveryLossGradient) {
  std::uint64_t seed = 40;
  for (const LossExample& example : one_loss_of_each_kind())
    for (const std::int64_t cols : {1, 4}) {
      const Loss& loss = example.loss;
      const bool classification = is_classification(loss);
      const std::string name = fmt::format("{}, {} outputs", describe(loss), cols);
      const std::int64_t rows = 7;
      Matrix prediction = random_matrix(rows, cols, ++seed);
      for (std::int64_t i = 0; i < prediction.size(); ++i) prediction.data()[i] *= 2;  // beyond Huber's delta too
      Matrix target = random_matrix(rows, classification ? 1 : cols, ++seed);
      if (classification)
        for (std::int64_t r = 0; r < rows; ++r) target(r, 0) = static_cast<float>(r % std::max<std::int64_t>(cols, 2));
      Matrix gradient = poisoned(rows, cols);
      Matrix sums(1, loss_part::sums_width(loss, cols));
      run_loss(cpu, loss, prediction.view(), target.view(), sums.data(), gradient.view());
      double from_op = 0;  // the op's sum of losses, as a mean
      for (std::int64_t k = 0; k < (classification ? 1 : cols); ++k) from_op += sums(0, k);
      from_op /= static_cast<double>(classification ? rows : prediction.size());
      const auto mean_loss = [&] { return example.mean_loss(loss, prediction, target); };
      EXPECT_NEAR(from_op, mean_loss(), 1e-6) << name;
      std::vector<double> numeric;
      std::vector<float> analytic;
      for (std::int64_t i = 0; i < prediction.size(); ++i) {
        const float original = prediction.data()[i];
        const double at = mean_loss();
        prediction.data()[i] = original + 1e-3f;
        const double up = (mean_loss() - at) / (static_cast<double>(prediction.data()[i]) - original);
        prediction.data()[i] = original - 1e-3f;
        const double down = (at - mean_loss()) / (original - static_cast<double>(prediction.data()[i]));
        prediction.data()[i] = original;
        if (std::abs(up - down) > 1e-2 * (std::abs(up) + std::abs(down)) + 1e-4) continue;
        numeric.push_back(central_difference(prediction, i, mean_loss, 1e-3));
        analytic.push_back(gradient.data()[i]);
      }
      ASSERT_GT(numeric.size(), static_cast<std::size_t>(prediction.size() / 2)) << name;
      EXPECT_LT(relative_error(analytic.data(), numeric.data(), static_cast<std::int64_t>(numeric.size())),
                kGradientTolerance)
          << name;
    }
}

/// Sum of w * f(x) in float64 for a fixed random weighting w: its gradient is the op's backward
/// applied to w.
double weighted_sum(const Matrix& values, const Matrix& weights) {
  double sum = 0;
  for (std::int64_t i = 0; i < values.size(); ++i) sum += static_cast<double>(values.data()[i]) * weights.data()[i];
  return sum;
}

TEST(CpuOpsFiniteDifferences, EveryActivationBackward) {
  activations::for_each_part([&](auto part) {
    const Activation kind = decltype(part)::kind;
    SCOPED_TRACE(to_string(kind));
    Matrix x = random_matrix(7, 5, 3);
    for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] *= 3.0f;  // the saturating range too
    const Matrix weights = random_matrix(7, 5, 4);
    Matrix y = poisoned(7, 5), dx = poisoned(7, 5);
    cpu.activation_forward(kind, x.view(), y.view());
    cpu.activation_backward(kind, weights.view(), x.view(), y.view(), dx.view());
    const auto f = [&] {
      Matrix out(7, 5);
      cpu.activation_forward(kind, x.view(), out.view());
      return weighted_sum(out, weights);
    };
    std::vector<double> numeric;
    for (std::int64_t i = 0; i < x.size(); ++i) numeric.push_back(central_difference(x, i, f, 1e-3));
    EXPECT_LT(relative_error(dx.data(), numeric.data(), x.size()), kGradientTolerance);
  });
}

// PyTorch's values and gradients (torch 1.13, float64, autograd of the sum) at x = -2, -0.5, 0.5, 3:
// the formulas are PyTorch's, not only consistent with their own derivatives.
TEST(CpuOps, ActivationsMatchPyTorch) {
  const Matrix x{{-2.0f, -0.5f, 0.5f, 3.0f}};
  const Matrix ones{{1.0f, 1.0f, 1.0f, 1.0f}};
  struct Expected {
    Activation kind;
    std::array<double, 4> value, gradient;
  };
  const Expected expected[] = {{Activation::linear, {-2.0, -0.5, 0.5, 3.0}, {1.0, 1.0, 1.0, 1.0}},
                               {Activation::relu, {0.0, 0.0, 0.5, 3.0}, {0.0, 0.0, 1.0, 1.0}},
                               {Activation::leaky_relu, {-0.02, -0.005, 0.5, 3.0}, {0.01, 0.01, 1.0, 1.0}},
                               {Activation::gelu,
                                {-0.04550026389635842, -0.15426876936299344, 0.34573123063700656, 2.99595030590511},
                                {-0.08523180107819692, 0.13250487534383712, 0.8674951246561629, 1.011945647204184}},
                               {Activation::gelu_tanh,
                                {-0.04540230591222494, -0.15428599017485606, 0.34571400982514394, 2.996362607918227},
                                {-0.0860992566236183, 0.13263009646535764, 0.8673699035346424, 1.0115841666309695}},
                               {Activation::silu,
                                {-0.2384058440442351, -0.1887703343990727, 0.3112296656009273, 2.8577223804672998},
                                {-0.09078424878489547, 0.2600388126973482, 0.7399611873026519, 1.0881041060151693}},
                               {Activation::tanh,
                                {-0.9640275800758169, -0.46211715726000974, 0.46211715726000974, 0.9950547536867305},
                                {0.07065082485316443, 0.7864477329659274, 0.7864477329659274, 0.009866037165440166}},
                               {Activation::sigmoid,
                                {0.11920292202211755, 0.3775406687981454, 0.6224593312018546, 0.9525741268224334},
                                {0.1049935854035065, 0.2350037122015945, 0.2350037122015945, 0.045176659730912}}};
  static_assert(std::size(expected) == kActivationCount, "every activation has PyTorch's figures here");
  for (const Expected& e : expected) {
    Matrix y = poisoned(1, 4), dx = poisoned(1, 4);
    cpu.activation_forward(e.kind, x.view(), y.view());
    cpu.activation_backward(e.kind, ones.view(), x.view(), y.view(), dx.view());
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(y.data()[i], e.value[i], 3e-7 * (1 + std::abs(e.value[i]))) << to_string(e.kind) << " " << i;
      EXPECT_NEAR(dx.data()[i], e.gradient[i], 3e-7 * (1 + std::abs(e.gradient[i]))) << to_string(e.kind) << " " << i;
    }
  }
}

TEST(CpuOpsFiniteDifferences, BiasGradient) {
  const Matrix y = random_matrix(9, 4, 5), weights = random_matrix(9, 4, 6);
  Matrix bias = random_matrix(1, 4, 7), gradient = poisoned(1, 4);
  cpu.bias_gradient(weights.view(), gradient.view());
  const auto f = [&] {
    Matrix out = y;
    cpu.bias_add(out.view(), bias.view());
    return weighted_sum(out, weights);
  };
  std::vector<double> numeric;
  for (std::int64_t i = 0; i < 4; ++i) numeric.push_back(central_difference(bias, i, f));
  EXPECT_LT(relative_error(gradient.data(), numeric.data(), 4), kGradientTolerance);
}

TEST(CpuOpsFiniteDifferences, MatmulGradientsAreTheOtherTransposeModes) {
  // c = x @ w^T (the forward layer, NT); dx = dc @ w (NN); dw = dc^T @ x (TN).
  Matrix x = random_matrix(6, 4, 8), w = random_matrix(3, 4, 9);
  const Matrix dc = random_matrix(6, 3, 10);
  Matrix dx = poisoned(6, 4), dw = poisoned(3, 4);
  cpu.matmul(Transpose::no, Transpose::no, 1.0f, dc.view(), w.view(), 0.0f, dx.view());
  cpu.matmul(Transpose::yes, Transpose::no, 1.0f, dc.view(), x.view(), 0.0f, dw.view());
  const auto f = [&] {
    Matrix c(6, 3);
    cpu.matmul(Transpose::no, Transpose::yes, 1.0f, x.view(), w.view(), 0.0f, c.view());
    return weighted_sum(c, dc);
  };
  std::vector<double> numeric_x, numeric_w;
  for (std::int64_t i = 0; i < x.size(); ++i) numeric_x.push_back(central_difference(x, i, f));
  for (std::int64_t i = 0; i < w.size(); ++i) numeric_w.push_back(central_difference(w, i, f));
  EXPECT_LT(relative_error(dx.data(), numeric_x.data(), x.size()), kGradientTolerance);
  EXPECT_LT(relative_error(dw.data(), numeric_w.data(), w.size()), kGradientTolerance);
}

}  // namespace
}  // namespace ember
