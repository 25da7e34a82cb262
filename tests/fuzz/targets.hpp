#pragma once
// What Ember must survive: any bytes as a CSV file or as a checkpoint either load (and, for a
// checkpoint, predict) or raise ember::InputError. Anything else (a crash, another exception, a
// sanitizer report, an allocation the input's size does not justify) is a bug. Two drivers run
// these, and each returns whether the input loaded: libFuzzer (fuzz_csv.cpp, fuzz_checkpoint.cpp; -DEMBER_FUZZ=ON) and
// the test suite's deterministic mutations (tests/robustness_test.cpp), which CI also runs under the sanitizers.
#include <cstdint>
#include <span>
#include <string>

namespace ember::fuzz {

/// The first byte c picks the delimiter (c % 6: , ; tab | " newline), the missing-value policy (c / 6
/// % 3: error, drop, mean), one-hot encoding of the text columns (c / 18 % 2) and ignoring the first
/// column (c / 36 % 2); the rest is the file. Its last column is the target; a model learns the
/// preprocessing from the table (fit with no epochs) and predicts the table, as `ember train` and
/// `ember predict` do.
bool csv_input(std::span<const std::uint8_t> bytes);

/// Writes the bytes to scratch_path, loads them as a checkpoint and predicts one row.
bool checkpoint_input(std::span<const std::uint8_t> bytes, const std::string& scratch_path);

}  // namespace ember::fuzz
