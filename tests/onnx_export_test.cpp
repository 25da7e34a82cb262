// Sequential::export_onnx: what the file holds and what is refused. ONNX Runtime runs the exported
// graphs against Ember's predictions in python/tests/test_onnx.py.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "ember/ember.hpp"
#include "test_support.hpp"

#if defined(EMBER_WITH_ONNX)
#include <onnx/onnx_pb.h>
#endif

namespace ember {
namespace {

Sequential trained_on_a_table() {
  std::string csv = "size,city,price\n";
  for (int i = 0; i < 40; ++i)
    csv += fmt::format("{},{},{}\n", i % 7 == 0 ? std::string() : std::to_string(i), i % 3 == 0 ? "Lyon" : "Nice",
                       2 * i + (i % 3 == 0 ? 5 : 0));
  Sequential model({Dense(4, Activation::gelu), Dropout(0.1f), Dense(1)}, 2);
  model.compile({.device = Device::cpu});
  model.fit(parse_csv(csv, "t.csv"), {.targets = {"price"}}, {.epochs = 2});
  return model;
}

TEST(OnnxExport, WritesTheModelAsOneGraphOrSaysWhyNot) {
  const Sequential model = trained_on_a_table();
  const std::string path = testing::work_path("table.onnx");
  std::filesystem::remove(path);
  if (!onnx_export_available()) {
    try {
      model.export_onnx(path);
      FAIL() << "a build without ONNX exported";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("libonnx-dev"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    GTEST_SKIP() << "this build has no ONNX export";
  }
  model.export_onnx(path);
#if defined(EMBER_WITH_ONNX)
  std::ifstream file(path, std::ios::binary);
  onnx::ModelProto onnx_model;
  ASSERT_TRUE(onnx_model.ParseFromIstream(&file));
  const onnx::GraphProto& graph = onnx_model.graph();
  // One input per feature column, named after it: the number as float, the category as text.
  ASSERT_EQ(graph.input_size(), 2);
  EXPECT_EQ(graph.input(0).name(), "size");
  EXPECT_EQ(graph.input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(graph.input(1).name(), "city");
  EXPECT_EQ(graph.input(1).type().tensor_type().elem_type(), onnx::TensorProto::STRING);
  EXPECT_EQ(graph.input(0).type().tensor_type().shape().dim(0).dim_param(), "rows");  // any batch
  ASSERT_EQ(graph.output_size(), 1);
  EXPECT_EQ(graph.output(0).name(), "predictions");
  // The weights as the model holds them (the Dropout layer exports as nothing).
  std::size_t weights = 0;
  for (const onnx::TensorProto& tensor : graph.initializer())
    if (tensor.name().find("layers.") != std::string::npos) {
      ++weights;
      if (tensor.name().find("layers.2.weight") != std::string::npos) {
        const ConstView w = model.weight(2);
        ASSERT_EQ(tensor.raw_data().size(), static_cast<std::size_t>(w.rows * w.cols) * sizeof(float));
        EXPECT_EQ(std::memcmp(tensor.raw_data().data(), w.data, tensor.raw_data().size()), 0);
      }
    }
  EXPECT_EQ(weights, 4u);
  std::map<std::string, std::string> metadata;
  for (const auto& entry : onnx_model.metadata_props()) metadata[entry.key()] = entry.value();
  EXPECT_EQ(metadata["ember.task"], "regression");
  EXPECT_EQ(metadata["ember.targets"], "[\"price\"]");
#endif
}

TEST(OnnxExport, RefusesWhatItCannotWriteAndLeavesNoFile) {
  const std::string path = testing::work_path("refused.onnx");
  std::filesystem::remove(path);
  EXPECT_THROW(Sequential({Dense(1)}).export_onnx(path), InputError);
  EXPECT_FALSE(std::filesystem::exists(path));
  const Sequential model = trained_on_a_table();
  EXPECT_THROW(model.export_onnx(testing::work_path("no-such-folder/m.onnx")), InputError);
}

}  // namespace
}  // namespace ember
