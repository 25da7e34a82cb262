#pragma once
// From a table's columns to a model's inputs and targets: which columns are features and targets,
// categories expanded into indicator inputs, missing cells refused, dropped or filled. What fit
// learns here (the categories, the fill values) is fixed by the first fit and travels in
// checkpoints, so predict on raw rows gives the answer training would.
#include <cstdint>
#include <string>
#include <vector>

#include "ember/data.hpp"

namespace ember {

class Communicator;

/// What happens to a row with a missing cell (CsvColumn) in a column the model uses.
enum class Missing {
  error,  // refused: the error names the first missing cell
  drop,   // the row is left out (fit and evaluate), or predicted as NaN (predict)
  mean,   // a feature takes the training rows' mean; a missing target is still refused
};

/// How fit uses a table's columns.
struct ColumnSpec {
  std::vector<std::string> targets;
  std::vector<std::string> ignore{};   // columns not used (ids, free text)
  std::vector<std::string> one_hot{};  // categorical features: one indicator input per category
  Missing missing = Missing::error;
};

/// A feature column as fit learned it.
struct FeatureColumn {
  std::string name;
  bool one_hot = false;
  /// One-hot: the training rows' categories, sorted (by value when all are numbers, else by their
  /// bytes), one indicator input each. A category training never saw sets no indicator.
  std::vector<std::string> categories{};
  /// Missing::mean: what a missing cell becomes, one value per input: the training mean of a
  /// numeric column, or each category's frequency (the mean of its indicator).
  std::vector<double> fill{};
  bool operator==(const FeatureColumn&) const = default;
};

/// What fit learned of a table's columns.
struct Preprocessing {
  std::vector<FeatureColumn> features;
  std::vector<std::string> targets;
  Missing missing = Missing::error;
  /// Classification: the target's class labels, the distinct labels of the rows the first fit used
  /// (held-out rows included, as scikit-learn's label encoding), sorted as categories are; class i
  /// is classes[i]. Empty for regression.
  std::vector<std::string> classes{};

  bool empty() const { return features.empty(); }
  /// The model's input width: one input per numeric feature and per category.
  std::int64_t input_width() const;
  /// One name per input: the column's, or "column=category" for an indicator.
  std::vector<std::string> input_names() const;
  std::vector<std::string> feature_names() const;
  /// The spec that gives this preprocessing (ignore empty: the unused columns are not recorded).
  ColumnSpec spec() const;
  /// Options that read exactly the columns used here (the targets too when with_targets), the
  /// categorical ones and class labels as text; any other column is skipped unparsed.
  CsvOptions csv_options(char delimiter = ',', bool with_targets = false) const;
  bool operator==(const Preprocessing&) const = default;
};

/// A classification target's classes as fit would learn them: the sorted distinct labels of the
/// target column in the rows usable under columns.missing. Its size tells the model's outputs
/// (outputs_for_classes). InputError for fewer than two classes or more than one target.
std::vector<std::string> class_labels(const CsvTable& table, const ColumnSpec& columns);
/// With the ranks of a fit on sharded data (FitOptions::sharded_data), each holding its shard in
/// table: the classes of every rank's rows, as that fit learns them. Every rank calls it.
std::vector<std::string> class_labels(const CsvTable& table, const ColumnSpec& columns, Communicator& shards);

std::string to_string(Missing missing);
Missing parse_missing(const std::string& text);  // "error", "drop", "mean"; throws InputError

}  // namespace ember
