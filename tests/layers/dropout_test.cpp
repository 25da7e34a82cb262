// Dropout: the example the tests over every kind use, and its float64 form.
#include "dropout_math.hpp"
#include "layer_part.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// The mask of a plan of seed 0's first training step (counters: the cursor after the batch's rows,
// epoch 0), kept elements scaled by 1 / (1 - rate).
EMBER_LAYER_EXAMPLE(3, Dropout(0.35f),
                    [](const Dropout& dropout, Rows& rows, const double*, const FormContext& at) -> std::size_t {
                      const std::int32_t counters[2] = {static_cast<std::int32_t>(at.rows), 0};
                      const dropout_math::Mask mask =
                          dropout_math::mask_for(layer_part::layer_seed(0, at.layer), dropout.rate);
                      const auto in = static_cast<std::uint64_t>(rows.front().size());
                      for (std::size_t r = 0; r < rows.size(); ++r)
                        for (std::uint64_t i = 0; i < in; ++i) {
                          const std::uint64_t index = r * in + i;
                          const bool kept =
                              (dropout_math::kept_bits(mask, counters, index / 4) >> (index % 4) & 1u) != 0;
                          rows[r][i] *= kept ? static_cast<double>(mask.scale) : 0.0;
                        }
                      return 0;
                    });

}  // namespace
}  // namespace ember::testing
