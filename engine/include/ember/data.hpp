#pragma once
// CSV input (RFC 4180) and standardization. Every malformed input throws InputError with one line
// naming the file, line and column and what to do.
#include <cstdint>
#include <string>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {

struct CsvOptions {
  char delimiter = ',';
};

/// A numeric CSV table: a header row of column names, then rows of finite numbers.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  Matrix values;  // (rows, header.size())
  std::vector<std::int64_t> line_of_row;  // 1-based file line where each data row starts

  /// Index of the column called name; throws InputError naming the available columns.
  std::int64_t column_index(const std::string& name) const;
  /// The listed columns, in order, as a matrix.
  Matrix columns(const std::vector<std::int64_t>& indices) const;
};

/// Reads and validates a CSV file (see docs/formats.md). Throws InputError.
CsvTable read_csv(const std::string& path, const CsvOptions& options = {});
/// Parses CSV text; path is only used in messages.
CsvTable parse_csv(const std::string& text, const std::string& path, const CsvOptions& options = {});

/// Features and targets split out of a table.
struct Dataset {
  Matrix x;  // (rows, features)
  Matrix y;  // (rows, targets)
  std::vector<std::string> feature_names;
  std::vector<std::string> target_names;
};

/// Targets are the named columns, features every other column. Throws InputError when a target is
/// unknown or no feature column is left.
Dataset split_features_targets(const CsvTable& table, const std::vector<std::string>& target_names);

/// Per-column mean and standard deviation (population), as float64.
struct ColumnStatistics {
  std::vector<double> mean;
  std::vector<double> std;  // a constant column gets 1, so it maps to 0
  std::vector<std::int64_t> constant_columns;

  static ColumnStatistics of(const Matrix& values);
  static ColumnStatistics identity(std::int64_t columns);
  /// (value - mean) / std, column by column.
  Matrix standardize(const Matrix& values) const;
  /// value * std + mean, column by column.
  Matrix restore(const Matrix& values) const;
  bool operator==(const ColumnStatistics&) const = default;
};

/// The statistics a model standardizes its inputs and targets with; they travel with the model.
struct Scaler {
  bool enabled = false;
  ColumnStatistics x;
  ColumnStatistics y;
  bool operator==(const Scaler&) const = default;
};

}  // namespace ember
