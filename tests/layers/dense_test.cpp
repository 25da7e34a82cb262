// Dense: the example the tests over every kind use, and its float64 form.
#include "activation_math.hpp"
#include "test_support.hpp"

namespace ember::testing {
namespace {

// y = activation(W x + b), W (units, in) row-major then b, as torch.nn.Linear.
EMBER_LAYER_EXAMPLE(1, Dense(7, Activation::tanh),
                    [](const Dense& layer, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const auto in = static_cast<std::int64_t>(rows.front().size());
                      for (std::vector<double>& row : rows) {
                        std::vector<double> out(static_cast<std::size_t>(layer.units));
                        for (std::int64_t o = 0; o < layer.units; ++o) {
                          double sum = p[layer.units * in + o];  // the bias
                          for (std::int64_t i = 0; i < in; ++i) sum += p[o * in + i] * row[static_cast<std::size_t>(i)];
                          activations::visit(layer.activation, [&](auto part) {
                            out[static_cast<std::size_t>(o)] = decltype(part)::forward(sum);
                          });
                        }
                        row = out;
                      }
                      return static_cast<std::size_t>(layer.units * in + layer.units);
                    });

}  // namespace
}  // namespace ember::testing
