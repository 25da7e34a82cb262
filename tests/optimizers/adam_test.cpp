// Adam and AdamW: the settings the tests over every optimizer use, and their formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "ember/error.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

CpuBackend cpu;

EMBER_OPTIMIZER_EXAMPLES(Adam{.lr = 0.003f, .weight_decay = 1e-3f}, Adam{.lr = 0.01f, .weight_decay = 0.05f});
EMBER_OPTIMIZER_EXAMPLES(AdamW{.lr = 0.003f, .beta2 = 0.99f},
                         AdamW{.lr = 0.02f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f});

/// torch.optim.Adam / AdamW's update (non-capturable, non-amsgrad), computed here in float64 from
/// the documented algorithm: the values the op must reproduce, step by step.
void adam_by_the_book(std::vector<double>& w, std::vector<double>& m, std::vector<double>& v,
                      const std::vector<float>& g, double lr, double beta1, double beta2, double eps, double decay,
                      bool decoupled, int t) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    double grad = g[i];
    if (decoupled)
      w[i] *= 1 - lr * decay;
    else
      grad += decay * w[i];
    m[i] = beta1 * m[i] + (1 - beta1) * grad;
    v[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
    const double step_size = lr / (1 - std::pow(beta1, t));
    const double denominator = std::sqrt(v[i]) / std::sqrt(1 - std::pow(beta2, t)) + eps;
    w[i] -= step_size * m[i] / denominator;
  }
}

TEST(OptimizerKind, AdamAndAdamWFollowPytorchFormulas) {
  for (const bool decoupled : {false, true}) {
    const Adam adam{.lr = 0.02f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-3f, .weight_decay = 0.3f};
    std::vector<float> w{1.0f, -2.0f, 0.5f}, state(6, 0.0f);  // m, then v
    std::vector<double> w_ref{1.0, -2.0, 0.5}, m_ref(3, 0.0), v_ref(3, 0.0);
    OptimizerScalars scalars{.lr_scale = 0.5f, .step = 0};
    for (int step = 1; step <= 5; ++step) {
      // A different gradient each step, so that the moments matter.
      const std::vector<float> g{0.5f * static_cast<float>(step), -0.25f, 1e-3f / static_cast<float>(step)};
      scalars.step = step;
      if (decoupled)
        cpu.optimizer_update(AdamW{adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay}, w.data(), g.data(),
                             state.data(), 3, 3, &scalars);
      else
        cpu.optimizer_update(adam, w.data(), g.data(), state.data(), 3, 3, &scalars);
      adam_by_the_book(w_ref, m_ref, v_ref, g, 0.01, 0.8, 0.95, 1e-3, 0.3, decoupled, step);
      for (int i = 0; i < 3; ++i) {
        EXPECT_NEAR(w[i], w_ref[i], 1e-6) << "decoupled " << decoupled << " step " << step << " i " << i;
        EXPECT_NEAR(state[i], m_ref[i], 1e-6);
        EXPECT_NEAR(state[3 + i], v_ref[i], 1e-6);
      }
    }
    // The first step moves each weight by about lr against its gradient's sign, Adam's signature.
    std::vector<float> w1{1.0f}, state1{0.0f, 0.0f};
    const std::vector<float> g1{123.0f};
    const OptimizerScalars first{.lr_scale = 1.0f, .step = 1};
    const Optimizer first_step = decoupled ? Optimizer{AdamW{.lr = 0.01f, .eps = 1e-8f, .weight_decay = 0.0f}}
                                           : Optimizer{Adam{.lr = 0.01f, .eps = 1e-8f}};
    cpu.optimizer_update(first_step, w1.data(), g1.data(), state1.data(), 1, 1, &first);
    EXPECT_NEAR(w1[0], 0.99f, 1e-6);
  }
  float w = 1, g = 1, mv[2] = {0, 0};
  const OptimizerScalars unstarted{};
  EXPECT_THROW(cpu.optimizer_update(Adam{}, &w, &g, mv, 1, 1, &unstarted), Error);
}

}  // namespace
}  // namespace ember::testing
