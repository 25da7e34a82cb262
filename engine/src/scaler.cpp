#include <fmt/format.h>

#include <cmath>

#include "ember/data.hpp"
#include "ember/error.hpp"
#include "rank_sums.hpp"

namespace ember {

ColumnMoments column_moments(ConstView values, const RankSums& ranks, std::span<const float> weights) {
  const auto cols = static_cast<std::size_t>(values.cols);
  const auto weight = [&](std::int64_t r) { return weights.empty() ? 1.0 : static_cast<double>(weights[r]); };
  ColumnMoments moments;
  std::vector<double> sums(cols + 1, 0.0);  // each column's sum, then the rows
  for (std::int64_t c = 0; c < values.cols; ++c)
    for (std::int64_t r = 0; r < values.rows; ++r) sums[static_cast<std::size_t>(c)] += weight(r) * values(r, c);
  for (std::int64_t r = 0; r < values.rows; ++r) sums[cols] += weight(r);
  ranks.add(sums);
  moments.rows = sums[cols];
  for (std::size_t c = 0; c < cols; ++c) moments.mean.push_back(moments.rows > 0 ? sums[c] / moments.rows : 0.0);
  moments.squares.assign(cols, 0.0);
  for (std::int64_t c = 0; c < values.cols; ++c) {
    const double mean = moments.mean[static_cast<std::size_t>(c)];
    for (std::int64_t r = 0; r < values.rows; ++r)
      moments.squares[static_cast<std::size_t>(c)] += weight(r) * (values(r, c) - mean) * (values(r, c) - mean);
  }
  ranks.add(moments.squares);
  return moments;
}

ColumnStatistics column_statistics(ConstView values, const RankSums& ranks, std::span<const float> weights) {
  const ColumnMoments moments = column_moments(values, ranks, weights);
  ColumnStatistics stats;
  for (std::size_t c = 0; c < moments.mean.size(); ++c) {
    double std = moments.rows > 0 ? std::sqrt(moments.squares[c] / moments.rows) : 0.0;
    if (!(std > 0.0)) {
      stats.constant_columns.push_back(static_cast<std::int64_t>(c));
      std = 1.0;
    }
    stats.mean.push_back(moments.mean[c]);
    stats.std.push_back(std);
  }
  return stats;
}

ColumnStatistics ColumnStatistics::of(ConstView values) {
  return column_statistics(values, {});
}

ColumnStatistics ColumnStatistics::identity(std::int64_t columns) {
  ColumnStatistics stats;
  stats.mean.assign(static_cast<std::size_t>(columns), 0.0);
  stats.std.assign(static_cast<std::size_t>(columns), 1.0);
  return stats;
}

Matrix ColumnStatistics::standardize(ConstView values) const {
  Matrix out(values.rows, values.cols);
  standardize_into(values, out.view());
  return out;
}

void ColumnStatistics::standardize_into(ConstView values, View out) const {
  if (out.rows != values.rows || out.cols != values.cols || std::ssize(mean) < values.cols)
    throw InputError(fmt::format("standardize: ({}, {}) values into ({}, {}) with statistics of {} columns",
                                 values.rows, values.cols, out.rows, out.cols, mean.size()));
  for (std::int64_t r = 0; r < values.rows; ++r)
    for (std::int64_t c = 0; c < values.cols; ++c) {
      const auto j = static_cast<std::size_t>(c);
      out(r, c) = static_cast<float>((values(r, c) - mean[j]) / std[j]);
    }
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
