#pragma once
// From a table's columns to a model's inputs and targets: which columns are features and targets,
// what each feature is (a number or categories, inferred from its cells unless named), categories
// expanded into indicator inputs, missing cells filled, refused or dropped. What fit learns here
// (the types, the categories, the fill values) is fixed by the first fit and travels in
// checkpoints, so predict on raw rows gives the answer training would.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ember/data.hpp"

namespace ember {

class Communicator;

/// What happens to a row with a missing cell (CsvColumn) in a column the model uses.
enum class Missing {
  /// A number takes the training rows' mean and a category none; where the training rows had
  /// missing cells in a column, an indicator input says which rows miss it (scikit-learn's
  /// SimpleImputer(add_indicator=True)). A row whose target is missing is left out of fit and
  /// evaluate.
  fill,
  error,  // refused: the error names the first missing cell
  drop,   // the row is left out (fit and evaluate), or predicted as NaN (predict)
  mean,   // a feature takes the training rows' mean; a missing target is refused
};

/// How fit uses a table's columns. A column named in no list is a feature whose type comes from
/// its cells: numbers are numeric; text is categorical (one-hot), except text that differs in
/// every row (an identifier) or has more than kMaxInferredCategories values (free text), which is
/// left out with a warning. Text whose cells are mostly numbers is numeric, and its other cells errors.
struct ColumnSpec {
  std::vector<std::string> targets;
  std::vector<std::string> ignore{};   // columns not used (ids, free text)
  std::vector<std::string> one_hot{};  // categorical features: one indicator input per category
  std::vector<std::string> numeric{};  // numeric features, whatever their cells look like
  /// Categorical features given to the model's first layer, an Embedding, as one category index
  /// input each rather than indicators: the alternative to one-hot for columns of many categories.
  /// Their inputs come last, after every other feature's; the columns' categories take
  /// consecutive ranges of the one table (Preprocessing::embedding_categories).
  std::vector<std::string> embed{};
  Missing missing = Missing::fill;
  /// Piecewise-linear encoding of numbers (Gorishniy, Rubachev, Babenko, "On Embeddings for
  /// Numerical Features in Tabular Deep Learning", 2022): 0 is off; N gives each numeric feature,
  /// beside its value, one input per bin between its training rows' quantiles at 0, 1/N, ..., 1:
  /// 0 below the bin, 1 above it, the value's position in between (FeatureColumn::bin_edges). A
  /// network then cuts a number into steps as a tree does. Whole numbers of more than N + 1 but at
  /// most kMaxBins + 1 distinct values (codes of groups, years) get a bin between each two
  /// neighbouring values instead.
  std::size_t bins = 0;
  /// Where bins is 0: whole numbers of kFewestSteps to kMaxBins + 1 distinct values (codes of
  /// groups such as schools or towns, years) still get a bin between each two neighbouring values,
  /// as bins gives them, so that a network can tell each code apart as a tree splits on it; fewer
  /// values (ages, counts, ratings) are left to the value alone. Where bins is N, whole numbers of
  /// more than N + 1 values get those steps whatever this says.
  bool steps = false;
  /// Whole numbers that get a bin between each two values (codes of groups, above) also get one
  /// indicator input per value, as a category would: the network can then give each code its own
  /// weight rather than build it from two neighbouring steps (FeatureColumn::levels).
  bool levels = false;
};

/// The most bins ColumnSpec::bins takes.
inline constexpr std::size_t kMaxBins = 256;
/// The fewest distinct values of a whole-number column that ColumnSpec::steps gives a step each.
inline constexpr std::size_t kFewestSteps = 66;
/// Whether ColumnSpec::bins may be this: 0 (off) or 2 to kMaxBins.
constexpr bool bins_allowed(std::size_t bins) {
  return bins == 0 || (bins >= 2 && bins <= kMaxBins);
}

/// Text columns with more distinct values than this are not made categorical unless named in
/// ColumnSpec::one_hot: one input per value would outnumber what the rows can teach.
inline constexpr std::size_t kMaxInferredCategories = 200;

/// A feature column as fit learned it. one_hot marks every categorical column (read as text, its
/// categories learned); an embedded one among them gives an index rather than indicators.
struct FeatureColumn {
  std::string name;
  bool one_hot = false;
  /// One-hot: the training rows' categories, sorted (by value when all are numbers, else by their
  /// bytes), one indicator input each. A category training never saw sets no indicator.
  std::vector<std::string> categories{};
  /// ColumnSpec::embed: the categories become one input, the row of the Embedding's table: the
  /// column's first row (Preprocessing::embedding_offsets) plus the category's position, or plus
  /// categories.size() for a missing cell or a category training never saw (its own learned
  /// vector). Such a column has no fill and no missing-value indicator.
  bool embedded = false;
  /// Missing::mean: what a missing cell becomes, one value per input: the training mean of a
  /// numeric column, or each category's frequency (the mean of its indicator). Missing::fill: the
  /// training mean of a numeric column; none for a categorical one (a missing cell sets no category).
  std::vector<double> fill{};
  /// Missing::fill, where the training rows missed cells of this column: one more input, 1 in the
  /// rows whose cell is missing, else 0.
  bool missing_indicator = false;
  /// ColumnSpec::bins, numbers: the bins' edges, increasing (the training rows' distinct quantiles,
  /// or their distinct whole numbers; none where fewer than three differ). Bin k, between edges[k] and edges[k + 1], is
  /// an input of clamp((value - edges[k]) / (edges[k + 1] - edges[k]), 0, 1), after the value itself; a missing cell's
  /// bins are those of its fill.
  std::vector<double> bin_edges{};
  /// ColumnSpec::levels, a whole-number column whose bin edges are its training values: after its
  /// bins, one indicator input per edge, 1 where the value is that edge (a missing cell's are
  /// those of its fill, as its bins are).
  bool levels = false;
  std::size_t bins() const { return bin_edges.empty() ? 0 : bin_edges.size() - 1; }
  std::size_t level_count() const { return levels ? bin_edges.size() : 0; }
  /// The model inputs this column becomes: one per category (one-hot) or one (a number), its bins
  /// and levels, and the missing-value indicator.
  std::size_t inputs() const {
    return embedded ? 1 : (one_hot ? categories.size() : 1 + bins() + level_count()) + (missing_indicator ? 1 : 0);
  }
  bool operator==(const FeatureColumn&) const = default;
};

/// What fit learned of a table's columns.
struct Preprocessing {
  std::vector<FeatureColumn> features;
  std::vector<std::string> targets;
  Missing missing = Missing::error;
  std::size_t bins = 0;  // ColumnSpec::bins
  bool steps = false;    // ColumnSpec::steps
  bool levels = false;   // ColumnSpec::levels
  /// Classification: the target's class labels, the distinct labels of the rows the first fit used
  /// (held-out rows included, as scikit-learn's label encoding), sorted as categories are; class i
  /// is classes[i]. Empty for regression.
  std::vector<std::string> classes{};

  bool empty() const { return features.empty(); }
  /// The model's input width: one input per numeric feature, per category and per missing indicator.
  std::int64_t input_width() const;
  /// One name per input: the column's, "column (bin K)" for its bins, "column=category" for a
  /// category's indicator, "column (missing)" for a missing-value indicator.
  std::vector<std::string> input_names() const;
  /// Per input, whether it lies in [0, 1] by construction (an indicator of a category or a missing
  /// cell, or a bin), which the scaler leaves as it is, rather than a number.
  std::vector<bool> unit_inputs() const;
  std::vector<std::string> feature_names() const;
  /// ColumnSpec::embed: the first table row of each feature (0 for those not embedded), and the rows
  /// of the table every embedded column needs (categories + 1 each), which the model's Embedding
  /// layer takes as its input_dim, with one index column per embedded feature.
  std::vector<std::int64_t> embedding_offsets() const;
  std::int64_t embedding_categories() const;
  std::int64_t embedded_columns() const;
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

/// Options that read a table for a first fit under spec: the ignored columns skipped unparsed (they
/// may hold anything), the one-hot columns and a classifier's target read as text, so that "01"
/// and "1" stay two labels as they were written.
CsvOptions reading_options(const ColumnSpec& spec, bool classification, char delimiter = ',');

/// The task a table's target suggests, and why in words (for a note).
struct InferredTask {
  bool classification = false;
  std::string reason{};  // e.g. "target 'species' holds text labels"
};
/// One target column of text labels (not numbers), or of exactly two distinct numbers (0 and 1,
/// 1 and 2, ...), suggests classification; anything else regression. A target of a few whole numbers
/// is left to regression (counts and ratings are as often regression), with a warning from fit.
InferredTask infer_task(const CsvTable& table, const std::vector<std::string>& targets);

/// The training defaults a table gets by its size, chosen by measurement on real tables
/// (docs/performance.md) and shared by `ember train` and Python's EmberRegressor/EmberClassifier,
/// so that each gives the same model from the same table and seed. The rest of the default is the
/// constants: two hidden layers of kHiddenWidth ReLU units, SGD at its default rate, kEpochs epochs
/// of kBatchSize rows.
struct TableDefaults {
  static constexpr std::int64_t kHiddenWidth = 64;
  static constexpr std::int64_t kEpochs = 100;
  static constexpr std::int64_t kBatchSize = 32;
  /// From kHeldOutFrom rows, kValidationSplit of them (drawn at random) are held out and training
  /// stops after kPatience epochs without a lower validation loss, keeping the best epoch: on noisy
  /// tables it keeps the network from fitting the noise.
  static constexpr std::int64_t kHeldOutFrom = 1000;
  static constexpr double kValidationSplit = 0.2;
  static constexpr std::int64_t kPatience = 20;
  /// Where rows are held out, SGD takes momentum kMomentum and the gradients are clipped to norm
  /// kClipNorm (CompileOptions::clip_norm): momentum's larger steps fit tables whose target needs
  /// sharp functions of several columns (a person singled out by their schooling, sex and race), and
  /// the best epoch is kept before they fit the noise; clipping keeps a batch of extreme rows from
  /// throwing those larger steps into divergence. Below kHeldOutFrom rows nothing stops the
  /// training at its best epoch, and SGD takes no momentum.
  static constexpr double kMomentum = 0.9;
  static constexpr float kClipNorm = 5.0f;
  /// From kBinnedFrom rows, numbers get kBins piecewise-linear bins (ColumnSpec::bins): they pay on
  /// tables of that size and cost smaller noisy ones, whose rows cannot teach the extra inputs.
  static constexpr std::int64_t kBinnedFrom = 5000;
  static constexpr std::size_t kBins = 64;
  /// Whole-number codes get their steps at every size (ColumnSpec::steps): a code of a group is a
  /// category written as a number, which a network cannot read off the number's value.
  /// The values of each category's vector where columns are embedded (ColumnSpec::embed) and the
  /// layers do not say: a first layer Embedding(Embedding::kFromTable, kEmbeddingDim).
  static constexpr std::int64_t kEmbeddingDim = 8;
  /// Up to kMembers networks averaged (FitOptions::members): kMemberRows / rows of them, at least
  /// one. Averaging pays most on small noisy tables, where one network's seed matters most, and
  /// costs a fit per member, which large tables cannot afford within the time a default may take.
  static constexpr std::int64_t kMembers = 5;
  static constexpr std::int64_t kMemberRows = 100'000;

  std::size_t bins = 0;  // kBins or 0
  bool steps = true;
  /// Codes that get a step per value get an indicator per value too, at every size.
  bool levels = true;
  double validation_split = 0;  // kValidationSplit or 0
  std::int64_t patience = 0;    // kPatience, or 0: no early stopping
  double momentum = 0;          // kMomentum or 0 (SGD's)
  float clip_norm = 0;          // kClipNorm or 0: no clipping
  std::int64_t members = 1;     // 1 to kMembers
};
/// The defaults for a table of this many rows (all of a sharded fit's ranks together).
TableDefaults table_defaults(std::int64_t rows);

std::string to_string(Missing missing);
Missing parse_missing(const std::string& text);  // "fill", "error", "drop", "mean"; throws InputError

}  // namespace ember
