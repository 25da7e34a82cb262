#include <cmath>

#include "ember/data.hpp"

namespace ember {

ColumnStatistics ColumnStatistics::of(ConstView values) {
  ColumnStatistics stats;
  const std::int64_t rows = values.rows;
  for (std::int64_t c = 0; c < values.cols; ++c) {
    double sum = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) sum += values(r, c);
    const double mean = rows > 0 ? sum / static_cast<double>(rows) : 0.0;
    double squares = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) squares += (values(r, c) - mean) * (values(r, c) - mean);
    double std = rows > 0 ? std::sqrt(squares / static_cast<double>(rows)) : 0.0;
    if (!(std > 0.0)) {
      stats.constant_columns.push_back(c);
      std = 1.0;
    }
    stats.mean.push_back(mean);
    stats.std.push_back(std);
  }
  return stats;
}

ColumnStatistics ColumnStatistics::identity(std::int64_t columns) {
  ColumnStatistics stats;
  stats.mean.assign(static_cast<std::size_t>(columns), 0.0);
  stats.std.assign(static_cast<std::size_t>(columns), 1.0);
  return stats;
}

Matrix ColumnStatistics::standardize(ConstView values) const {
  Matrix out(values.rows, values.cols);
  for (std::int64_t r = 0; r < values.rows; ++r)
    for (std::int64_t c = 0; c < values.cols; ++c) {
      const auto j = static_cast<std::size_t>(c);
      out(r, c) = static_cast<float>((values(r, c) - mean[j]) / std[j]);
    }
  return out;
}

Matrix ColumnStatistics::restore(const Matrix& values) const {
  Matrix out(values.rows(), values.cols());
  for (std::int64_t r = 0; r < values.rows(); ++r)
    for (std::int64_t c = 0; c < values.cols(); ++c) {
      const auto j = static_cast<std::size_t>(c);
      out(r, c) = static_cast<float>(values(r, c) * std[j] + mean[j]);
    }
  return out;
}

}  // namespace ember
