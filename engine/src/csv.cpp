// RFC 4180 CSV reader: a header row, quoted fields ("" escapes a quote, quotes may span lines),
// CRLF or LF line ends, blank lines skipped, a UTF-8 byte-order mark ignored. A column is numbers
// (finite float32) until a cell is text, then text (interned labels). One pass over the text,
// numbers parsed in place: memory is the file plus its values.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "cells.hpp"
#include "ember/data.hpp"
#include "ember/error.hpp"

namespace ember {

bool cells::is_missing(std::string_view cell) {
  return std::find(std::begin(kMissingTokens), std::end(kMissingTokens), cell) != std::end(kMissingTokens);
}

cells::Parsed cells::parse_number(std::string_view cell, float& out) {
  const char* first = cell.data();
  const char* last = cell.data() + cell.size();
  if (first != last && *first == '+') ++first;
  double value = 0.0;
  const auto [end, error] = std::from_chars(first, last, value);
  if (error == std::errc::result_out_of_range) return Parsed::out_of_range;
  if (error != std::errc{} || end != last) return Parsed::not_a_number;
  if (!std::isfinite(value) || std::abs(value) > static_cast<double>(std::numeric_limits<float>::max()))
    return Parsed::out_of_range;
  out = static_cast<float>(value);
  return Parsed::number;
}

namespace {

/// Reads the text one record at a time, without copying unquoted fields: a record's fields are
/// views into the text, or into a scratch buffer for quoted fields (whose "" become "). Tracks
/// physical lines so that errors can name them; records with no content (blank lines) are skipped.
class RecordReader {
 public:
  RecordReader(std::string_view text, const std::string& path, char delimiter, char comment = '\0',
               std::string hint = {})
      : text_(text), path_(path), delimiter_(delimiter), comment_(comment), hint_(std::move(hint)) {}

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
  /// Counts lines of the file that the text leaves out (those before a shard's rows).
  void skip_lines(std::int64_t lines) { line_ += lines; }

 private:
  struct Span {
    bool in_scratch;
    std::size_t begin, size;
  };

  /// Reads one physical record into spans_; false when it had no content (or was a comment).
  bool read_record() {
    spans_.clear();
    scratch_.clear();
    record_line_ = line_;
    if (comment_ != '\0' && skip_comment()) return false;
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
                          "double inner quotes (\"\"){}",
                          path_, line_, hint_));
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
    throw InputError(
        fmt::format("{}:{}: a quoted field is never closed; add the closing quote{}", path_, record_line_, hint_));
  }

  InputError text_after_quote() const {
    return InputError(fmt::format("{}:{}: text after a closing quote; quote the whole field{}", path_, line_, hint_));
  }

  /// A line whose first non-blank character is the comment character: skipped to its end.
  bool skip_comment() {
    std::size_t at = position_;
    while (at < text_.size() && (text_[at] == ' ' || text_[at] == '\t')) ++at;
    if (at >= text_.size() || text_[at] != comment_) return false;
    while (at < text_.size() && text_[at] != '\n' && text_[at] != '\r') ++at;
    if (at >= text_.size()) {
      position_ = at;
      finished_ = true;
      return true;
    }
    position_ = at + (text_[at] == '\r' && at + 1 < text_.size() && text_[at + 1] == '\n' ? 2 : 1);
    ++line_;
    return true;
  }

  static bool is_blank(std::string_view text) { return text.find_first_not_of(" \t") == std::string_view::npos; }

  std::string_view text_;
  const std::string& path_;
  char delimiter_;
  char comment_;
  std::string hint_;  // appended to errors: what the header line suggests (another delimiter, a comment)
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

std::string delimiter_name(char delimiter) {
  return delimiter == '\t' ? "tab" : fmt::format("'{}'", printable(std::string_view(&delimiter, 1)));
}

/// What the first line suggests when it looks like another format than options describe: a
/// comment (a first line starting with '#'), or another delimiter (the line holds a likely
/// delimiter but not the given one, outside quotes). Errors append it; it is found from the raw
/// line, before any row is parsed, so that whatever the rows hold the hint comes first.
std::string header_hint(std::string_view text, const CsvOptions& options) {
  std::string_view line = text.substr(0, text.find_first_of("\r\n"));
  const std::string_view start = line.substr(std::min(line.size(), line.find_first_not_of(" \t")));
  if (options.comment == '\0' && start.starts_with('#'))
    return "; the first line starts with '#': if it is a comment, skip such lines with CsvOptions::comment '#'";
  std::string outside;  // the line without its quoted parts
  bool quoted = false;
  for (const char ch : line) {
    if (ch == '"')
      quoted = !quoted;
    else if (!quoted)
      outside += ch;
  }
  if (outside.find(options.delimiter) != std::string::npos) return {};
  for (const char candidate : {';', '\t', '|', ','})
    if (candidate != options.delimiter && outside.find(candidate) != std::string::npos)
      return fmt::format(
          "; the header is one field holding {0}: the file looks {0}-separated, so use CsvOptions::delimiter {1}",
          delimiter_name(candidate), candidate == '\t' ? "tab" : std::string(1, candidate));
  return {};
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

/// A text column being read: its labels interned as they come.
class TextColumnBuilder {
 public:
  explicit TextColumnBuilder(CsvColumn& column) : column_(column) {}
  void add(std::string_view cell) {
    if (cells::is_missing(cell)) {
      column_.codes.push_back(-1);
      return;
    }
    const auto found = index_.find(cell);
    if (found != index_.end()) {
      column_.codes.push_back(found->second);
      return;
    }
    const auto code = static_cast<std::int32_t>(column_.labels.size());
    column_.labels.emplace_back(cell);
    index_.emplace(column_.labels.back(), code);
    column_.codes.push_back(code);
  }

 private:
  CsvColumn& column_;
  std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> index_;
};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (ch == '\t')
      out += "\\t";
    else if (ch == '\n')
      out += "\\n";
    else if (ch == '\r')
      out += "\\r";
    else if (byte < 0x20 || byte == 0x7f)
      out += fmt::format("\\x{:02x}", byte);
    else
      out += ch;
  }
  return out;
}

bool CsvColumn::missing(std::int64_t row) const {
  const auto r = static_cast<std::size_t>(row);
  if (type == ColumnType::number) return std::isnan(numbers[r]);
  if (type == ColumnType::text) return codes[r] < 0;
  return true;
}

std::string CsvColumn::cell(std::int64_t row) const {
  if (missing(row)) return {};
  const auto r = static_cast<std::size_t>(row);
  if (type == ColumnType::number) return fmt::format("{}", numbers[r]);
  return labels[static_cast<std::size_t>(codes[r])];
}

namespace {

/// The header and rows of text; lines_skipped: the file's lines between the header and the first
/// row of text (a shard's), so that messages name the file's lines.
CsvTable parse_rows(std::string_view text, const std::string& path, const CsvOptions& options,
                    std::int64_t lines_skipped) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r' || options.delimiter == '\0')
    throw InputError(fmt::format("CsvOptions::delimiter {} cannot be used; pick a character such as , ; or tab",
                                 delimiter_name(options.delimiter)));
  if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF"))
    throw InputError(fmt::format("{}: the file is UTF-16 encoded; save it as UTF-8 (\"CSV UTF-8\" in Excel)", path));
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte-order mark, as Excel writes
  if (options.comment == '"' || options.comment == '\n' || options.comment == '\r' ||
      (options.comment != '\0' && options.comment == options.delimiter))
    throw InputError(fmt::format("CsvOptions::comment {} cannot be used; pick a character such as #",
                                 delimiter_name(options.comment)));
  // Text files hold no NUL byte; a model, an archive or an image does (in its first few kilobytes).
  if (text.substr(0, 65536).find('\0') != std::string_view::npos)
    throw InputError(fmt::format("{}: a binary file, not CSV text (it holds NUL bytes); give a CSV file", path));
  // The header line: the first one that is not a comment.
  std::string_view header_text = text;
  if (options.comment != '\0') {
    std::size_t offset = 0;
    while (offset < text.size()) {
      const std::size_t at = text.find_first_not_of(" \t\r\n", offset);
      if (at == std::string_view::npos || text[at] != options.comment) {
        offset = at == std::string_view::npos ? text.size() : at;
        break;
      }
      offset = text.find('\n', at);
      offset = offset == std::string_view::npos ? text.size() : offset + 1;
    }
    header_text = text.substr(offset);
  }
  const std::string hint = header_hint(header_text, options);
  RecordReader reader(text, path, options.delimiter, options.comment, hint);
  std::vector<std::string_view> fields;
  if (!reader.next(fields))
    throw InputError(fmt::format("{}: the file is empty; it needs a header row and at least one data row", path));

  CsvTable table;
  table.path = path;
  std::set<std::string> seen;
  std::vector<std::string> header;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    std::string name(trim(fields[c]));
    if (name.empty()) name = fmt::format("column{}", c + 1);
    if (!seen.insert(name).second)
      throw InputError(fmt::format("{}:1:{}: the column name '{}' appears twice; column names must be unique", path,
                                   c + 1, printable(name)));
    header.push_back(name);
  }
  reader.skip_lines(lines_skipped);
  table.delimiter_hint = hint;
  for (const std::string& name : header) table.columns.push_back({.name = name});
  for (const auto& [list, purpose] :
       {std::pair{&options.columns, " to read"}, std::pair{&options.skip_columns, " to skip"},
        std::pair{&options.text_columns, " to read as text"}})
    for (const std::string& name : *list)
      if (!contains(header, name)) table.column_index(name, purpose);
  for (CsvColumn& column : table.columns) {
    if ((!options.columns.empty() && !contains(options.columns, column.name)) ||
        contains(options.skip_columns, column.name))
      column.type = ColumnType::skipped;
    else if (contains(options.text_columns, column.name))
      column.type = ColumnType::text;
  }

  // One pass: numbers parsed in place; a number column that meets text becomes a text column,
  // re-read in a second pass when numbers came before (their spelling is kept, "007" stays "007").
  const std::size_t cols = header.size();
  std::vector<std::unique_ptr<TextColumnBuilder>> text_builders(cols);
  for (std::size_t c = 0; c < cols; ++c)
    if (table.columns[c].type == ColumnType::text)
      text_builders[c] = std::make_unique<TextColumnBuilder>(table.columns[c]);
  std::vector<bool> reread(cols, false);
  std::vector<bool> has_number(cols, false);
  while (reader.next(fields)) {
    const std::int64_t line = reader.record_line();
    if (fields.size() != cols)
      throw InputError(fmt::format("{}:{}: {} fields, but the header has {}; every row needs one value per column{}",
                                   path, line, fields.size(), cols, table.delimiter_hint));
    table.line_of_row.push_back(line);
    const auto row = static_cast<std::int64_t>(table.line_of_row.size()) - 1;
    for (std::size_t c = 0; c < cols; ++c) {
      CsvColumn& column = table.columns[c];
      if (column.type == ColumnType::skipped || reread[c]) continue;
      const std::string_view cell = trim(fields[c]);
      if (column.type == ColumnType::text) {
        text_builders[c]->add(cell);
        continue;
      }
      if (cells::is_missing(cell)) {
        column.numbers.push_back(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      float value = 0.0f;
      const cells::Parsed parsed = cells::parse_number(cell, value);
      if (parsed == cells::Parsed::number) {
        column.numbers.push_back(value);
        has_number[c] = true;
      } else if (parsed == cells::Parsed::out_of_range) {
        throw InputError(
            fmt::format("{}:{}:{} (column '{}'): '{}' is not a finite float32 number; remove or fix the value", path,
                        line, c + 1, printable(column.name), printable(cell)));
      } else {  // text: the column is a text column
        column.type = ColumnType::text;
        column.numbers = {};
        if (has_number[c]) {
          reread[c] = true;
        } else {  // only missing cells so far
          column.codes.assign(static_cast<std::size_t>(row), -1);
          text_builders[c] = std::make_unique<TextColumnBuilder>(column);
          text_builders[c]->add(cell);
        }
      }
    }
  }
  if (table.line_of_row.empty())
    throw InputError(options.shards > 1
                         ? fmt::format("{}: shard {} of {} holds no rows; the file has too few rows for {} shards",
                                       path, options.shard + 1, options.shards, options.shards)
                         : fmt::format("{}: the file has a header but no data rows", path));
  if (std::find(reread.begin(), reread.end(), true) != reread.end()) {
    RecordReader again(text, path, options.delimiter, options.comment);
    again.next(fields);  // the header
    for (std::size_t c = 0; c < cols; ++c)
      if (reread[c]) text_builders[c] = std::make_unique<TextColumnBuilder>(table.columns[c]);
    while (again.next(fields))
      for (std::size_t c = 0; c < cols; ++c)
        if (reread[c]) text_builders[c]->add(trim(fields[c]));
  }
  return table;
}

/// The offset of the first line that starts at or after offset (a line starts after a '\n').
std::uint64_t line_start_from(std::ifstream& file, std::uint64_t offset, std::uint64_t size) {
  if (offset == 0 || offset >= size) return std::min(offset, size);
  file.clear();
  file.seekg(static_cast<std::streamoff>(offset - 1));
  char buffer[4096];
  std::uint64_t at = offset - 1;
  while (at < size) {
    file.read(buffer, sizeof buffer);
    const auto got = static_cast<std::uint64_t>(file.gcount());
    if (got == 0) break;
    if (const void* newline = std::memchr(buffer, '\n', got))
      return at + static_cast<std::uint64_t>(static_cast<const char*>(newline) - buffer) + 1;
    at += got;
  }
  return size;
}

/// The header and one shard's rows: the shard is the line-aligned part of the rows' bytes from
/// shard/shards to (shard + 1)/shards of them.
CsvTable read_shard(std::ifstream& file, const std::string& path, const CsvOptions& options) {
  if (options.shard < 0 || options.shard >= options.shards)
    throw InputError(fmt::format("CsvOptions::shard {} is not one of the {} shards (0 to {})", options.shard,
                                 options.shards, options.shards - 1));
  if (options.comment != '\0')  // a shard starts after the header's line, which must be the first
    throw InputError("CsvOptions::comment: a file read in shards cannot hold comment lines; remove them first");
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw InputError(fmt::format("{}: reading a shard needs a file, not a pipe or a device", path));
  const auto size = static_cast<std::uint64_t>(std::filesystem::file_size(path, error));
  const std::uint64_t rows_start = line_start_from(file, 1, size);  // after the header's line
  const std::uint64_t rows = size - rows_start;
  const auto boundary = [&](int shard) {
    return line_start_from(
        file, rows_start + rows * static_cast<std::uint64_t>(shard) / static_cast<std::uint64_t>(options.shards), size);
  };
  const std::uint64_t begin = boundary(options.shard), end = boundary(options.shard + 1);
  // The header, the lines before the shard (counted, not kept), then the shard's bytes.
  std::string text(static_cast<std::size_t>(rows_start + (end - begin)), '\0');
  file.clear();
  file.seekg(0);
  file.read(text.data(), static_cast<std::streamsize>(rows_start));
  std::int64_t lines_before = 0;
  std::vector<char> buffer(1 << 20);
  for (std::uint64_t at = rows_start; at < begin;) {
    const std::uint64_t chunk = std::min<std::uint64_t>(buffer.size(), begin - at);
    file.read(buffer.data(), static_cast<std::streamsize>(chunk));
    lines_before += std::count(buffer.data(), buffer.data() + chunk, '\n');
    at += chunk;
  }
  file.read(text.data() + rows_start, static_cast<std::streamsize>(end - begin));
  if (!file) throw InputError(fmt::format("{}: cannot read the file ({})", path, std::strerror(errno)));
  return parse_rows(text, path, options, lines_before);
}

}  // namespace

CsvTable parse_csv(std::string_view text, const std::string& path, const CsvOptions& options) {
  if (options.shards != 1)
    throw InputError("CsvOptions::shards is for read_csv, which reads one shard of a file; parse_csv reads all text");
  return parse_rows(text, path, options, 0);
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw InputError(fmt::format("{}: is a directory; give a CSV file", path));
  if (options.shards < 1) throw InputError(fmt::format("CsvOptions::shards {}: at least 1", options.shards));
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InputError(fmt::format("{}: cannot open the file ({}); check the path", path, std::strerror(errno)));
  if (options.shards > 1) return read_shard(file, path, options);
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
  return parse_rows(text, path, options, 0);
}

std::vector<std::string> CsvTable::names() const {
  std::vector<std::string> out;
  for (const CsvColumn& column : columns) out.push_back(column.name);
  return out;
}

std::int64_t CsvTable::column_index(const std::string& name, const char* purpose) const {
  const auto found = std::find_if(columns.begin(), columns.end(), [&](const CsvColumn& c) { return c.name == name; });
  if (found == columns.end()) {
    std::string list;
    for (const auto& column : columns) list += (list.empty() ? "" : ", ") + printable(column.name);
    throw InputError(fmt::format("{}: no column named '{}'{}; the columns are: {}{}", path, printable(name), purpose,
                                 list, delimiter_hint));
  }
  return found - columns.begin();
}

std::string CsvTable::where(std::int64_t row, std::int64_t column) const {
  return fmt::format("{}:{}:{} (column '{}')", path, line_of_row[static_cast<std::size_t>(row)], column + 1,
                     printable(columns[static_cast<std::size_t>(column)].name));
}

}  // namespace ember
