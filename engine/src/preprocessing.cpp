#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "cells.hpp"
#include "data_parallel.hpp"
#include "ember/error.hpp"
#include "preprocessing_ops.hpp"

namespace ember {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + printable(name);
  return text.empty() ? "none" : text;
}

/// "1,5" is a number written with a decimal comma.
std::string decimal_comma_hint(std::string_view cell) {
  std::size_t i = cell.starts_with('-') || cell.starts_with('+') ? 1 : 0;
  const std::size_t digits = i;
  while (i < cell.size() && std::isdigit(static_cast<unsigned char>(cell[i]))) ++i;
  if (i == digits || i >= cell.size() || cell[i] != ',' || i + 1 == cell.size()) return {};
  for (++i; i < cell.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(cell[i]))) return {};
  return " (it has a decimal comma: write decimal points, 1.5 rather than 1,5)";
}

std::string feature_advice(const std::string& name) {
  return fmt::format(
      "if the column holds ids or text, leave it out with ColumnSpec::ignore {0} or encode its values "
      "as categories with ColumnSpec::one_hot {0}",
      printable(name));
}
constexpr const char* kTargetAdvice =
    "a regression target must be numeric; to train a classifier on its labels, use the loss CrossEntropy";

/// A used column, looked up by name; a column the reader skipped cannot be used.
std::int64_t used_column(const CsvTable& table, const std::string& name) {
  const std::int64_t index = table.column_index(name);
  if (table.columns[static_cast<std::size_t>(index)].type == ColumnType::skipped)
    throw InputError(fmt::format("{}: column '{}' was skipped when the file was read, but the model uses it",
                                 table.path, printable(name)));
  return index;
}

/// The column's values as numbers, one per row (NaN where missing). A text column is read through
/// its labels, which must all be numbers; else InputError at the first cell that is not.
std::vector<float> numbers_of(const CsvTable& table, std::int64_t index, const std::string& advice) {
  const CsvColumn& column = table.columns[static_cast<std::size_t>(index)];
  if (column.type == ColumnType::number) return column.numbers;
  std::vector<float> label_values(column.labels.size());
  std::vector<cells::Parsed> parsed(column.labels.size());
  for (std::size_t l = 0; l < column.labels.size(); ++l)
    parsed[l] = cells::parse_number(column.labels[l], label_values[l]);
  std::vector<float> values(column.codes.size(), std::numeric_limits<float>::quiet_NaN());
  for (std::size_t r = 0; r < column.codes.size(); ++r) {
    const std::int32_t code = column.codes[r];
    if (code < 0) continue;
    const std::string& cell = column.labels[static_cast<std::size_t>(code)];
    const auto row = static_cast<std::int64_t>(r);
    if (parsed[static_cast<std::size_t>(code)] == cells::Parsed::out_of_range)
      throw InputError(fmt::format("{}: '{}' is not a finite float32 number; remove or fix the value",
                                   table.where(row, index), printable(cell)));
    if (parsed[static_cast<std::size_t>(code)] == cells::Parsed::not_a_number)
      throw InputError(fmt::format("{}: '{}' is not a number{}; {}", table.where(row, index), printable(cell),
                                   decimal_comma_hint(cell), advice));
    values[r] = label_values[static_cast<std::size_t>(code)];
  }
  return values;
}

/// Per row, the index of the cell's category in categories: -1 where missing, -2 where unseen.
constexpr std::int32_t kMissing = -1, kUnseen = -2;
std::vector<std::int32_t> category_codes(const CsvColumn& column, const std::vector<std::string>& categories) {
  std::unordered_map<std::string, std::int32_t> index;
  for (std::size_t i = 0; i < categories.size(); ++i) index.emplace(categories[i], static_cast<std::int32_t>(i));
  const auto lookup = [&](const std::string& key) {
    const auto found = index.find(key);
    return found == index.end() ? kUnseen : found->second;
  };
  std::vector<std::int32_t> codes;
  if (column.type == ColumnType::text) {
    std::vector<std::int32_t> of_label(column.labels.size());
    for (std::size_t l = 0; l < column.labels.size(); ++l) of_label[l] = lookup(column.labels[l]);
    codes.reserve(column.codes.size());
    for (const std::int32_t code : column.codes)
      codes.push_back(code < 0 ? kMissing : of_label[static_cast<std::size_t>(code)]);
  } else {
    codes.reserve(column.numbers.size());
    for (std::size_t r = 0; r < column.numbers.size(); ++r) {
      const auto row = static_cast<std::int64_t>(r);
      codes.push_back(column.missing(row) ? kMissing : lookup(column.cell(row)));
    }
  }
  return codes;
}

/// Sorted as scikit-learn's OneHotEncoder sorts: by value when every category is a number.
void sort_categories(std::vector<std::string>& categories) {
  std::vector<float> values(categories.size());
  bool numeric = true;
  for (std::size_t i = 0; i < categories.size() && numeric; ++i)
    numeric = cells::parse_number(categories[i], values[i]) == cells::Parsed::number;
  if (!numeric) {
    std::sort(categories.begin(), categories.end());
    return;
  }
  std::vector<std::pair<float, std::string>> keyed;
  for (std::size_t i = 0; i < categories.size(); ++i) keyed.emplace_back(values[i], categories[i]);
  std::sort(keyed.begin(), keyed.end());
  for (std::size_t i = 0; i < categories.size(); ++i) categories[i] = keyed[i].second;
}

[[noreturn]] void missing_cell(const CsvTable& table, std::int64_t row, std::int64_t column,
                               const std::string& advice) {
  throw InputError(fmt::format("{}: missing value (an empty cell, NA, NaN, null or the like); {}",
                               table.where(row, column), advice));
}

constexpr const char* kMissingAdvice =
    "fill in a value or remove the row, or use ColumnSpec::missing fill (training means and missing-value "
    "indicators), drop (leaves such rows out) or mean";
constexpr const char* kMissingTargetAdvice =
    "a missing target is never filled: fill it in or remove the row, or use ColumnSpec::missing fill or drop to leave "
    "such rows out";
// A trained model's handling of gaps is fixed: the advice names what the data or a new training can change.
constexpr const char* kTrainedMissingAdvice =
    "the model was trained with ColumnSpec::missing error, so every feature must be given: fill in a value or remove "
    "the row, or train again with ColumnSpec::missing fill (training means and missing-value indicators), mean or "
    "drop";
constexpr const char* kTrainedMissingTargetAdvice = "a missing target is never filled: fill it in or remove the row";

/// What a column named in no list of a ColumnSpec is, from its cells.
struct Inferred {
  bool categorical = false;
  bool leave_out = false;
  std::string reason{};  // why it is left out, for a warning
};
/// A text column whose cells are mostly numbers (or numbers written with a decimal comma) is a
/// numeric column with stray cells ("?", "n/a", "1,5"): read as numbers, its first stray cell is an
/// error that says what to do. Cells, not distinct values, are counted: a column of "yes" in most
/// rows and codes 2 to 6 in the others is categories, however many codes there are.
bool mostly_numbers(const CsvColumn& column) {
  std::vector<std::size_t> count(column.labels.size(), 0);
  std::size_t present = 0, numbers = 0;
  for (const std::int32_t code : column.codes)
    if (code >= 0) {
      ++count[static_cast<std::size_t>(code)];
      ++present;
    }
  float value = 0;
  for (std::size_t i = 0; i < column.labels.size(); ++i) {
    const std::string& label = column.labels[i];
    if (cells::parse_number(label, value) == cells::Parsed::number || !decimal_comma_hint(label).empty())
      numbers += count[i];
  }
  return 2 * numbers > present;
}

Inferred infer_type(const CsvColumn& column) {
  if (column.type != ColumnType::text || mostly_numbers(column)) return {};
  std::size_t present = 0;
  for (const std::int32_t code : column.codes) present += code >= 0 ? 1 : 0;
  const std::size_t distinct = column.labels.size();
  constexpr std::size_t kMinRowsForIdentifier = 20;
  if (present >= kMinRowsForIdentifier && distinct == present)
    return {.leave_out = true,
            .reason = fmt::format("column '{}' holds a different text in every row, as an identifier does: it is left "
                                  "out (to encode its values as categories, name it in ColumnSpec::one_hot; to "
                                  "silence this, in ColumnSpec::ignore)",
                                  printable(column.name))};
  if (distinct > kMaxInferredCategories)
    return {.leave_out = true,
            .reason = fmt::format("column '{}' holds {} different texts, more than the {} categories one-hot encoding "
                                  "takes unasked: it is left out (to give it a learned vector per category, name it "
                                  "in ColumnSpec::embed; for indicators anyway, in ColumnSpec::one_hot; to silence "
                                  "this, in ColumnSpec::ignore)",
                                  printable(column.name), distinct, kMaxInferredCategories)};
  return {.categorical = true};
}
/// The distinct quantiles at 0, 1/bins, ..., 1 of the values in rows (missing ones left out), each
/// the mean of the ranks' own quantiles weighted by their counts where ranks combines sharded
/// data; none for a column of fewer than three values (a constant or two-valued number is a step
/// already) or where fewer than three quantiles differ. Whole numbers of more than bins + 1 but at
/// most kMaxBins + 1 values (codes of groups, years, counts) have their values as edges instead:
/// one bin between each two neighbours, so that every value is a step of its own, as a tree can
/// split a code anywhere. With bins 0 (ColumnSpec::steps alone), only those of kFewestSteps values or more.
/// values_as_edges says which of the two the edges are.
std::vector<double> bin_edges(const std::vector<float>& values, const std::vector<std::int64_t>& rows, std::size_t bins,
                              const RankSums& ranks, bool& values_as_edges) {
  values_as_edges = false;
  std::vector<double> present;
  for (const std::int64_t r : rows)
    if (!std::isnan(values[static_cast<std::size_t>(r)])) present.push_back(values[static_cast<std::size_t>(r)]);
  std::sort(present.begin(), present.end());
  std::set<std::string> distinct;  // up to kMaxBins + 2, which is enough to tell
  for (auto it = present.begin(); it != present.end() && distinct.size() < kMaxBins + 2;
       it = std::upper_bound(it, present.end(), *it))
    distinct.insert(fmt::format("{}", *it));
  distinct = ranks.all(distinct);  // the same union, so the same answers below, on every rank
  if (distinct.size() < 3) return {};
  if (distinct.size() >= (bins > 0 ? bins + 2 : kFewestSteps) && distinct.size() <= kMaxBins + 1) {
    std::vector<double> edges;
    for (const std::string& text : distinct) edges.push_back(std::stod(text));
    if (std::all_of(edges.begin(), edges.end(), [](double v) { return v == std::floor(v); })) {
      std::sort(edges.begin(), edges.end());
      values_as_edges = true;
      return edges;
    }
  }
  if (bins == 0) return {};
  // The quantiles times the count, then the count, so that ranks add them.
  std::vector<double> sums(bins + 2, 0.0);
  const auto n = static_cast<double>(present.size());
  for (std::size_t k = 0; k <= bins && !present.empty(); ++k) {
    // Linear interpolation between order statistics, as numpy.quantile's default.
    const double position = (n - 1) * static_cast<double>(k) / static_cast<double>(bins);
    const auto below = static_cast<std::size_t>(position);
    const std::size_t above = std::min(below + 1, present.size() - 1);
    const double share = position - static_cast<double>(below);
    sums[k] = n * (present[below] + share * (present[above] - present[below]));
  }
  sums.back() = n;
  ranks.add(sums);
  std::vector<double> edges;
  if (sums.back() == 0) return edges;
  for (std::size_t k = 0; k <= bins; ++k) {
    const auto edge = static_cast<double>(static_cast<float>(sums[k] / sums.back()));
    if (edges.empty() || edge > edges.back()) edges.push_back(edge);
  }
  if (edges.size() < 3) edges.clear();
  return edges;
}

/// The value's share of each bin, written to out[0], out[1], ...
void encode_bins(const std::vector<double>& edges, double value, float* out) {
  for (std::size_t k = 0; k + 1 < edges.size(); ++k)
    out[k] = static_cast<float>(std::clamp((value - edges[k]) / (edges[k + 1] - edges[k]), 0.0, 1.0));
}
}  // namespace

namespace preprocessing {

Preprocessing columns_of(const CsvTable& table, const ColumnSpec& spec, bool classification,
                         std::vector<std::string>* warnings) {
  if (spec.targets.empty()) throw InputError("no target column given; name one in ColumnSpec::targets");
  if (classification && spec.targets.size() > 1)
    throw InputError(fmt::format("classification takes one target column, not {}", joined(spec.targets)));
  // Before the targets are looked up: an ignored target was skipped by the reader.
  for (const auto& [list, flag] :
       {std::pair{&spec.ignore, "ColumnSpec::ignore"}, std::pair{&spec.one_hot, "ColumnSpec::one_hot"},
        std::pair{&spec.numeric, "ColumnSpec::numeric"}, std::pair{&spec.embed, "ColumnSpec::embed"}})
    for (const std::string& name : *list) {
      table.column_index(name);
      if (contains(spec.targets, name))
        throw InputError(fmt::format("{} {}: '{}' is a target column; a target cannot be a feature or be ignored", flag,
                                     printable(name), printable(name)));
    }
  if (!bins_allowed(spec.bins))
    throw SettingError("ColumnSpec::bins",
                       fmt::format("is {}; use 0 (off) or 2 to {} bins per number", spec.bins, kMaxBins));
  Preprocessing p;
  p.missing = spec.missing;
  p.bins = spec.bins;
  p.steps = spec.steps;
  p.levels = spec.levels;
  for (const std::string& name : spec.targets) {
    if (contains(p.targets, name))
      throw InputError(fmt::format("target column '{}' is named twice in ColumnSpec::targets", printable(name)));
    const std::int64_t index = used_column(table, name);
    if (!classification) numbers_of(table, index, kTargetAdvice);
    p.targets.push_back(name);
  }
  const std::pair<const std::vector<std::string>*, const char*> lists[] = {{&spec.ignore, "ColumnSpec::ignore"},
                                                                           {&spec.one_hot, "ColumnSpec::one_hot"},
                                                                           {&spec.numeric, "ColumnSpec::numeric"},
                                                                           {&spec.embed, "ColumnSpec::embed"}};
  for (std::size_t i = 0; i < std::size(lists); ++i)
    for (std::size_t j = i + 1; j < std::size(lists); ++j)
      for (const std::string& name : *lists[i].first)
        if (contains(*lists[j].first, name))
          throw InputError(fmt::format("column '{}' is named by both {} and {}; pick one", printable(name),
                                       lists[i].second, lists[j].second));
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const CsvColumn& column = table.columns[c];
    if (column.type == ColumnType::skipped || contains(spec.targets, column.name) || contains(spec.ignore, column.name))
      continue;
    const bool embedded = contains(spec.embed, column.name);
    FeatureColumn feature{
        .name = column.name, .one_hot = embedded || contains(spec.one_hot, column.name), .embedded = embedded};
    if (!feature.one_hot && !contains(spec.numeric, column.name)) {
      const Inferred inferred = infer_type(column);
      if (inferred.leave_out) {
        if (warnings != nullptr) warnings->push_back(inferred.reason);
        continue;
      }
      feature.one_hot = inferred.categorical;
    }
    if (!feature.one_hot) numbers_of(table, static_cast<std::int64_t>(c), feature_advice(column.name));
    p.features.push_back(std::move(feature));
  }
  for (const std::string& name : spec.one_hot) used_column(table, name);
  for (const std::string& name : spec.numeric) used_column(table, name);
  for (const std::string& name : spec.embed) used_column(table, name);
  // The embedded columns' index inputs last, where the model's Embedding layer reads them.
  std::stable_partition(p.features.begin(), p.features.end(), [](const FeatureColumn& f) { return !f.embedded; });
  if (p.features.empty())
    throw InputError(
        fmt::format("{}: no feature column is left once the targets and ignored columns are taken out; "
                    "the model needs at least one input column",
                    table.path));
  return p;
}

namespace {

/// InputError unless given names the stored columns (in any order, repeats aside): categories that
/// the first training fixed, which the model `verb`.
void check_same_columns(std::vector<std::string> stored, std::vector<std::string> given, const char* verb) {
  std::sort(stored.begin(), stored.end());
  std::sort(given.begin(), given.end());
  given.erase(std::unique(given.begin(), given.end()), given.end());
  if (given != stored)
    throw InputError(fmt::format("the model {} {}, not {}; its categories were fixed by its first training", verb,
                                 joined(stored), joined(given)));
}

}  // namespace

void check_spec_matches(const Preprocessing& learned, const ColumnSpec& spec) {
  if (spec.targets != learned.targets)
    throw InputError(fmt::format("the model was trained for the target columns {}, not {}", joined(learned.targets),
                                 joined(spec.targets)));
  const ColumnSpec stored = learned.spec();
  check_same_columns(stored.one_hot, spec.one_hot, "one-hot encodes");
  check_same_columns(stored.embed, spec.embed, "embeds");
  if (spec.missing != learned.missing)
    throw InputError(fmt::format("the model was trained with ColumnSpec::missing {}, not {}",
                                 to_string(learned.missing), to_string(spec.missing)));
  if (spec.bins != learned.bins)
    throw InputError(
        fmt::format("the model was trained with ColumnSpec::bins {}, not {}; its bins were fixed by its "
                    "first training",
                    learned.bins, spec.bins));
  if (spec.steps != learned.steps)
    throw InputError(
        fmt::format("the model was trained with ColumnSpec::steps {}, not {}; its steps were fixed by its "
                    "first training",
                    learned.steps, spec.steps));
  if (spec.levels != learned.levels)
    throw InputError(
        fmt::format("the model was trained with ColumnSpec::levels {}, not {}; its levels were fixed by its "
                    "first training",
                    learned.levels, spec.levels));
  for (const FeatureColumn& feature : learned.features)
    if (contains(spec.ignore, feature.name))
      throw InputError(fmt::format("ColumnSpec::ignore {}: the model was trained with this column as a feature",
                                   printable(feature.name)));
}

std::vector<std::int64_t> usable_rows(const Preprocessing& p, const CsvTable& table, bool with_targets, bool training) {
  std::vector<std::int64_t> features, targets;
  for (const FeatureColumn& feature : p.features) features.push_back(used_column(table, feature.name));
  if (with_targets)
    for (const std::string& name : p.targets) targets.push_back(used_column(table, name));
  std::vector<std::int64_t> rows;
  rows.reserve(static_cast<std::size_t>(table.rows()));
  for (std::int64_t r = 0; r < table.rows(); ++r) {
    bool complete = true;
    // Columns in file order, so that the error names the first missing cell of the row.
    std::vector<std::pair<std::int64_t, bool>> used;
    for (const std::int64_t c : features) used.emplace_back(c, false);
    for (const std::int64_t c : targets) used.emplace_back(c, true);
    std::sort(used.begin(), used.end());
    for (const auto& [c, is_target] : used) {
      if (!table.columns[static_cast<std::size_t>(c)].missing(r)) continue;
      const char* target_advice = training ? kMissingTargetAdvice : kTrainedMissingTargetAdvice;
      if (p.missing == Missing::fill) {
        complete = complete && !is_target;
        continue;
      }
      if (p.missing == Missing::error)
        missing_cell(table, r, c, is_target ? target_advice : training ? kMissingAdvice : kTrainedMissingAdvice);
      if (p.missing == Missing::mean && is_target) missing_cell(table, r, c, target_advice);
      if (p.missing == Missing::drop) complete = false;
    }
    if (complete) rows.push_back(r);
  }
  return rows;
}

void learn(Preprocessing& p, const CsvTable& table, const std::vector<std::int64_t>& rows, const RankSums& ranks) {
  for (FeatureColumn& feature : p.features) {
    const std::int64_t index = used_column(table, feature.name);
    const CsvColumn& column = table.columns[static_cast<std::size_t>(index)];
    feature.fill.clear();
    feature.bin_edges.clear();
    feature.levels = false;
    feature.missing_indicator = false;
    // An embedded column's missing cells take its own row of the table: no indicator, no fill.
    if (p.missing == Missing::fill && !feature.embedded) {
      std::vector<double> missing_rows(1, 0.0);
      for (const std::int64_t r : rows) missing_rows[0] += column.missing(r) ? 1 : 0;
      ranks.add(missing_rows);
      feature.missing_indicator = missing_rows[0] > 0;
    }
    if (feature.one_hot) {
      std::set<std::string> seen;
      for (const std::int64_t r : rows)
        if (!column.missing(r)) seen.insert(column.cell(r));
      seen = ranks.all(seen);
      if (seen.empty())
        throw InputError(
            fmt::format("{}: column '{}' has no category in the training rows; it cannot be one-hot encoded",
                        table.path, printable(feature.name)));
      feature.categories.assign(seen.begin(), seen.end());
      sort_categories(feature.categories);
      if (p.missing == Missing::mean && !feature.embedded) {
        const std::vector<std::int32_t> codes = category_codes(column, feature.categories);
        std::vector<double> counts(feature.categories.size() + 1, 0.0);  // then the rows with a category
        for (const std::int64_t r : rows)
          if (codes[static_cast<std::size_t>(r)] >= 0) {
            counts[static_cast<std::size_t>(codes[static_cast<std::size_t>(r)])] += 1;
            counts.back() += 1;
          }
        ranks.add(counts);
        const double present = counts.back();
        counts.pop_back();
        for (double& count : counts) count /= present;
        feature.fill = std::move(counts);
      }
    } else if (p.bins > 0 || p.steps || p.missing == Missing::mean || p.missing == Missing::fill) {
      const std::vector<float> values = numbers_of(table, index, feature_advice(feature.name));
      bool values_as_edges = false;
      if (p.bins > 0 || p.steps) feature.bin_edges = bin_edges(values, rows, p.bins, ranks, values_as_edges);
      feature.levels = p.levels && values_as_edges;
      if (p.missing == Missing::mean || p.missing == Missing::fill) {
        std::vector<double> sums(2, 0.0);  // the values' sum and count
        for (const std::int64_t r : rows)
          if (!std::isnan(values[static_cast<std::size_t>(r)])) {
            sums[0] += values[static_cast<std::size_t>(r)];
            sums[1] += 1;
          }
        ranks.add(sums);
        const double sum = sums[0], present = sums[1];
        if (present == 0)
          throw InputError(fmt::format("{}: column '{}' has no value in the training rows to take the mean of",
                                       table.path, printable(feature.name)));
        feature.fill = {sum / present};
      }
    }
  }
}

std::vector<std::string> class_labels(const Preprocessing& p, const CsvTable& table,
                                      const std::vector<std::int64_t>& rows, const RankSums& ranks) {
  const CsvColumn& column = table.columns[static_cast<std::size_t>(used_column(table, p.targets.at(0)))];
  std::set<std::string> seen;
  for (const std::int64_t r : rows)
    if (!column.missing(r)) seen.insert(column.cell(r));
  seen = ranks.all(seen);
  std::vector<std::string> classes(seen.begin(), seen.end());
  if (classes.size() < 2)
    throw InputError(fmt::format("{}: the target column '{}' holds {} class{} ({}); classification needs at least two",
                                 table.path, printable(column.name), classes.size(), classes.size() == 1 ? "" : "es",
                                 joined(classes)));
  sort_categories(classes);
  return classes;
}

Encoded encode(const Preprocessing& p, const CsvTable& table, const std::vector<std::int64_t>& rows,
               bool with_targets) {
  Encoded out;
  const auto n = static_cast<std::int64_t>(rows.size());
  out.x = Matrix(n, p.input_width());
  std::int64_t input = 0;
  const std::vector<std::int64_t> offsets = p.embedding_offsets();
  for (std::size_t f = 0; f < p.features.size(); ++f) {
    const FeatureColumn& feature = p.features[f];
    const std::int64_t index = used_column(table, feature.name);
    const CsvColumn& column = table.columns[static_cast<std::size_t>(index)];
    if (feature.one_hot) {
      const std::vector<std::int32_t> codes = category_codes(column, feature.categories);
      std::int64_t unseen_rows = 0;
      std::set<std::string> unseen;  // the first kShown + 1 distinct ones: enough to say whether there are more
      constexpr std::size_t kShown = 3;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int32_t code = codes[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)])];
        if (feature.embedded) {  // the category's row of the table, or the column's last for the rest
          const auto other = static_cast<std::int32_t>(feature.categories.size());
          out.x(i, input) = static_cast<float>(offsets[f] + (code >= 0 ? code : other));
          if (code >= 0 || code == kMissing) continue;
        }
        if (code >= 0) {
          out.x(i, input + code) = 1.0f;
        } else if (code == kMissing && p.missing == Missing::fill) {
          if (feature.missing_indicator) out.x(i, input + static_cast<std::int64_t>(feature.categories.size())) = 1.0f;
        } else if (code == kMissing) {
          if (feature.fill.empty())
            throw Error(fmt::format("encode: a missing cell in column '{}' was not filtered", feature.name));
          for (std::size_t k = 0; k < feature.categories.size(); ++k)
            out.x(i, input + static_cast<std::int64_t>(k)) = static_cast<float>(feature.fill[k]);
        } else {
          ++unseen_rows;
          if (unseen.size() <= kShown) unseen.insert(column.cell(rows[static_cast<std::size_t>(i)]));
        }
      }
      if (unseen_rows > 0) {
        std::string examples;
        for (auto it = unseen.begin();
             it != unseen.end() && std::distance(unseen.begin(), it) < static_cast<std::ptrdiff_t>(kShown); ++it)
          examples += (examples.empty() ? "" : ", ") + printable(*it);
        out.warnings.push_back(fmt::format("column '{}': {} row{} hold{} a category that training never saw ({}{}); {}",
                                           printable(feature.name), unseen_rows, unseen_rows == 1 ? "" : "s",
                                           unseen_rows == 1 ? "s" : "", examples, unseen.size() > kShown ? ", …" : "",
                                           !feature.embedded ? "their indicators are all zero"
                                           : unseen_rows == 1
                                               ? "it takes the column's vector for missing and unseen categories"
                                               : "they take the column's vector for missing and unseen categories"));
      }
      input += static_cast<std::int64_t>(feature.inputs());
    } else {
      const std::vector<float> values = numbers_of(table, index, feature_advice(feature.name));
      for (std::int64_t i = 0; i < n; ++i) {
        float value = values[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)])];
        if (std::isnan(value)) {
          if (feature.fill.empty())
            throw Error(fmt::format("encode: a missing cell in column '{}' was not filtered", feature.name));
          value = static_cast<float>(feature.fill[0]);
          if (feature.missing_indicator) out.x(i, input + static_cast<std::int64_t>(feature.inputs()) - 1) = 1.0f;
        }
        out.x(i, input) = value;
        if (!feature.bin_edges.empty()) encode_bins(feature.bin_edges, value, &out.x(i, input + 1));
        for (std::size_t k = 0; k < feature.level_count(); ++k)
          out.x(i, input + 1 + static_cast<std::int64_t>(feature.bins() + k)) =
              value == static_cast<float>(feature.bin_edges[k]) ? 1.0f : 0.0f;
      }
      input += static_cast<std::int64_t>(feature.inputs());
    }
  }
  if (with_targets && !p.classes.empty()) {
    const std::int64_t index = used_column(table, p.targets[0]);
    const CsvColumn& column = table.columns[static_cast<std::size_t>(index)];
    const std::vector<std::int32_t> codes = category_codes(column, p.classes);
    out.y = Matrix(n, 1);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t row = rows[static_cast<std::size_t>(i)];
      const std::int32_t code = codes[static_cast<std::size_t>(row)];
      if (code < 0)
        throw InputError(fmt::format("{}: '{}' is not one of the model's classes ({})", table.where(row, index),
                                     printable(column.cell(row)), joined(p.classes)));
      out.y(i, 0) = static_cast<float>(code);
    }
  } else if (with_targets) {
    out.y = Matrix(n, static_cast<std::int64_t>(p.targets.size()));
    for (std::size_t t = 0; t < p.targets.size(); ++t) {
      const std::vector<float> values = numbers_of(table, used_column(table, p.targets[t]), kTargetAdvice);
      for (std::int64_t i = 0; i < n; ++i)
        out.y(i, static_cast<std::int64_t>(t)) = values[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)])];
    }
  }
  return out;
}

Preprocessing numeric(const std::vector<std::string>& features, const std::vector<std::string>& targets) {
  Preprocessing p;
  for (const std::string& name : features) p.features.push_back({.name = name});
  p.targets = targets;
  return p;
}

}  // namespace preprocessing

std::int64_t Preprocessing::input_width() const {
  std::int64_t width = 0;
  for (const FeatureColumn& feature : features) width += static_cast<std::int64_t>(feature.inputs());
  return width;
}

std::vector<std::string> Preprocessing::input_names() const {
  std::vector<std::string> names;
  for (const FeatureColumn& feature : features) {
    if (feature.embedded) {
      names.push_back(feature.name + " (category index)");
      continue;
    }
    if (!feature.one_hot) names.push_back(feature.name);
    for (std::size_t k = 1; k <= feature.bins(); ++k) names.push_back(fmt::format("{} (bin {})", feature.name, k));
    for (std::size_t k = 0; k < feature.level_count(); ++k)
      names.push_back(fmt::format("{}={}", feature.name, feature.bin_edges[k]));
    for (const std::string& category : feature.categories) names.push_back(feature.name + "=" + category);
    if (feature.missing_indicator) names.push_back(feature.name + " (missing)");
  }
  return names;
}

std::vector<bool> Preprocessing::unit_inputs() const {
  std::vector<bool> indicators;
  for (const FeatureColumn& feature : features) {
    if (!feature.one_hot || feature.embedded) indicators.push_back(false);  // a number, or an index
    if (feature.embedded) continue;
    indicators.insert(indicators.end(), feature.bins() + feature.level_count(), true);
    indicators.insert(indicators.end(), feature.categories.size(), true);
    if (feature.missing_indicator) indicators.push_back(true);
  }
  return indicators;
}

std::vector<std::string> Preprocessing::feature_names() const {
  std::vector<std::string> names;
  for (const FeatureColumn& feature : features) names.push_back(feature.name);
  return names;
}

ColumnSpec Preprocessing::spec() const {
  ColumnSpec spec{.targets = targets, .missing = missing, .bins = bins, .steps = steps, .levels = levels};
  for (const FeatureColumn& feature : features)
    if (feature.one_hot) (feature.embedded ? spec.embed : spec.one_hot).push_back(feature.name);
  return spec;
}

std::vector<std::int64_t> Preprocessing::embedding_offsets() const {
  std::vector<std::int64_t> offsets;
  std::int64_t next = 0;
  for (const FeatureColumn& feature : features) {
    offsets.push_back(feature.embedded ? next : 0);
    if (feature.embedded) next += static_cast<std::int64_t>(feature.categories.size()) + 1;
  }
  return offsets;
}

std::int64_t Preprocessing::embedding_categories() const {
  std::int64_t rows = 0;
  for (const FeatureColumn& feature : features)
    if (feature.embedded) rows += static_cast<std::int64_t>(feature.categories.size()) + 1;
  return rows;
}

std::int64_t Preprocessing::embedded_columns() const {
  return std::count_if(features.begin(), features.end(), [](const FeatureColumn& f) { return f.embedded; });
}

CsvOptions Preprocessing::csv_options(char delimiter, bool with_targets) const {
  CsvOptions options{.delimiter = delimiter};
  for (const FeatureColumn& feature : features) {
    options.columns.push_back(feature.name);
    if (feature.one_hot) options.text_columns.push_back(feature.name);
  }
  if (with_targets) options.columns.insert(options.columns.end(), targets.begin(), targets.end());
  if (with_targets && !classes.empty())
    options.text_columns.insert(options.text_columns.end(), targets.begin(), targets.end());
  return options;
}

std::string to_string(Missing missing) {
  switch (missing) {
    case Missing::fill:
      return "fill";
    case Missing::drop:
      return "drop";
    case Missing::mean:
      return "mean";
    case Missing::error:
      break;
  }
  return "error";
}

Missing parse_missing(const std::string& text) {
  if (text == "fill") return Missing::fill;
  if (text == "error") return Missing::error;
  if (text == "drop") return Missing::drop;
  if (text == "mean") return Missing::mean;
  throw InputError(fmt::format("ColumnSpec::missing {}: use fill, error, drop or mean", printable(text)));
}

CsvOptions reading_options(const ColumnSpec& spec, bool classification, char delimiter) {
  CsvOptions options{.delimiter = delimiter, .skip_columns = spec.ignore, .text_columns = spec.one_hot};
  options.text_columns.insert(options.text_columns.end(), spec.embed.begin(), spec.embed.end());
  if (classification) options.text_columns.insert(options.text_columns.end(), spec.targets.begin(), spec.targets.end());
  return options;
}

TableDefaults table_defaults(std::int64_t rows) {
  TableDefaults d;
  if (rows >= TableDefaults::kHeldOutFrom) {
    d.validation_split = TableDefaults::kValidationSplit;
    d.patience = TableDefaults::kPatience;
    d.momentum = TableDefaults::kMomentum;
    d.clip_norm = TableDefaults::kClipNorm;
  }
  if (rows >= TableDefaults::kBinnedFrom) d.bins = TableDefaults::kBins;
  d.members = std::clamp<std::int64_t>(TableDefaults::kMemberRows / std::max<std::int64_t>(rows, 1), 1,
                                       TableDefaults::kMembers);
  return d;
}

InferredTask infer_task(const CsvTable& table, const std::vector<std::string>& targets) {
  if (targets.size() != 1) return {};
  const CsvColumn& column = table.column(targets[0]);
  if (column.type == ColumnType::text)
    return mostly_numbers(column)
               ? InferredTask{}
               : InferredTask{.classification = true,
                              .reason = fmt::format("target '{}' holds text labels", printable(column.name))};
  if (column.type != ColumnType::number) return {};
  std::set<float> values;
  for (const float value : column.numbers)
    if (!std::isnan(value) && values.insert(value).second && values.size() > 2) return {};
  if (values.size() != 2) return {};
  return {.classification = true,
          .reason = fmt::format("target '{}' holds two values, {} and {}", printable(column.name), *values.begin(),
                                *values.rbegin())};
}

std::vector<std::string> class_labels(const CsvTable& table, const ColumnSpec& columns) {
  const Preprocessing p = preprocessing::columns_of(table, columns, true);
  return preprocessing::class_labels(p, table, preprocessing::usable_rows(p, table, true, true));
}

std::vector<std::string> class_labels(const CsvTable& table, const ColumnSpec& columns, Communicator& shards) {
  const Preprocessing p = preprocessing::columns_of(table, columns, true);
  DataParallel parallel(&shards, false, true);
  return preprocessing::class_labels(p, table, preprocessing::usable_rows(p, table, true, true), parallel.rank_sums());
}

Dataset split_features_targets(const CsvTable& table, const std::vector<std::string>& target_names) {
  // A table of numbers: every other column numeric, nothing inferred; a missing cell is an error.
  ColumnSpec spec{.targets = target_names, .missing = Missing::error};
  for (const std::string& name : table.names())
    if (!contains(target_names, name)) spec.numeric.push_back(name);
  const Preprocessing p = preprocessing::columns_of(table, spec, false);
  preprocessing::Encoded encoded =
      preprocessing::encode(p, table, preprocessing::usable_rows(p, table, true, true), true);
  return {std::move(encoded.x), std::move(encoded.y), p.feature_names(), p.targets};
}

}  // namespace ember
