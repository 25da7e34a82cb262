#pragma once
// The steps between a CsvTable and a model's matrices, in the order fit runs them: the columns a
// spec names, the rows usable under its missing-value policy, what is learned from the training
// rows, and the encoding of any rows. predict and evaluate run the last step with what fit learned.
#include <cstdint>
#include <string>
#include <vector>

#include "ember/preprocessing.hpp"
#include "rank_sums.hpp"

namespace ember::preprocessing {

/// The features (every column but the targets and the ignored ones, with their types named or
/// inferred) and targets that spec names in table, checked; nothing learned yet. With
/// classification the one target holds class labels (text or numbers), else numbers. A column the
/// inference leaves out is named in warnings. Throws InputError.
Preprocessing columns_of(const CsvTable& table, const ColumnSpec& spec, bool classification,
                         std::vector<std::string>* warnings = nullptr);
/// Throws InputError when a later fit's spec contradicts the preprocessing the first fit learned.
void check_spec_matches(const Preprocessing& learned, const ColumnSpec& spec);
/// The table rows usable under p.missing: every row (error: InputError at the first missing cell;
/// mean: at the first missing target), those without a missing cell in a used column (drop), or
/// those without a missing target (fill).
/// training: the rows a fit learns from (its error advises another ColumnSpec::missing), else the
/// rows a trained model predicts or evaluates (the advice is to fill the cell or train again).
std::vector<std::int64_t> usable_rows(const Preprocessing& p, const CsvTable& table, bool with_targets, bool training);
/// Learns the categories and fill values from the given rows (the training rows), and from every
/// rank's where ranks combines them (sharded data).
void learn(Preprocessing& p, const CsvTable& table, const std::vector<std::int64_t>& rows, const RankSums& ranks = {});
/// Classification: the sorted distinct labels of the target in the given rows (every rank's with
/// ranks). InputError for fewer than two.
std::vector<std::string> class_labels(const Preprocessing& p, const CsvTable& table,
                                      const std::vector<std::int64_t>& rows, const RankSums& ranks = {});

struct Encoded {
  Matrix x;                           // (rows, p.input_width())
  Matrix y;                           // (rows, targets), empty without targets
  std::vector<std::string> warnings;  // e.g. categories training never saw, with their counts
};
/// The inputs (and targets) of the given rows, which must be usable. A class label not among
/// p.classes is an InputError naming its cell.
Encoded encode(const Preprocessing& p, const CsvTable& table, const std::vector<std::int64_t>& rows, bool with_targets);

/// A preprocessing of plain numeric features named `features`, no targets.
Preprocessing numeric(const std::vector<std::string>& features, const std::vector<std::string>& targets);

}  // namespace ember::preprocessing
