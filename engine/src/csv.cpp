// RFC 4180 CSV reader: a header row, quoted fields ("" escapes a quote, quotes may span lines),
// CRLF or LF line ends, blank lines skipped. Every cell must be a finite number.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "ember/data.hpp"
#include "ember/error.hpp"

namespace ember {
namespace {

struct Record {
  std::vector<std::string> fields;
  std::int64_t line = 0;  // 1-based line where the record starts
};

/// Splits text into records. Tracks physical lines so errors can name them.
std::vector<Record> split_records(const std::string& text, const std::string& path, char delimiter) {
  std::vector<Record> records;
  Record record;
  std::string field;
  bool in_quotes = false;
  bool field_was_quoted = false;
  bool record_has_content = false;
  std::int64_t line = 1;
  record.line = 1;
  auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
    field_was_quoted = false;
  };
  auto end_record = [&] {
    end_field();
    if (record_has_content) records.push_back(std::move(record));
    record = Record{};
    record_has_content = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_quotes) {
      if (ch == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (ch == '\n') ++line;
        field += ch;
      }
      continue;
    }
    if (ch == '"') {
      if (!field.empty() && field.find_first_not_of(" \t") != std::string::npos)
        throw InputError(fmt::format("{}:{}: a quote inside an unquoted field; quote the whole field and "
                                     "double inner quotes (\"\")",
                                     path, line));
      field.clear();
      in_quotes = true;
      field_was_quoted = true;
      record_has_content = true;
    } else if (ch == delimiter) {
      end_field();
      record_has_content = true;
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
      record.line = line;
    } else {
      if (field_was_quoted && ch != ' ' && ch != '\t')
        throw InputError(fmt::format("{}:{}: text after a closing quote; quote the whole field", path, line));
      if (ch != ' ' && ch != '\t') record_has_content = true;
      field += ch;
    }
  }
  if (in_quotes)
    throw InputError(fmt::format("{}:{}: a quoted field is never closed; add the closing quote", path, record.line));
  end_record();
  return records;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& path, const CsvOptions& options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r')
    throw InputError(fmt::format("--delimiter '{}' cannot be used; pick a character such as , ; or tab",
                                 options.delimiter));
  std::vector<Record> records = split_records(text, path, options.delimiter);
  if (records.empty())
    throw InputError(fmt::format("{}: the file is empty; it needs a header row and at least one data row", path));

  CsvTable table;
  table.path = path;
  std::set<std::string> seen;
  for (std::size_t c = 0; c < records[0].fields.size(); ++c) {
    std::string name = trim(records[0].fields[c]);
    if (name.empty()) name = fmt::format("column{}", c + 1);
    if (!seen.insert(name).second)
      throw InputError(fmt::format("{}:1:{}: the column name '{}' appears twice; column names must be unique", path,
                                   c + 1, name));
    table.header.push_back(name);
  }
  const std::int64_t rows = static_cast<std::int64_t>(records.size()) - 1;
  const std::int64_t cols = static_cast<std::int64_t>(table.header.size());
  if (rows == 0) throw InputError(fmt::format("{}: the file has a header but no data rows", path));

  table.values = Matrix(rows, cols);
  table.line_of_row.reserve(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const Record& record = records[static_cast<std::size_t>(r + 1)];
    table.line_of_row.push_back(record.line);
    if (static_cast<std::int64_t>(record.fields.size()) != cols)
      throw InputError(fmt::format("{}:{}: {} fields, but the header has {}; every row needs one value per column",
                                   path, record.line, record.fields.size(), cols));
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::string cell = trim(record.fields[static_cast<std::size_t>(c)]);
      const auto where = [&] {
        return fmt::format("{}:{}:{} (column '{}')", path, record.line, c + 1, table.header[static_cast<std::size_t>(c)]);
      };
      if (cell.empty()) throw InputError(fmt::format("{}: empty cell; fill in a number or remove the row", where()));
      const char* first = cell.data();
      const char* last = cell.data() + cell.size();
      if (*first == '+') ++first;
      double value = 0.0;
      const auto [end, error] = std::from_chars(first, last, value);
      if (error == std::errc::result_out_of_range || (error == std::errc{} && end == last && !std::isfinite(value)) ||
          (error == std::errc{} && end == last && std::abs(value) > 3.4028234663852886e38))
        throw InputError(fmt::format("{}: '{}' is not a finite float32 number; remove or fix the value", where(), cell));
      if (error != std::errc{} || end != last)
        throw InputError(fmt::format("{}: '{}' is not a number; every cell must be numeric", where(), cell));
      table.values(r, c) = static_cast<float>(value);
    }
  }
  return table;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw InputError(fmt::format("{}: is a directory; give a CSV file", path));
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InputError(fmt::format("{}: cannot open the file ({}); check the path", path, std::strerror(errno)));
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) throw InputError(fmt::format("{}: cannot read the file ({})", path, std::strerror(errno)));
  return parse_csv(contents.str(), path, options);
}

std::int64_t CsvTable::column_index(const std::string& name) const {
  const auto found = std::find(header.begin(), header.end(), name);
  if (found == header.end()) {
    std::string names;
    for (const auto& column : header) names += (names.empty() ? "" : ", ") + column;
    throw InputError(fmt::format("{}: no column named '{}'; the columns are: {}", path, name, names));
  }
  return found - header.begin();
}

Matrix CsvTable::columns(const std::vector<std::int64_t>& indices) const {
  Matrix out(values.rows(), static_cast<std::int64_t>(indices.size()));
  for (std::int64_t r = 0; r < values.rows(); ++r)
    for (std::size_t c = 0; c < indices.size(); ++c) out(r, static_cast<std::int64_t>(c)) = values(r, indices[c]);
  return out;
}

Dataset split_features_targets(const CsvTable& table, const std::vector<std::string>& target_names) {
  if (target_names.empty()) throw InputError("no target column given; name one with --target");
  std::vector<std::int64_t> target_columns;
  for (const std::string& name : target_names) {
    const std::int64_t index = table.column_index(name);
    if (std::find(target_columns.begin(), target_columns.end(), index) != target_columns.end())
      throw InputError(fmt::format("target column '{}' is named twice in --target", name));
    target_columns.push_back(index);
  }
  std::vector<std::int64_t> feature_columns;
  Dataset dataset;
  for (std::int64_t c = 0; c < static_cast<std::int64_t>(table.header.size()); ++c) {
    if (std::find(target_columns.begin(), target_columns.end(), c) != target_columns.end()) continue;
    feature_columns.push_back(c);
    dataset.feature_names.push_back(table.header[static_cast<std::size_t>(c)]);
  }
  if (feature_columns.empty())
    throw InputError(fmt::format("{}: no feature column is left once the targets are taken out; the file needs at "
                                 "least one column that is not a target",
                                 table.path));
  dataset.target_names = target_names;
  dataset.x = table.columns(feature_columns);
  dataset.y = table.columns(target_columns);
  return dataset;
}

}  // namespace ember
