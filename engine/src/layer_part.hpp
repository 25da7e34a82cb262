#pragma once
// What the plan, the model and the checkpoint need of each kind of layer (ember/layers.hpp): one
// Part<Settings> per kind, in layer_part.cpp, holds its checks, its parameters and their
// initialization, the buffers it keeps in a plan, its forward and backward as backend ops, and its
// checkpoint entry. The functions below dispatch on the kind; a kind without a part does not compile.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ember/backend.hpp"
#include "ember/layers.hpp"
#include "onnx_graph.hpp"
#include "settings_json.hpp"

namespace ember::layer_part {

/// InputError unless the layer's settings are valid ("a Dense layer needs 1 to ... units").
void check(const Layer& layer);
/// Columns of the layer's output for in columns of input.
std::int64_t output_width(const Layer& layer, std::int64_t in);

/// One parameter tensor of a layer: its name in the checkpoint ("layers.{i}.{name}", as PyTorch's
/// state_dict) and shape, and whether it is state that forward updates rather than a trained
/// parameter (a BatchNorm's running figures, PyTorch's buffers). ParameterLayout places them.
struct ParameterShape {
  std::string name;
  std::vector<std::int64_t> shape;
  bool state = false;
};
std::vector<ParameterShape> parameters(const Layer& layer, std::int64_t in);
/// InputError unless values are valid ones for the layer's tensor of that name (parameters()'s
/// name): a BatchNorm's running variance may not be negative. Values set from outside (a
/// checkpoint, set_tensor) are checked; training keeps them valid.
void check_values(const Layer& layer, const std::string& name, std::span<const float> values);
/// Appends the layer's initial values of every tensor of parameters(), in that order, drawn from seed.
void initialize(const Layer& layer, std::int64_t in, std::uint64_t seed, std::vector<float>& parameters);

/// The per-row buffers a plan keeps for the layer, each (batch, output width): its output (else
/// forward hands its input on) and, training, a second one (a Dense layer's pre-activation, for an
/// activation whose backward reads it).
struct Buffers {
  bool output = true;
  bool extra = false;
};
Buffers buffers(const Layer& layer, bool training);
/// The floats a training plan keeps for a layer whose statistics span the batch, to combine them
/// over the ranks of a data-parallel step (BatchAcrossRanks' scratch: a BatchNorm's); 0 for a layer
/// that treats each row apart.
std::int64_t batch_scratch(const Layer& layer, std::int64_t in);

/// Where a plan placed one layer's memory (null where the layer has none).
struct Slots {
  std::int64_t in = 0, out = 0;
  float* parameters = nullptr;  // its trained tensors, in parameters() order
  float* gradients = nullptr;   // the same layout
  float* state = nullptr;       // its state tensors, in parameters() order
  float* output = nullptr;      // (batch, out)
  float* extra = nullptr;       // (batch, out)
  float* scratch = nullptr;     // training: batch_scratch floats
  std::uint64_t seed = 0;       // the layer's key for random draws (Dropout's mask)
};
/// The key of layer l's random draws in a model of seed model_seed.
std::uint64_t layer_seed(std::uint64_t model_seed, std::size_t l);
/// One pass of the layers on rows rows: training or inference, and the step's two counters in
/// backend memory (its gather cursor and epoch) for random draws. ranks (training a data-parallel
/// step; else null): the batch is every rank's rows, and a layer whose statistics span it sums them
/// over the ranks with it (BatchAcrossRanks), a rank without rows too (rows 0). row_weights (a
/// training pass of a plan that sums rows exactly, Plan::sums_rows_exactly): the rows' weights
/// (rows, 1); dy is then each row's own loss gradient, and a layer's parameter gradients are the
/// weighted mean over the rows (Backend::dense_parameter_gradients).
struct Pass {
  Backend& backend;
  std::int64_t rows = 0;
  bool training = false;
  const std::int32_t* counters = nullptr;
  const SumOverRanks* ranks = nullptr;
  std::optional<ConstView> row_weights{};
};
/// Runs the layer on input (rows, in); returns its output (rows, out).
ConstView forward(const Layer& layer, const Slots& slots, const Pass& pass, ConstView input);
/// The layer's backward. dy (rows, out) is the gradient at its output, already through its own
/// activation when folded; input and output are forward's. Writes the parameter gradients and,
/// when dx is given, the input gradient (rows, in), which may be dy's memory when in == out.
/// relu_below, when given, is the output of the ReLU layer below (folds_relu): a layer that applies
/// that ReLU's backward to dx returns true, and the layer below then skips it.
bool backward(const Layer& layer, const Slots& slots, const Pass& pass, ConstView input, ConstView output, View dy,
              bool folded, std::optional<ConstView> relu_below, std::optional<View> dx);
/// Whether the layer's backward takes Pass::row_weights: it computes each row apart, and its
/// parameter gradients are sums over the rows (a part with `static constexpr bool row_weights = true`).
bool takes_row_weights(const Layer& layer);
/// Whether the layer's output is a ReLU's, whose backward the layer above may fold into its input
/// gradient (a Dense layer with ReLU).
bool folds_relu(const Layer& layer);

/// The input columns a layer reads as category indices (an Embedding): the last count of its input,
/// each a whole number 0 to categories - 1. Such a layer takes the model's input: it is the first
/// layer, and the model checks those values. count 0 for a layer of numbers.
struct Indices {
  std::int64_t count = 0, categories = 0;
};
Indices indices(const Layer& layer, std::int64_t in);
/// The first layer as a first fit on a table sizes it, where that table's preprocessing gives
/// `columns` category index inputs (last) into `categories` table rows: Embedding(kFromTable, d)
/// becomes Embedding(categories, d, columns). InputError where the layer cannot take them.
Layer sized_for_table(const Layer& layer, std::int64_t columns, std::int64_t categories);

/// The layer's nodes in an ONNX graph, predicting (docs/deploying.md); returns its output's name.
std::string onnx(const Layer& layer, OnnxGraph& graph, const OnnxLayer& at);

/// The layer's entry in the checkpoint's architecture ({"type": "dense", "units": 64, ...}).
SettingsJson to_json(const Layer& layer);
/// InputError for an unknown type or bad settings; nlohmann's exceptions for a missing key. An
/// entry without "type" is a Dense layer (format 1 and 2 checkpoints).
Layer from_json(const SettingsJson& json);

}  // namespace ember::layer_part
