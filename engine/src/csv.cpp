// RFC 4180 CSV reader: a header row, quoted fields ("" escapes a quote, quotes may span lines),
// CRLF or LF line ends, blank lines skipped. Every cell must be a finite number. One pass over
// the text, numbers parsed in place: memory is the file plus its values.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "ember/data.hpp"
#include "ember/error.hpp"

namespace ember {
namespace {

/// Reads the text one record at a time, without copying unquoted fields: a record's fields are
/// views into the text, or into a scratch buffer for quoted fields (whose "" become "). Tracks
/// physical lines so that errors can name them; records with no content (blank lines) are skipped.
class RecordReader {
 public:
  RecordReader(std::string_view text, const std::string& path, char delimiter)
      : text_(text), path_(path), delimiter_(delimiter) {}

  /// The next record's fields (valid until the next call); false at the end of the text.
  bool next(std::vector<std::string_view>& fields) {
    while (position_ < text_.size() || !finished_) {
      if (read_record()) {
        fields.clear();
        for (const Span& span : spans_)
          fields.emplace_back((span.in_scratch ? std::string_view(scratch_) : text_).substr(span.begin, span.size));
        return true;
      }
    }
    return false;
  }

  /// The 1-based line where the record last returned by next() starts.
  std::int64_t record_line() const { return record_line_; }

 private:
  struct Span {
    bool in_scratch;
    std::size_t begin, size;
  };

  /// Reads one physical record into spans_; false when it had no content.
  bool read_record() {
    spans_.clear();
    scratch_.clear();
    record_line_ = line_;
    bool has_content = false;
    Span field{false, position_, 0};
    bool quoted = false;  // the current field was a quoted one, now closed
    const auto end_field = [&](std::size_t end) {
      if (!field.in_scratch) field.size = end - field.begin;
      spans_.push_back(field);
    };
    while (position_ < text_.size()) {
      const char ch = text_[position_];
      if (ch == delimiter_) {
        end_field(position_++);
        field = {false, position_, 0};
        quoted = false;
        has_content = true;
      } else if (ch == '\n' || ch == '\r') {
        end_field(position_++);
        if (ch == '\r' && position_ < text_.size() && text_[position_] == '\n') ++position_;
        ++line_;
        return has_content;
      } else if (ch == '"') {
        if (quoted) throw text_after_quote();
        if (!is_blank(text_.substr(field.begin, position_ - field.begin)))
          throw InputError(
              fmt::format("{}:{}: a quote inside an unquoted field; quote the whole field and "
                          "double inner quotes (\"\")",
                          path_, line_));
        field = {true, scratch_.size(), 0};
        read_quoted();
        field.size = scratch_.size() - field.begin;
        quoted = true;
        has_content = true;
      } else {
        if (ch != ' ' && ch != '\t') {
          if (quoted) throw text_after_quote();
          has_content = true;
        }
        ++position_;
      }
    }
    end_field(position_);
    finished_ = true;
    return has_content;
  }

  /// From an opening quote to its closing quote, copying the content into scratch_.
  void read_quoted() {
    ++position_;
    while (position_ < text_.size()) {
      const char ch = text_[position_++];
      if (ch == '"') {
        if (position_ < text_.size() && text_[position_] == '"') {
          scratch_ += '"';
          ++position_;
        } else {
          return;
        }
      } else {
        if (ch == '\n') ++line_;
        scratch_ += ch;
      }
    }
    throw InputError(fmt::format("{}:{}: a quoted field is never closed; add the closing quote", path_, record_line_));
  }

  InputError text_after_quote() const {
    return InputError(fmt::format("{}:{}: text after a closing quote; quote the whole field", path_, line_));
  }

  static bool is_blank(std::string_view text) { return text.find_first_not_of(" \t") == std::string_view::npos; }

  std::string_view text_;
  const std::string& path_;
  char delimiter_;
  std::size_t position_ = 0;
  std::int64_t line_ = 1;
  std::int64_t record_line_ = 1;
  bool finished_ = false;
  std::vector<Span> spans_;
  std::string scratch_;
};

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& path, const CsvOptions& options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r')
    throw InputError(
        fmt::format("--delimiter '{}' cannot be used; pick a character such as , ; or tab", options.delimiter));
  RecordReader reader(text, path, options.delimiter);
  std::vector<std::string_view> fields;
  if (!reader.next(fields))
    throw InputError(fmt::format("{}: the file is empty; it needs a header row and at least one data row", path));

  CsvTable table;
  table.path = path;
  std::set<std::string> seen;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    std::string name(trim(fields[c]));
    if (name.empty()) name = fmt::format("column{}", c + 1);
    if (!seen.insert(name).second)
      throw InputError(
          fmt::format("{}:1:{}: the column name '{}' appears twice; column names must be unique", path, c + 1, name));
    table.header.push_back(name);
  }
  const std::size_t cols = table.header.size();

  std::vector<float> values;
  while (reader.next(fields)) {
    const std::int64_t line = reader.record_line();
    if (fields.size() != cols)
      throw InputError(fmt::format("{}:{}: {} fields, but the header has {}; every row needs one value per column",
                                   path, line, fields.size(), cols));
    table.line_of_row.push_back(line);
    for (std::size_t c = 0; c < cols; ++c) {
      const std::string_view cell = trim(fields[c]);
      const auto where = [&] { return fmt::format("{}:{}:{} (column '{}')", path, line, c + 1, table.header[c]); };
      if (cell.empty()) throw InputError(fmt::format("{}: empty cell; fill in a number or remove the row", where()));
      const char* first = cell.data();
      const char* last = cell.data() + cell.size();
      if (*first == '+') ++first;
      double value = 0.0;
      const auto [end, error] = std::from_chars(first, last, value);
      if (error == std::errc::result_out_of_range || (error == std::errc{} && end == last && !std::isfinite(value)) ||
          (error == std::errc{} && end == last && std::abs(value) > 3.4028234663852886e38))
        throw InputError(
            fmt::format("{}: '{}' is not a finite float32 number; remove or fix the value", where(), cell));
      if (error != std::errc{} || end != last)
        throw InputError(fmt::format("{}: '{}' is not a number; every cell must be numeric", where(), cell));
      values.push_back(static_cast<float>(value));
    }
  }
  const auto rows = static_cast<std::int64_t>(table.line_of_row.size());
  if (rows == 0) throw InputError(fmt::format("{}: the file has a header but no data rows", path));
  table.values = Matrix(rows, static_cast<std::int64_t>(cols));
  std::copy(values.begin(), values.end(), table.values.data());
  return table;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw InputError(fmt::format("{}: is a directory; give a CSV file", path));
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InputError(fmt::format("{}: cannot open the file ({}); check the path", path, std::strerror(errno)));
  std::string text;
  if (std::filesystem::is_regular_file(path, ignored)) {  // one read of the known size
    text.resize(static_cast<std::size_t>(std::filesystem::file_size(path, ignored)));
    file.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(file.gcount()));
  } else {  // a pipe (e.g. /dev/stdin): read to its end
    std::ostringstream contents;
    contents << file.rdbuf();
    text = std::move(contents).str();
  }
  if (file.bad()) throw InputError(fmt::format("{}: cannot read the file ({})", path, std::strerror(errno)));
  return parse_csv(text, path, options);
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
    throw InputError(
        fmt::format("{}: no feature column is left once the targets are taken out; the file needs at "
                    "least one column that is not a target",
                    table.path));
  dataset.target_names = target_names;
  dataset.x = table.columns(feature_columns);
  dataset.y = table.columns(target_columns);
  return dataset;
}

}  // namespace ember
