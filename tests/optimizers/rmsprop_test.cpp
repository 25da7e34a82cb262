// RMSprop: the settings the tests over every optimizer use, and its formula.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "ember/error.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

CpuBackend cpu;

EMBER_OPTIMIZER_EXAMPLES(RMSprop{.lr = 0.001f, .momentum = 0.5f}, RMSprop{.lr = 0.01f, .weight_decay = 0.02f},
                         RMSprop{.lr = 0.005f, .alpha = 0.9f, .eps = 1e-6f, .momentum = 0.9f});

TEST(OptimizerKind, RmspropFollowsPytorchFormula) {
  // torch.optim.RMSprop(lr=0.01, alpha=0.9, eps=1e-3, weight_decay=0.3, momentum=m) from w = [1, -2,
  // 0.5], five steps with gradients g_t = [0.5 t, -0.25, 1e-3 / t] (torch 1.13, float64).
  for (const float momentum : {0.0f, 0.8f}) {
    const RMSprop rmsprop{.lr = 0.02f, .alpha = 0.9f, .eps = 1e-3f, .weight_decay = 0.3f, .momentum = momentum};
    ASSERT_EQ(optimizer_state_names(rmsprop).size(), momentum != 0.0f ? 2u : 1u);
    std::vector<float> w{1.0f, -2.0f, 0.5f}, state(6, 0.0f);   // square_avg, then momentum_buffer
    const OptimizerScalars half{.lr_scale = 0.5f, .step = 0};  // the rate applied is 0.01
    for (int step = 1; step <= 5; ++step) {
      const std::vector<float> g{0.5f * static_cast<float>(step), -0.25f, 1e-3f / static_cast<float>(step)};
      cpu.optimizer_update(rmsprop, w.data(), g.data(), state.data(), 3, 3, &half);
    }
    const std::vector<double> expected = momentum == 0.0f
                                             ? std::vector<double>{0.872190240072, -1.894505763241, 0.399250068201}
                                             : std::vector<double>{0.691132120139, -1.735922601266, 0.252047046800};
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(w[i], expected[i], 1e-6) << "momentum " << momentum << " i " << i;
  }
}

}  // namespace
}  // namespace ember::testing
