#pragma once
// What a data-parallel fit on sharded data (FitOptions::sharded_data: each rank holds other rows)
// learns from every rank's rows: sums and unions over the ranks. Empty, the default: a process's
// own rows alone.
#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ember/data.hpp"

namespace ember {

struct RankSums {
  /// Element-wise sum over the ranks, in place.
  std::function<void(std::vector<double>&)> sum{};
  /// The union of every rank's strings.
  std::function<std::set<std::string>(const std::set<std::string>&)> unite{};

  void add(std::vector<double>& values) const {
    if (sum) sum(values);
  }
  std::set<std::string> all(const std::set<std::string>& mine) const { return unite ? unite(mine) : mine; }
};

/// Each column's mean and sum of squared deviations from it, and the rows, over every rank's rows
/// (two passes: the mean first, so that the squares are those of the whole set). With weights (one
/// per row), each row counts as many times as its weight, as if repeated: rows is their sum.
struct ColumnMoments {
  std::vector<double> mean, squares;
  double rows = 0;
};
ColumnMoments column_moments(ConstView values, const RankSums& ranks = {}, std::span<const float> weights = {});

/// ColumnStatistics::of over every rank's rows, each counted its weight's times where weights are given.
ColumnStatistics column_statistics(ConstView values, const RankSums& ranks, std::span<const float> weights = {});

}  // namespace ember
