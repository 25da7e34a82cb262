#pragma once
// Training-step timing behind `ember bench`: MLPs of a given depth and width on random data, timed
// as the median over repeated runs after a warm-up.
#include <cstdint>
#include <vector>

#include "ember/backend.hpp"

namespace ember::bench {

struct StepCase {
  std::int64_t depth = 4;   // Dense layers, the last one with one output
  std::int64_t width = 64;  // units of every hidden layer, and the input width
  std::int64_t batch = 32;
};

struct StepTiming {
  double median_step_ms = 0;     // wall time per step, device work included
  double host_us_per_step = 0;   // host time to enqueue one step (equals the step on the CPU)
  std::int64_t parameters = 0;
  std::int64_t runs = 0;
};

/// Times training steps (forward, backward, SGD with momentum) on backend; runs >= 20.
StepTiming time_training_step(Backend& backend, const StepCase& step, std::int64_t runs = 21,
                              std::int64_t steps_per_run = 10);

}  // namespace ember::bench
