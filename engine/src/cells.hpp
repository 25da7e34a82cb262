#pragma once
// How the CSV reader reads one cell; shared with the preprocessing, which reads text cells as
// numbers where a model needs them.
#include <string_view>

namespace ember::cells {

/// The cells that mark a missing value: empty, and pandas' default tokens.
inline constexpr std::string_view kMissingTokens[] = {"",    "NA",   "N/A",  "n/a",  "#N/A", "<NA>", "NaN",
                                                      "nan", "-NaN", "-nan", "NULL", "null", "None"};
/// Whether a trimmed cell marks a missing value (one of kMissingTokens).
bool is_missing(std::string_view cell);

enum class Parsed { number, not_a_number, out_of_range };
/// A trimmed, non-missing cell as a finite float32 (a leading '+' allowed).
Parsed parse_number(std::string_view cell, float& out);

}  // namespace ember::cells
