// The layer parts (ember/layers.hpp, engine/src/layer_part.hpp): every kind named, checked and
// round-tripped through its checkpoint entry, and Dropout's behaviour in training and predicting.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "layer_part.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

TEST(Layers, EveryKindHasItsNameAndRoundTripsItsCheckpointEntry) {
  std::set<std::string> names;
  for (const Layer& layer : testing::one_layer_of_each_kind()) {
    const std::string name = layer_name(layer);
    EXPECT_EQ(names.count(name), 0u) << name;
    names.insert(name);
    EXPECT_EQ(layer_names()[layer.index()], name);
    const SettingsJson json = layer_part::to_json(layer);
    EXPECT_EQ(json.at("type"), name);
    EXPECT_EQ(SettingsJson::parse(settings_json(layer)), json);
    EXPECT_EQ(layer_part::from_json(json), layer) << json.dump();
    EXPECT_NO_THROW(check_layer(layer));
  }
  EXPECT_EQ(names.size(), kLayerKinds);
  // Format 1 and 2 checkpoints name no type: a Dense layer.
  EXPECT_EQ(layer_part::from_json(SettingsJson{{"units", 3}, {"activation", "relu"}}),
            Layer(Dense(3, Activation::relu)));
  try {
    layer_part::from_json(SettingsJson{{"type", "conv2d"}});
    ADD_FAILURE() << "an unknown type was read";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("unknown layer type 'conv2d'; the types are dense, dropout, layernorm, embedding"),
              std::string::npos)
        << error.what();
  }
}

TEST(Layers, AModelOfEveryKindSavesAndLoadsWithItsPredictions) {
  std::vector<Layer> layers = testing::one_layer_of_each_kind();
  layers.push_back(Dense(2));
  Sequential model(layers, 4);
  model.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  const Matrix x = testing::random_input(layers, 64, 5, 1), y = testing::random_matrix(64, 2, 2);
  model.fit(x, y, {.epochs = 2, .batch_size = 16});
  const std::string path = testing::work_path("every_layer.safetensors");
  model.save(path);
  const Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.layers(), layers);
  EXPECT_EQ(loaded.parameters(), model.parameters());
  EXPECT_EQ(loaded.predict(x), model.predict(x));
}

/// The InputError's message make throws, or "(no error)".
std::string message(const std::function<void()>& make) {
  try {
    make();
  } catch (const InputError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(Layers, BadLayersAreRefusedNamingThem) {
  for (const float rate : {-0.1f, 1.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()})
    EXPECT_NE(message([&] {
                Sequential({Dense(4), Dropout(rate), Dense(1)});
              }).find("a Dropout layer's rate must be 0 to below 1"),
              std::string::npos)
        << rate;
  EXPECT_NE(message([] {
              Sequential({Dense(4), Dropout(0.5f)});
            }).find("a Sequential model ends with a Dense layer (its outputs), not Dropout(0.5)"),
            std::string::npos);
  EXPECT_NE(message([] { Sequential({Dense(0)}); }).find("a Dense layer needs 1 to"), std::string::npos);
  Sequential model({Dense(4), Dropout(0.5f), Dense(1)});
  model.build(3);
  EXPECT_NE(message([&] { model.weight(1); }).find("layer 1 (Dropout(0.5)) has no weight"), std::string::npos);
  EXPECT_NE(message([&] { model.bias(1); }).find("layer 1 (Dropout(0.5)) has no bias"), std::string::npos);
  EXPECT_EQ(model.weight(2).rows, 1);
  EXPECT_EQ(model.weight(2).cols, 4);
  EXPECT_EQ(model.parameter_count(), (3 + 1) * 4 + (4 + 1) * 1);
  EXPECT_EQ(model.parameter_count(1), 0);
  EXPECT_EQ(model.parameter_count(2), 5);
  for (const float epsilon :
       {0.0f, -1e-5f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    EXPECT_NE(message([&] {
                Sequential({LayerNorm(epsilon), Dense(1)});
              }).find("a LayerNorm layer's epsilon must be positive and finite"),
              std::string::npos)
        << epsilon;
}

// The formula, as torch.nn.LayerNorm: each row centred and divided by its (biased) standard
// deviation, then scaled and shifted per feature; the scale and shift are its parameters, weight
// and bias, the ones and zeros of the start.
TEST(Layers, LayerNormNormalizesEachRowThenScalesAndShifts) {
  Sequential model({LayerNorm(0.25f), Dense(2)});
  model.compile({.device = Device::cpu});
  model.build(4);
  EXPECT_EQ(model.parameter_count(0), 8);
  EXPECT_EQ(std::vector<float>(model.weight(0).data, model.weight(0).data + 4), std::vector<float>(4, 1.0f));
  EXPECT_EQ(std::vector<float>(model.bias(0).data, model.bias(0).data + 4), std::vector<float>(4, 0.0f));
  model.set_weight(0, Matrix{{1.0f, 2.0f, -1.0f, 0.5f}});
  model.set_bias(0, Matrix{{0.0f, 1.0f, 0.0f, -3.0f}});
  model.set_weight(1, Matrix{{1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 1.0f, 1.0f}});
  model.set_bias(1, Matrix{{0.0f, 0.0f}});
  const Matrix x{{1.0f, 2.0f, 3.0f, 6.0f}, {-2.0f, -2.0f, -2.0f, -2.0f}};
  const Matrix y = model.predict(x);
  // Row one: mean 3, deviations (-2, -1, 0, 3), variance 14 / 4; row two is constant: its
  // normalized values are 0, the output the shift's.
  const double std = std::sqrt(3.5 + 0.25);
  const double n[4] = {-2 / std * 1.0 + 0.0, -1 / std * 2.0 + 1.0, 0.0 * -1.0 + 0.0, 3 / std * 0.5 - 3.0};
  EXPECT_NEAR(y(0, 0), n[0], 1e-6);
  EXPECT_NEAR(y(0, 1), n[1] + n[2] + n[3], 1e-6);
  EXPECT_NEAR(y(1, 0), 0.0, 1e-6);
  EXPECT_NEAR(y(1, 1), 1.0 + 0.0 - 3.0, 1e-6);
}

// As torch.nn.BatchNorm1d: training normalizes each column by the batch's mean and biased
// variance and moves the running figures toward the batch's (the variance unbiased); predicting
// normalizes by the running figures. They are state: the optimizer leaves them alone (weight decay
// included), the checkpoint keeps them, and they lie after every trained parameter.
TEST(Layers, BatchNormTrainsOnTheBatchAndPredictsWithTheRunningFigures) {
  Sequential model({BatchNorm(0.25f, 0.5f), Dense(2)});
  model.compile({.optimizer = AdamW{.lr = 0.1f, .weight_decay = 0.5f}, .device = Device::cpu});
  model.build(2);
  EXPECT_EQ(model.parameter_count(0), 8);
  EXPECT_EQ(model.tensor_names(0), (std::vector<std::string>{"weight", "bias", "running_mean", "running_var"}));
  EXPECT_EQ(model.tensor(0, "running_var").data - model.parameters().data(), 4 + 6 + 2);  // after Dense's 6
  const Matrix x{{1.0f, 10.0f}, {2.0f, 10.0f}, {6.0f, 10.0f}, {3.0f, 14.0f}};
  model.fit(x, Matrix(4, 2, 0.5f), {.epochs = 1, .batch_size = 4, .normalize = false});
  // One step on the whole batch: column one mean 3, unbiased variance 14 / 3; column two mean 11,
  // unbiased variance 4.
  const ConstView mean = model.tensor(0, "running_mean"), var = model.tensor(0, "running_var");
  EXPECT_NEAR(mean(0, 0), 0.25 * 3.0, 1e-6);
  EXPECT_NEAR(mean(0, 1), 0.25 * 11.0, 1e-6);
  EXPECT_NEAR(var(0, 0), 0.75 + 0.25 * 14.0 / 3.0, 1e-6);
  EXPECT_NEAR(var(0, 1), 0.75 + 0.25 * 4.0, 1e-6);
  model.set_weight(0, Matrix{{2.0f, -1.0f}});
  model.set_bias(0, Matrix{{0.5f, 0.0f}});
  model.set_weight(1, Matrix{{1.0f, 0.0f}, {0.0f, 1.0f}});
  model.set_bias(1, Matrix{{0.0f, 0.0f}});
  const Matrix y = model.predict(x);
  for (std::int64_t r = 0; r < 4; ++r) {
    EXPECT_NEAR(y(r, 0), (x(r, 0) - mean(0, 0)) / std::sqrt(var(0, 0) + 0.5) * 2.0 + 0.5, 1e-5);
    EXPECT_NEAR(y(r, 1), -(x(r, 1) - mean(0, 1)) / std::sqrt(var(0, 1) + 0.5), 1e-5);
  }
  const std::string path = testing::work_path("batch_norm.safetensors");
  model.save(path);
  const Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.parameters(), model.parameters());
  EXPECT_EQ(loaded.predict(x), y);
  EXPECT_NE(message([&] {
              model.set_tensor(0, "running_var", Matrix{{1.0f, -0.5f}});
            }).find("a BatchNorm layer's running variance cannot be negative: -0.5 in column 1"),
            std::string::npos);
  EXPECT_EQ(model.predict(x), y);  // refused: nothing changed
  EXPECT_NE(message([] {
              Sequential({BatchNorm(1.5f), Dense(1)});
            }).find("momentum must be 0 to 1"),
            std::string::npos);
  EXPECT_NE(message([] {
              Sequential({BatchNorm(0.1f, 0.0f), Dense(1)});
            }).find("epsilon must be positive"),
            std::string::npos);
}

// As torch.nn.Embedding then Flatten: each index column's row of the table, after the values that
// pass through; the table is the layer's weight (input_dim, output_dim), N(0, 1) at first.
TEST(Layers, EmbeddingLooksUpEachIndexColumnsVectorAfterThePassedValues) {
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
TEST(Layers, EmbeddingTrainsOnCategoriesThatTheScalerLeavesAlone) {
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

TEST(Layers, EmbeddingInputsAndSettingsAreCheckedNamingThem) {
  for (const Embedding& bad : {Embedding(-1, 2), Embedding((1 << 24) + 1, 2), Embedding(3, 0), Embedding(3, 2, -1)})
    EXPECT_NE(message([&] {
                Sequential({bad, Dense(1)});
              }).find("an Embedding layer's"),
              std::string::npos)
        << describe(bad);
  EXPECT_NE(message([] {
              Sequential({Embedding(3, 2, 4), Dense(1)}).build(3);
            }).find("Embedding(3, 2, columns=4) reads 4 index columns but its input has 3"),
            std::string::npos);
  EXPECT_NE(message([] {
              Sequential({Embedding(Embedding::kFromTable, 2), Dense(1)}).build(3);
            }).find("Embedding(0, 2) is sized by the columns a fit on a table embeds (ColumnSpec::embed)"),
            std::string::npos);
  EXPECT_NE(message([] {
              Sequential({Dense(4), Embedding(3, 2), Dense(1)}).build(3);
            })
                .find("Embedding(3, 2) reads the model's input columns as category indices; it must be the first "
                      "layer, not layer 2"),
            std::string::npos);
  Sequential model({Embedding(3, 2, 1), Dense(1)});
  model.compile({.device = Device::cpu});
  model.build(2);
  for (const float bad : {-1.0f, 3.0f, 1.5f})
    EXPECT_NE(message([&] {
                model.predict(Matrix{{0.0f, 1.0f}, {0.0f, bad}});
              })
                  .find(fmt::format("input row 2 column 2 is {}, not a category index: Embedding(3, 2, columns=1) "
                                    "takes whole numbers 0 to 2 there",
                                    bad)),
              std::string::npos)
        << bad;
  EXPECT_NE(message([&] {
              model.fit(Matrix{{0.0f, 7.0f}}, Matrix{{1.0f}}, {.epochs = 1});
            }).find("input row 1 column 2 is 7, not a category index"),
            std::string::npos);
}

/// Regression data: y = a sum of x's columns with noise.
std::pair<Matrix, Matrix> data(std::int64_t rows) {
  const Matrix x = testing::random_matrix(rows, 6, 8);
  Matrix y(rows, 1);
  for (std::int64_t r = 0; r < rows; ++r) y(r, 0) = x(r, 0) - 2 * x(r, 3) + x(r, 4) * x(r, 5);
  return {x, y};
}

/// model's Dense layers' weights set into other, whose Dense layers are the same in order.
void copy_dense_weights(const Sequential& model, Sequential& other) {
  std::size_t o = 0;
  for (std::size_t l = 0; l < model.layers().size(); ++l) {
    if (!std::holds_alternative<Dense>(model.layers()[l])) continue;
    while (!std::holds_alternative<Dense>(other.layers()[o])) ++o;
    const ConstView w = model.weight(l), b = model.bias(l);
    other.set_weight(o, Matrix(w.rows, w.cols, std::span<const float>(w.data, w.size())));
    other.set_bias(o, Matrix(1, b.cols, std::span<const float>(b.data, b.size())));
    ++o;
  }
}

TEST(Layers, DropoutPredictsAsTheIdentity) {
  const auto [x, y] = data(200);
  Sequential with({Dense(16, Activation::relu), Dropout(0.5f), Dense(16, Activation::relu), Dropout(0.2f), Dense(1)},
                  3);
  with.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  with.fit(x, y, {.epochs = 3, .batch_size = 32});
  Sequential without({Dense(16, Activation::relu), Dense(16, Activation::relu), Dense(1)});
  without.compile({.device = Device::cpu});
  without.fit(x, y, {.epochs = 0});  // fits the scaler, on the same rows: the same statistics
  copy_dense_weights(with, without);
  EXPECT_EQ(with.predict(x), without.predict(x));
  EXPECT_EQ(with.predict(x), with.predict(x));  // no draw at all when predicting
}

TEST(Layers, DropoutAtRateZeroTrainsAsWithoutItAndAtOtherRatesNot) {
  const auto [x, y] = data(150);
  const auto train = [&](const std::vector<Layer>& layers, const Sequential* start) {
    Sequential model(layers, 5);
    model.compile({.optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .device = Device::cpu});
    model.build(x.cols());
    if (start != nullptr) copy_dense_weights(*start, model);
    model.fit(x, y, {.epochs = 3, .batch_size = 16});
    return model;
  };
  Sequential plain({Dense(12, Activation::relu), Dense(12, Activation::relu), Dense(1)}, 5);
  plain.build(x.cols());
  const Sequential reference = train(plain.layers(), &plain);
  const Sequential zero =
      train({Dense(12, Activation::relu), Dropout(0.0f), Dense(12, Activation::relu), Dropout(0.0f), Dense(1)}, &plain);
  const Sequential half =
      train({Dense(12, Activation::relu), Dropout(0.5f), Dense(12, Activation::relu), Dropout(0.0f), Dense(1)}, &plain);
  EXPECT_EQ(zero.parameters(), reference.parameters());
  EXPECT_NE(half.parameters(), reference.parameters());
  // Another seed draws other masks.
  Sequential other({Dense(12, Activation::relu), Dropout(0.5f), Dense(12, Activation::relu), Dropout(0.0f), Dense(1)},
                   6);
  other.compile({.optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .device = Device::cpu});
  other.build(x.cols());
  copy_dense_weights(plain, other);
  other.fit(x, y, {.epochs = 3, .batch_size = 16});
  EXPECT_NE(other.parameters(), half.parameters());
}

}  // namespace
}  // namespace ember
