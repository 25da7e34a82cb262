#pragma once
// What the plan and the model need of an optimizer beyond its settings (optimizers.hpp): its update
// over the arena's flat buffers, and whether it counts its steps.
#include <cstdint>

#include "ember/backend.hpp"
#include "ember/optimizers.hpp"

namespace ember::optimizer_part {

/// The update of all count parameters: state holds optimizer_state_names(optimizer).size() buffers,
/// region floats apart; scalars is the plan's OptimizerScalars (backend memory).
void enqueue_update(Backend& backend, const Optimizer& optimizer, float* parameters, const float* gradients,
                    float* state, std::int64_t region, std::int64_t count, OptimizerScalars* scalars);
/// Whether the update reads OptimizerScalars::step (Adam's bias correction), advanced each step.
bool counts_steps(const Optimizer& optimizer);

}  // namespace ember::optimizer_part
