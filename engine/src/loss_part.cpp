#include "loss_part.hpp"

namespace ember::loss_part {

std::int64_t target_width(const Loss& loss, std::int64_t outputs) {
  return is_classification(loss) ? 1 : outputs;
}

std::int64_t sums_width(const Loss& loss, std::int64_t outputs) {
  return is_classification(loss) ? 2 : 3 * outputs;
}

void enqueue(Backend& backend, const Loss& loss, ConstView prediction, ConstView target, float* sums,
             std::optional<View> gradient) {
  if (const auto* cross_entropy = std::get_if<CrossEntropy>(&loss))
    return backend.cross_entropy_loss(prediction, target, cross_entropy->label_smoothing, sums, gradient);
  const auto* huber = std::get_if<Huber>(&loss);
  backend.regression_loss(prediction, target, huber != nullptr ? std::optional<float>(huber->delta) : std::nullopt,
                          sums, gradient);
}

Figures figures(const Loss& loss, const std::vector<float>& sums, std::int64_t rows, const std::vector<double>& scale,
                const std::vector<double>& totals) {
  Figures out;
  const auto n = static_cast<double>(rows);
  if (is_classification(loss)) {
    out.loss = sums[0] / n;
    out.accuracy = sums[1] / n;
    return out;
  }
  const std::size_t cols = scale.size();
  const double elements = n * static_cast<double>(cols);
  double mae = 0.0, r2 = 0.0;
  for (std::size_t c = 0; c < cols; ++c) {
    out.loss += sums[c] / elements;
    mae += scale[c] * sums[2 * cols + c] / elements;
    // scikit-learn's r2_score: a constant target scores 1 when predicted exactly, else 0.
    const double residual = sums[cols + c];
    r2 += (totals[c] > 0.0 ? 1.0 - residual / totals[c] : (residual == 0.0 ? 1.0 : 0.0)) / static_cast<double>(cols);
  }
  out.mae = mae;
  out.r2 = r2;
  return out;
}

}  // namespace ember::loss_part
