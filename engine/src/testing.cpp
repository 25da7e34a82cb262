#include "ember/testing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "parameter_layout.hpp"

namespace ember::testing {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

double relative_error(const float* out, const float* reference, std::int64_t n) {
  double difference = 0.0, norm = 0.0, out_norm = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(out[i]) - static_cast<double>(reference[i]);
    difference += d * d;
    norm += static_cast<double>(reference[i]) * reference[i];
    out_norm += static_cast<double>(out[i]) * out[i];
  }
  if (std::isnan(difference)) return kInfinity;
  return norm == 0.0 ? std::sqrt(out_norm) : std::sqrt(difference / norm);
}

}  // namespace

double relative_error(ConstView out, ConstView reference) {
  if (out.rows != reference.rows || out.cols != reference.cols) return kInfinity;
  return relative_error(out.data, reference.data, out.size());
}

double relative_error(const Matrix& out, const Matrix& reference) {
  return relative_error(out.view(), reference.view());
}

double relative_error(const std::vector<float>& out, const std::vector<float>& reference) {
  if (out.size() != reference.size()) return kInfinity;
  return relative_error(out.data(), reference.data(), static_cast<std::int64_t>(out.size()));
}

double max_abs_difference(ConstView a, ConstView b) {
  if (a.rows != b.rows || a.cols != b.cols) return kInfinity;
  double largest = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(static_cast<double>(a.data[i]) - b.data[i]);
    if (std::isnan(d)) return kInfinity;
    largest = std::max(largest, d);
  }
  return largest;
}

bool TrainingComparison::within_tolerance() const {
  if (!(parameter_error <= tolerance) || losses_a.size() != losses_b.size()) return false;
  for (const Tensor& tensor : tensors)
    if (!(tensor.error <= tolerance)) return false;
  for (std::size_t e = 0; e < losses_a.size(); ++e) {
    const double scale = std::max(std::abs(losses_a[e]), std::numeric_limits<double>::min());
    if (!(std::abs(losses_b[e] - losses_a[e]) <= tolerance * scale)) return false;
  }
  return true;
}

std::string TrainingComparison::report() const {
  std::string text = fmt::format("parameters: relative error {:.3g} (tolerance {:.3g}){}\n", parameter_error, tolerance,
                                 within_tolerance() ? "" : ": DIFFERENT");
  for (const Tensor& tensor : tensors) text += fmt::format("{}: {:.3g}\n", tensor.name, tensor.error);
  for (std::size_t e = 0; e < std::min(losses_a.size(), losses_b.size()); ++e)
    text += fmt::format("epoch {}: loss {:.9g} vs {:.9g}\n", e + 1, losses_a[e], losses_b[e]);
  return text;
}

TrainingComparison compare_training(const std::vector<Layer>& layers, CompileOptions options, const Matrix& x,
                                    const Matrix& y, const FitOptions& fit, const TrainingSide& a,
                                    const TrainingSide& b, double tolerance, std::uint64_t seed) {
  const auto train = [&](const TrainingSide& side) {
    Sequential model(layers, seed);
    options.device = side.device;
    options.backend = side.backend;
    model.compile(options);
    const History history = model.fit(x, y, fit);
    std::vector<double> losses;
    for (const EpochRecord& record : history.epochs) losses.push_back(record.loss);
    return std::pair{std::move(model), std::move(losses)};
  };
  auto [model_a, losses_a] = train(a);
  auto [model_b, losses_b] = train(b);
  TrainingComparison comparison;
  comparison.tolerance = tolerance;
  comparison.losses_a = std::move(losses_a);
  comparison.losses_b = std::move(losses_b);
  comparison.parameter_error = relative_error(model_b.parameters(), model_a.parameters());
  const float* pa = model_a.parameters().data();
  const float* pb = model_b.parameters().data();
  for (const ParameterLayout::Tensor& tensor : ParameterLayout(layers, model_a.input_width()).tensors())
    comparison.tensors.push_back({tensor.name, relative_error(ConstView{pb + tensor.offset, 1, tensor.count},
                                                              ConstView{pa + tensor.offset, 1, tensor.count})});
  return comparison;
}

}  // namespace ember::testing
