// Embedding: the example the tests over every kind use, its float64 form, and its formula tests.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ember/ember.hpp"
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

// As torch.nn.Embedding then Flatten: each index column's row of the table, after the values that
// pass through; the table is the layer's weight (input_dim, output_dim), N(0, 1) at first.
TEST(LayerKind, EmbeddingLooksUpEachIndexColumnsVectorAfterThePassedValues) {
  Sequential model({Embedding(3, 2, 2), Dense(1)}, 9);
  model.compile({.device = Device::cpu});
  model.build(3);
  ASSERT_EQ(model.parameter_count(0), 6);
  EXPECT_EQ(model.weight(0).rows, 3);
  double sum = 0.0, squares = 0.0;
  Sequential wide({Embedding(1000, 100), Dense(1)}, 9);
  wide.build(1);
  for (std::int64_t i = 0; i < wide.weight(0).size(); ++i) {
    sum += wide.weight(0).data[i];
    squares += wide.weight(0).data[i] * wide.weight(0).data[i];
  }
  EXPECT_NEAR(sum / 1e5, 0.0, 0.02);
  EXPECT_NEAR(squares / 1e5, 1.0, 0.02);
  model.set_weight(0, Matrix{{1.0f, 2.0f}, {10.0f, 20.0f}, {100.0f, 200.0f}});
  // The output: x0, then the vectors of the two indices, weighted 1, 2, 3, 4, 5 and summed.
  model.set_weight(1, Matrix{{1.0f, 2.0f, 3.0f, 4.0f, 5.0f}});
  model.set_bias(1, Matrix{{0.0f}});
  const Matrix y = model.predict(Matrix{{0.5f, 2.0f, 0.0f}, {-1.0f, 1.0f, 1.0f}});
  EXPECT_FLOAT_EQ(y(0, 0), 0.5f + 2 * 100 + 3 * 200 + 4 * 1 + 5 * 2);
  EXPECT_FLOAT_EQ(y(1, 0), -1.0f + 2 * 10 + 3 * 20 + 4 * 10 + 5 * 20);
}

// Fit leaves the index columns out of the standardization (standardized they would not be indices:
// NaNs and a diverged fit), and learns the categories' effects.
TEST(LayerKind, EmbeddingTrainsOnCategoriesThatTheScalerLeavesAlone) {
  const std::int64_t rows = 600;
  Matrix x(rows, 2), y(rows, 1);
  Random random(4);
  const float effect[5] = {-3.0f, 0.0f, 2.0f, 5.0f, 1.0f};
  for (std::int64_t r = 0; r < rows; ++r) {
    x(r, 0) = static_cast<float>(random.uniform());
    x(r, 1) = static_cast<float>(random.below(5));
    y(r, 0) = 10.0f * x(r, 0) + effect[static_cast<int>(x(r, 1))];
  }
  Sequential model({Embedding(5, 3, 1), Dense(16, Activation::relu), Dense(1)}, 2);
  model.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  const History history = model.fit(x, y, {.epochs = 60, .batch_size = 32});
  EXPECT_GT(*history.epochs.back().r2, 0.97);
  const Matrix p = model.predict(Matrix{{0.5f, 0.0f}, {0.5f, 3.0f}});
  EXPECT_NEAR(p(1, 0) - p(0, 0), 8.0, 1.0);
}

TEST(LayerKind, EmbeddingInputsAndSettingsAreCheckedNamingThem) {
  for (const Embedding& bad : {Embedding(-1, 2), Embedding((1 << 24) + 1, 2), Embedding(3, 0), Embedding(3, 2, -1)})
    EXPECT_NE(input_error_message([&] {
                Sequential({bad, Dense(1)});
              }).find("an Embedding layer's"),
              std::string::npos)
        << describe(bad);
  EXPECT_NE(input_error_message([] {
              Sequential({Embedding(3, 2, 4), Dense(1)}).build(3);
            }).find("Embedding(3, 2, columns=4) reads 4 index columns but its input has 3"),
            std::string::npos);
  EXPECT_NE(input_error_message([] {
              Sequential({Embedding(Embedding::kFromTable, 2), Dense(1)}).build(3);
            }).find("Embedding(0, 2) is sized by the columns a fit on a table embeds (ColumnSpec::embed)"),
            std::string::npos);
  EXPECT_NE(input_error_message([] {
              Sequential({Dense(4), Embedding(3, 2), Dense(1)}).build(3);
            })
                .find("Embedding(3, 2) reads the model's input columns as category indices; it must be the first "
                      "layer, not layer 2"),
            std::string::npos);
  Sequential model({Embedding(3, 2, 1), Dense(1)});
  model.compile({.device = Device::cpu});
  model.build(2);
  for (const float bad : {-1.0f, 3.0f, 1.5f})
    EXPECT_NE(input_error_message([&] {
                model.predict(Matrix{{0.0f, 1.0f}, {0.0f, bad}});
              })
                  .find(fmt::format("input row 2 column 2 is {}, not a category index: Embedding(3, 2, columns=1) "
                                    "takes whole numbers 0 to 2 there",
                                    bad)),
              std::string::npos)
        << bad;
  EXPECT_NE(input_error_message([&] {
              model.fit(Matrix{{0.0f, 7.0f}}, Matrix{{1.0f}}, {.epochs = 1});
            }).find("input row 1 column 2 is 7, not a category index"),
            std::string::npos);
}

}  // namespace
}  // namespace ember::testing
