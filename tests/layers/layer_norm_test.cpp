// LayerNorm: the example the tests over every kind use, and its float64 form.
#include "test_support.hpp"

namespace ember::testing {
namespace {

// Each row less its mean, over sqrt(its biased variance + epsilon), times the scale plus the shift.
EMBER_LAYER_EXAMPLE(4, LayerNorm(1e-3f),
                    [](const LayerNorm& norm, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const std::size_t width = rows.front().size();
                      for (std::vector<double>& row : rows) {
                        double mean = 0.0, variance = 0.0;
                        for (const double v : row) mean += v / static_cast<double>(width);
                        for (const double v : row) variance += (v - mean) * (v - mean) / static_cast<double>(width);
                        for (std::size_t k = 0; k < width; ++k)
                          row[k] = (row[k] - mean) / std::sqrt(variance + norm.epsilon) * p[k] + p[width + k];
                      }
                      return 2 * width;
                    });

}  // namespace
}  // namespace ember::testing
