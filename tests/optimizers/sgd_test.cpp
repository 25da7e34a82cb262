// SGD: the settings the tests over every optimizer use, and its formula.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "ember/error.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

CpuBackend cpu;

// The first trains in the training tests; with them, plain, momentum with weight decay, and Nesterov.
EMBER_OPTIMIZER_EXAMPLES(SGD{.lr = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 1e-4f}, SGD{.lr = 0.1f},
                         SGD{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f},
                         SGD{.lr = 0.01f, .momentum = 0.8f, .nesterov = true, .weight_decay = 0.1f});

TEST(OptimizerKind, SgdFollowsPytorchFormula) {
  // Two steps with momentum 0.9, weight decay 0.1, by hand from torch.optim.SGD's documentation.
  std::vector<float> w{1.0f, -2.0f}, v{0.0f, 0.0f};
  const std::vector<float> g{0.5f, 0.25f};
  const SGD sgd{.lr = 0.2f, .momentum = 0.9f, .nesterov = false, .weight_decay = 0.1f};
  const OptimizerScalars half{.lr_scale = 0.5f, .step = 0};  // the rate applied is 0.1
  double w_ref[2] = {1.0, -2.0}, v_ref[2] = {0.0, 0.0};
  for (int step = 0; step < 2; ++step) {
    cpu.optimizer_update(sgd, w.data(), g.data(), v.data(), 2, 2, &half);
    for (int i = 0; i < 2; ++i) {
      const double d = g[i] + 0.1 * w_ref[i];
      v_ref[i] = 0.9 * v_ref[i] + d;
      w_ref[i] -= 0.1 * v_ref[i];
    }
  }
  EXPECT_NEAR(w[0], w_ref[0], 1e-6);
  EXPECT_NEAR(w[1], w_ref[1], 1e-6);
  EXPECT_NEAR(v[1], v_ref[1], 1e-6);

  const OptimizerScalars one{};
  std::vector<float> wn{1.0f}, vn{0.0f};
  const std::vector<float> gn{0.5f};
  cpu.optimizer_update(SGD{.lr = 0.1f, .momentum = 0.9f, .nesterov = true}, wn.data(), gn.data(), vn.data(), 1, 1,
                       &one);
  EXPECT_FLOAT_EQ(vn[0], 0.5f);
  EXPECT_FLOAT_EQ(wn[0], 1.0f - 0.1f * (0.5f + 0.9f * 0.5f));  // g + mu v
  std::vector<float> wp{1.0f};
  cpu.optimizer_update(SGD{.lr = 0.1f}, wp.data(), gn.data(), nullptr, 1, 1, &one);
  EXPECT_FLOAT_EQ(wp[0], 0.95f);
}

}  // namespace
}  // namespace ember::testing
