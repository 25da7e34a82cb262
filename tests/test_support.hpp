#pragma once
// Helpers shared by the tests: random inputs, NaN poisoning, relative error, tolerances.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::testing {

/// A file name in the tests' work directory (created if needed).
inline std::string work_path(const std::string& name) {
  std::filesystem::create_directories(EMBER_TEST_WORKDIR);
  return std::string(EMBER_TEST_WORKDIR) + "/" + name;
}

/// Fresh values uniform in [-1, 1) (never zeros).
inline Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Matrix m(rows, cols);
  Random random(seed);
  for (std::int64_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(2.0 * random.uniform() - 1.0);
  return m;
}

inline Matrix poisoned(std::int64_t rows, std::int64_t cols) {
  return Matrix(rows, cols, std::numeric_limits<float>::quiet_NaN());
}

/// ||out - ref|| / ||ref|| over n values, float64; NaN anywhere gives NaN (so it fails any bound).
template <typename A, typename B>
double relative_error(const A* out, const B* ref, std::int64_t n) {
  double diff = 0.0, norm = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
    diff += d * d;
    norm += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  if (norm == 0.0) return std::sqrt(diff);
  return std::sqrt(diff / norm);
}

inline double relative_error(const Matrix& out, const Matrix& ref) {
  if (out.rows() != ref.rows() || out.cols() != ref.cols()) return std::numeric_limits<double>::infinity();
  return relative_error(out.data(), ref.data(), out.size());
}

// Float32 results of O(k)-term sums compared with float64 references land near sqrt(k) * 2^-24;
// 1e-5 leaves room for k in the millions. Used for every op with float32 outputs.
inline constexpr double kFloat32Tolerance = 1e-5;
// TF32 tensor cores round each input to 10 mantissa bits (relative 2^-11 ~ 4.9e-4) and accumulate
// in float32: a product's relative error is ~7e-4 and a k-term sum's, norm-wise, the same order.
// 5e-3 is a safe bound; FP32 results land 100 times lower, which the TF32 tests also check.
inline constexpr double kTf32Tolerance = 5e-3;
// Central finite differences in float64 with step 1e-6 against float32 analytic gradients: the
// float32 rounding of the gradient (~1e-7 relative) dominates, so 1e-4 is a safe bound.
inline constexpr double kGradientTolerance = 1e-4;

}  // namespace ember::testing
