#pragma once
// What the plan and the model need of an optimizer beyond its settings (optimizers.hpp): its update
// over the arena's flat buffers, and whether it counts its steps.
#include <fmt/format.h>

#include <cstdint>

#include "ember/backend.hpp"
#include "ember/error.hpp"
#include "ember/optimizers.hpp"
#include "optimizer_math.hpp"

namespace ember::optimizer_part {

/// The update of all count parameters: state holds optimizer_state_names(optimizer).size() buffers,
/// region floats apart; scalars is the plan's OptimizerScalars (backend memory).
void enqueue_update(Backend& backend, const Optimizer& optimizer, float* parameters, const float* gradients,
                    float* state, std::int64_t region, std::int64_t count, OptimizerScalars* scalars);
/// Whether the update reads OptimizerScalars::step (Adam's bias correction), advanced each step.
bool counts_steps(const Optimizer& optimizer);

/// For a CPU backend's update: checks the settings and the step count, then calls body(step,
/// states, flops) with the optimizer part's step prepared in T (float, or double in the reference),
/// the number of state buffers its settings use and its flops per element.
template <typename T, typename Body>
void with_step(const Optimizer& optimizer, const OptimizerScalars& scalars, Body&& body) {
  check_optimizer(optimizer);
  optimizer_parts::visit(optimizer, [&](auto part, const auto& settings) {
    using Part = decltype(part);
    if (Part::counts_steps && scalars.step < 1)
      throw Error(fmt::format("optimizer_update: step {} is not counted from 1", scalars.step));
    body(Part::template prepare<T>(settings, static_cast<T>(scalars.lr_scale), scalars.step), Part::states(settings),
         Part::flops);
  });
}

}  // namespace ember::optimizer_part
