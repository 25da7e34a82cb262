// BatchNorm: the example the tests over every kind use, and its float64 form.
#include "test_support.hpp"

namespace ember::testing {
namespace {

// Training: each column less the batch's mean, over sqrt(its biased variance + epsilon), times the
// scale plus the shift. The running figures lie after every trained parameter, unread here.
// After an activation in one_layer_of_each_kind: after a shift of its own columns (LayerNorm's, a
// Dense layer's bias), that shift's gradient is zero, and noise then steers Adam's steps.
EMBER_LAYER_EXAMPLE(2, BatchNorm(0.2f, 1e-3f),
                    [](const BatchNorm& norm, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const std::size_t width = rows.front().size();
                      const auto n = static_cast<double>(rows.size());
                      for (std::size_t k = 0; k < width; ++k) {
                        double mean = 0.0, variance = 0.0;
                        for (const std::vector<double>& row : rows) mean += row[k] / n;
                        for (const std::vector<double>& row : rows) variance += (row[k] - mean) * (row[k] - mean) / n;
                        for (std::vector<double>& row : rows)
                          row[k] = (row[k] - mean) / std::sqrt(variance + norm.epsilon) * p[k] + p[width + k];
                      }
                      return 2 * width;
                    });

}  // namespace
}  // namespace ember::testing
