#pragma once
// The embedding lookup's reading of an index (engine/src/layers/embedding.hpp), which every backend
// calls, so that they agree on what is a bad index.
#include "host_device.hpp"

namespace ember::embedding_math {

/// The table row that value names, or -1 unless it is a whole number 0 to categories - 1 (NaN
/// included). categories <= 2^24, so every row has an exact float.
EMBER_HOST_DEVICE inline long long table_row(float value, long long categories) {
  if (!(value >= 0.0f && value < static_cast<float>(categories))) return -1;
  const long long row = static_cast<long long>(value);
  return static_cast<float>(row) == value ? row : -1;
}

}  // namespace ember::embedding_math
