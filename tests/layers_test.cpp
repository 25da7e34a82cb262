// The layer parts (ember/layers.hpp, engine/src/layer_part.hpp): every kind named, checked and
// round-tripped through its checkpoint entry; each kind's own formula tests are in tests/layers/.
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

TEST(Layers, BadLayersAreRefusedNamingThem) {
  for (const float rate : {-0.1f, 1.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()})
    EXPECT_NE(testing::input_error_message([&] {
                Sequential({Dense(4), Dropout(rate), Dense(1)});
              }).find("a Dropout layer's rate must be 0 to below 1"),
              std::string::npos)
        << rate;
  EXPECT_NE(testing::input_error_message([] {
              Sequential({Dense(4), Dropout(0.5f)});
            }).find("a Sequential model ends with a Dense layer (its outputs), not Dropout(0.5)"),
            std::string::npos);
  EXPECT_NE(testing::input_error_message([] { Sequential({Dense(0)}); }).find("a Dense layer needs 1 to"),
            std::string::npos);
  Sequential model({Dense(4), Dropout(0.5f), Dense(1)});
  model.build(3);
  EXPECT_NE(testing::input_error_message([&] { model.weight(1); }).find("layer 1 (Dropout(0.5)) has no weight"),
            std::string::npos);
  EXPECT_NE(testing::input_error_message([&] { model.bias(1); }).find("layer 1 (Dropout(0.5)) has no bias"),
            std::string::npos);
  EXPECT_EQ(model.weight(2).rows, 1);
  EXPECT_EQ(model.weight(2).cols, 4);
  EXPECT_EQ(model.parameter_count(), (3 + 1) * 4 + (4 + 1) * 1);
  EXPECT_EQ(model.parameter_count(1), 0);
  EXPECT_EQ(model.parameter_count(2), 5);
  for (const float epsilon :
       {0.0f, -1e-5f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    EXPECT_NE(testing::input_error_message([&] {
                Sequential({LayerNorm(epsilon), Dense(1)});
              }).find("a LayerNorm layer's epsilon must be positive and finite"),
              std::string::npos)
        << epsilon;
}

}  // namespace
}  // namespace ember
