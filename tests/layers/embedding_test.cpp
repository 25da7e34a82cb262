// Embedding: the example the tests over every kind use, and its float64 form.
#include "test_support.hpp"

namespace ember::testing {
namespace {

// The first columns pass through; each of the last `columns` indexes a row of the table (input_dim,
// output_dim), which takes its place. First in one_layer_of_each_kind: it reads category indices.
EMBER_LAYER_EXAMPLE(0, Embedding(5, 3, 1),
                    [](const Embedding& embedding, Rows& rows, const double* p, const FormContext&) -> std::size_t {
                      const auto in = static_cast<std::int64_t>(rows.front().size());
                      const std::int64_t columns = embedding.columns == 0 ? in : embedding.columns;
                      for (std::vector<double>& row : rows) {
                        std::vector<double> out(row.begin(), row.begin() + (in - columns));
                        for (std::int64_t j = in - columns; j < in; ++j) {
                          const auto index = static_cast<std::int64_t>(row[static_cast<std::size_t>(j)]);
                          for (std::int64_t d = 0; d < embedding.output_dim; ++d)
                            out.push_back(p[index * embedding.output_dim + d]);
                        }
                        row = out;
                      }
                      return static_cast<std::size_t>(embedding.input_dim * embedding.output_dim);
                    });

}  // namespace
}  // namespace ember::testing
