// Adagrad: the settings the tests over every optimizer use, and its formula.
#include <gtest/gtest.h>

#include <vector>

#include "cpu/cpu_backend.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

CpuBackend cpu;

EMBER_OPTIMIZER_EXAMPLES(Adagrad{.lr = 0.05f, .weight_decay = 1e-3f, .eps = 1e-6f}, Adagrad{.lr = 0.01f},
                         Adagrad{.lr = 0.02f, .weight_decay = 0.1f, .eps = 1e-3f});

// torch.optim.Adagrad(lr=0.05, eps=1e-3, weight_decay=0.3) from w = [1, -2, 0.5], five steps with
// gradients g_t = [0.5 t, -0.25, 1e-3 / t] (torch 1.13, float64): the weights and the state "sum".
TEST(OptimizerKind, AdagradFollowsPytorchFormula) {
  const Adagrad adagrad{.lr = 0.1f, .weight_decay = 0.3f, .eps = 1e-3f};
  ASSERT_EQ(optimizer_state_names(adagrad), std::vector<std::string>{"sum"});
  std::vector<float> w{1.0f, -2.0f, 0.5f}, sum(3, 0.0f);
  const OptimizerScalars half{.lr_scale = 0.5f, .step = 0};  // the rate applied is 0.05
  for (int step = 1; step <= 5; ++step) {
    const std::vector<float> g{0.5f * static_cast<float>(step), -0.25f, 1e-3f / static_cast<float>(step)};
    cpu.optimizer_update(adagrad, w.data(), g.data(), sum.data(), 3, 3, &half);
  }
  const double expected_w[3] = {0.802528162454, -1.840244096593, 0.349722507697};
  const double expected_sum[3] = {18.108911021699, 3.419291518518, 0.083030954134};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(w[i], expected_w[i], 1e-6) << i;
    EXPECT_NEAR(sum[i], expected_sum[i], 1e-5) << i;
  }
}

}  // namespace
}  // namespace ember::testing
