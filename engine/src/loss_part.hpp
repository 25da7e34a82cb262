#pragma once
// What the plan and the model need of a loss (losses.hpp): the width of the targets it reads, the
// metric sums it accumulates on the backend, its op, and the epoch's figures those sums give.
#include <cstdint>
#include <optional>
#include <vector>

#include "ember/backend.hpp"
#include "ember/losses.hpp"

namespace ember::loss_part {

/// Target columns per row: the outputs for regression, one class index for classification.
std::int64_t target_width(const Loss& loss, std::int64_t outputs);
/// Floats of metric sums per set of rows (training or validation): 3 per output for regression
/// (loss, squared and absolute errors), 2 for classification (loss, rows predicted right).
std::int64_t sums_width(const Loss& loss, std::int64_t outputs);
/// The loss's op: its sums into sums and, when given, its gradient.
void enqueue(Backend& backend, const Loss& loss, ConstView prediction, ConstView target, float* sums,
             std::optional<View> gradient);

struct Figures {
  double loss = 0;                 // the objective, the mean over the rows (and outputs)
  std::optional<double> mae, r2;   // regression, in original units (mae) / averaged over outputs (r2)
  std::optional<double> accuracy;  // classification
};
/// An epoch's figures from its sums over rows rows. Regression: scale is the targets' standard
/// deviations (the MAE in original units), totals each target's sum of squared deviations in the
/// units the sums are in (R^2, as scikit-learn's r2_score).
Figures figures(const Loss& loss, const std::vector<float>& sums, std::int64_t rows, const std::vector<double>& scale,
                const std::vector<double>& totals);

}  // namespace ember::loss_part
