#pragma once
// CSV input (RFC 4180) and standardization. Every malformed input throws InputError with one line
// naming the file, line and column and what to do.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {

/// How read_csv reads a file. Every column is read unless columns or skip_columns say otherwise; a
/// column is numbers unless it holds a cell that is not a number, then text (see CsvColumn).
struct CsvOptions {
  char delimiter = ',';
  /// When not '\0', lines whose first non-blank character is this one are skipped (comments, as
  /// in pandas' read_csv(comment=...) but whole lines only: "#N/A" inside a row stays a cell).
  char comment = '\0';
  /// When not empty, only these columns are read; the others are skipped without being parsed,
  /// so they may hold anything. Each must exist in the header.
  std::vector<std::string> columns{};
  /// Columns skipped without being parsed (ids, free text). Each must exist in the header.
  std::vector<std::string> skip_columns{};
  /// Columns read as text even when every cell is a number (categories such as zip codes, whose
  /// spelling matters: "02134" stays "02134").
  std::vector<std::string> text_columns{};
  /// Data-parallel training on a file larger than one machine's memory (docs/distributed.md):
  /// read_csv reads the header and only the shard-th (from 0) of shards line-aligned byte ranges of
  /// the rows, so that every row belongs to exactly one shard. Needs a file, not a pipe, whose
  /// records each fit on one line (no line break inside a quoted field).
  int shard = 0;
  int shards = 1;
};

enum class ColumnType { number, text, skipped };

/// One column of a CsvTable. A cell is missing when it is empty or one of the tokens `NA`, `N/A`,
/// `n/a`, `#N/A`, `<NA>`, `NaN`, `nan`, `-NaN`, `-nan`, `NULL`, `null`, `None` (pandas' defaults,
/// docs/formats.md).
struct CsvColumn {
  std::string name;
  ColumnType type = ColumnType::number;
  std::vector<float> numbers{};       // number: one per row, NaN where the cell is missing
  std::vector<std::int32_t> codes{};  // text: one per row, an index into labels, -1 where missing
  std::vector<std::string> labels{};  // text: the distinct values, in order of first appearance

  bool missing(std::int64_t row) const;
  /// The cell as text: the label, the number in its shortest round-trip form, or "" when missing.
  std::string cell(std::int64_t row) const;
};

/// A CSV table: the header's columns in file order, read as numbers, text or skipped.
struct CsvTable {
  std::string path;
  std::vector<CsvColumn> columns;
  std::vector<std::int64_t> line_of_row;  // 1-based file line where each data row starts
  /// Set when the file looks like it uses another delimiter; errors about its columns append it.
  std::string delimiter_hint;

  std::int64_t rows() const { return static_cast<std::int64_t>(line_of_row.size()); }
  std::vector<std::string> names() const;
  /// Index of the column called name; throws InputError naming the available columns (and the
  /// purpose, e.g. " to skip", after the missing name).
  std::int64_t column_index(const std::string& name, const char* purpose = "") const;
  const CsvColumn& column(const std::string& name) const {
    return columns[static_cast<std::size_t>(column_index(name))];
  }
  /// "path:line:col (column 'name')" for a cell, as errors name it.
  std::string where(std::int64_t row, std::int64_t column) const;
};

/// Reads and validates a CSV file (see docs/formats.md). Throws InputError.
CsvTable read_csv(const std::string& path, const CsvOptions& options = {});
/// Parses CSV text; path is only used in messages.
CsvTable parse_csv(std::string_view text, const std::string& path, const CsvOptions& options = {});

/// Features and targets split out of a table of numbers.
struct Dataset {
  Matrix x;  // (rows, features)
  Matrix y;  // (rows, targets)
  std::vector<std::string> feature_names;
  std::vector<std::string> target_names;
};

/// Targets are the named columns, features every other column; every cell must be a number.
/// Throws InputError when a target is unknown, no feature column is left, or a cell is text or
/// missing. (Sequential::fit on a CsvTable also handles text and missing cells.)
Dataset split_features_targets(const CsvTable& table, const std::vector<std::string>& target_names);

/// Writes content to path through a temporary file in the same folder, synced to the disk and then
/// renamed, so that path holds either its old content or all of the new, never a part. Throws
/// InputError when the folder is missing or not writable, Error when the disk fails.
void write_file_atomically(const std::string& path, std::string_view content);
/// Throws InputError when write_file_atomically could not create path (a missing or read-only
/// folder, path a folder), by creating and removing a temporary file there: checked before long
/// work, so that the work is not lost.
void check_writable(const std::string& path);

/// text with control characters escaped (as `\\t`, `\\n`, `\\r`, `\\xNN`), for messages that quote input.
std::string printable(std::string_view text);

/// Per-column mean and standard deviation (population), as float64.
struct ColumnStatistics {
  std::vector<double> mean;
  std::vector<double> std;  // a constant column gets 1, so it maps to 0
  std::vector<std::int64_t> constant_columns;

  static ColumnStatistics of(ConstView values);
  static ColumnStatistics identity(std::int64_t columns);
  /// (value - mean) / std, column by column.
  Matrix standardize(ConstView values) const;
  /// The same into out, which has values' shape (InputError otherwise).
  void standardize_into(ConstView values, View out) const;
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
