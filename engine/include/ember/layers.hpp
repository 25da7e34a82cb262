#pragma once
// The layers a Sequential model stacks. Each kind is a part (engine/src/layer_part.hpp): its
// parameters and their initialization, its forward and backward on the backend and its checkpoint
// entry live there; this header only holds each kind's settings, so that the public API needs no
// engine internals.
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ember/activation.hpp"

namespace ember {

/// y = activation(x @ weight^T + bias), as torch.nn.Linear followed by the activation; weight is
/// (units, inputs), Glorot-uniform at first (as Keras), bias zero.
struct Dense {
  explicit Dense(std::int64_t units, Activation activation = Activation::linear)
      : units(units), activation(activation) {}
  std::int64_t units;
  Activation activation;
  bool operator==(const Dense&) const = default;
};

/// While training, zeroes each input element with probability rate and scales the others by
/// 1 / (1 - rate), as torch.nn.Dropout; predicting, the identity. rate is 0 to below 1. The mask
/// comes from a counter-based generator (Philox4x32-10) keyed by the model's seed, the layer, the
/// epoch and the batch's position, so that every backend draws the same one and a resumed fit
/// draws what the uninterrupted fit would have.
struct Dropout {
  explicit Dropout(float rate = 0.5f) : rate(rate) {}
  float rate;
  bool operator==(const Dropout&) const = default;
};

/// Normalizes each row over its features, then scales and shifts each feature by learned factors,
/// as torch.nn.LayerNorm(features, eps=epsilon): y = (x - mean) / sqrt(var + epsilon) * weight +
/// bias, mean and var (biased, divided by the features) of the row; weight starts at one, bias at
/// zero. Keras' LayerNormalization computes the same but defaults to epsilon 1e-3. epsilon is
/// positive and finite.
struct LayerNorm {
  explicit LayerNorm(float epsilon = 1e-5f) : epsilon(epsilon) {}
  float epsilon;
  bool operator==(const LayerNorm&) const = default;
};

/// Divides each row by its root mean square, then scales each feature by a learned factor, as
/// torch.nn.RMSNorm(features, eps=epsilon) and Keras' RMSNormalization: y = x / sqrt(mean(x^2) +
/// epsilon) * weight, the mean over the row's features; weight starts at one. No centring and no
/// shift, unlike LayerNorm. epsilon is positive and finite; 1e-6 by default, as Keras (PyTorch's
/// default is the float type's machine epsilon, about 1.2e-7).
struct RMSNorm {
  explicit RMSNorm(float epsilon = 1e-6f) : epsilon(epsilon) {}
  float epsilon;
  bool operator==(const RMSNorm&) const = default;
};

/// Multiplies each feature by a learned factor: y = x * weight, weight (features) starting at init.
/// A diagonal linear layer with no bias, as the scaling layer of RealMLP (Holzmueller et al., "Better
/// by Default", 2024), which puts one first so that the network learns how much each input counts.
/// PyTorch and Keras have no module of it. init is finite.
struct Scale {
  explicit Scale(float init = 1.0f) : init(init) {}
  float init;
  bool operator==(const Scale&) const = default;
};

/// Normalizes each feature over the batch's rows, then scales and shifts it by learned factors, as
/// torch.nn.BatchNorm1d(features, eps=epsilon, momentum=momentum): training, y = (x - mean) /
/// sqrt(var + epsilon) * weight + bias with mean and var (biased) of the feature over the batch,
/// and the running figures move toward them: running = (1 - momentum) * running + momentum * batch
/// (the variance unbiased, divided by rows - 1, as PyTorch); predicting, y uses the running figures.
/// weight starts at one, bias and running_mean at zero, running_var at one. The running figures are
/// state, not trained: the optimizer, weight decay and gradient clipping leave them alone, and the
/// checkpoint keeps them (layers.{i}.running_mean / running_var, as PyTorch's state_dict). A batch
/// of one row normalizes to bias and leaves the running figures as they were (PyTorch refuses it).
/// Keras' BatchNormalization calls 1 - momentum its momentum (0.99 by default) and uses epsilon
/// 1e-3. momentum is 0 to 1, epsilon positive and finite.
struct BatchNorm {
  explicit BatchNorm(float momentum = 0.1f, float epsilon = 1e-5f) : momentum(momentum), epsilon(epsilon) {}
  float momentum;
  float epsilon;
  bool operator==(const BatchNorm&) const = default;
};

/// A learned vector (output_dim values) per category, as torch.nn.Embedding(input_dim, output_dim)
/// over each of the last `columns` input columns (every input column when columns is 0), which hold
/// category indices 0 to input_dim - 1 (whole numbers; the model checks them): the input's other
/// columns pass through first, then each index column's vector, so the output has in - columns +
/// columns * output_dim values. One table (input_dim, output_dim) serves every index column, as
/// Keras' Embedding followed by Flatten; a table's columns that share no categories use separate
/// index ranges of it (the preprocessing's categorical columns do). The table starts N(0, 1), as
/// PyTorch's (Keras draws U(-0.05, 0.05)). It takes the model's input: it is the first layer.
/// Embedding(kFromTable, output_dim) is sized by the first fit on a table: one index column per
/// ColumnSpec::embed column, input_dim their categories (Preprocessing::embedding_categories).
struct Embedding {
  static constexpr std::int64_t kFromTable = 0;
  Embedding(std::int64_t input_dim, std::int64_t output_dim, std::int64_t columns = 0)
      : input_dim(input_dim), output_dim(output_dim), columns(columns) {}
  std::int64_t input_dim;
  std::int64_t output_dim;
  std::int64_t columns;
  bool operator==(const Embedding&) const = default;
};

/// One layer of a Sequential model. A model ends with a Dense layer: its units are the outputs.
using Layer = std::variant<Dense, Dropout, LayerNorm, Embedding, BatchNorm, RMSNorm, Scale>;
/// How many kinds Layer has; the part list is checked against it when it is compiled.
inline constexpr std::size_t kLayerKinds = std::variant_size_v<Layer>;

/// InputError naming the setting unless the layer's settings are valid (a Dense layer's units 1 to
/// 2^31 - 1, a Dropout rate 0 to below 1, a LayerNorm's or BatchNorm's epsilon positive and finite,
/// a BatchNorm's momentum 0 to 1, an
/// Embedding's input_dim kFromTable or 1 to 2^24 (indices are exact in float32), output_dim 1 to
/// 2^31 - 1 and columns 0 or more).
void check_layer(const Layer& layer);
/// The kind's name ("dense", "dropout", "layernorm", "embedding", "batchnorm", "rmsnorm", "scale"), as checkpoints and
/// the CLI spell it.
std::string layer_name(const Layer& layer);
/// Every kind's name, in Layer's order.
std::vector<std::string> layer_names();
/// "Dense(64, relu)", "Dropout(0.2)": the layer as messages show it.
std::string describe(const Layer& layer);
/// The layer as a checkpoint's architecture stores it: the text of a JSON object,
/// {"type": "dense", "units": 64, "activation": "relu"}, {"type": "dropout", "rate": 0.2} or
/// {"type": "layernorm", "epsilon": 1e-05}, {"type": "embedding", "input_dim": 100, "output_dim": 8,
/// "columns": 2} or {"type": "batchnorm", "momentum": 0.1, "epsilon": 1e-05}.
std::string settings_json(const Layer& layer);
/// The layer whose settings_json is text (every setting of its kind given); InputError naming what
/// is wrong (an unknown type, a missing or bad setting).
Layer layer_from_settings_json(const std::string& text);

/// A layer from its spelling on the command line (`ember train --layers`, comma-separated there):
/// "WIDTH[:ACTIVATION]" for a Dense layer (ReLU unless named), otherwise the kind's name followed by
/// its settings in order, each optional where it has a default: "dropout:0.1", "layernorm",
/// "batchnorm:0.01:1e-3", "embedding:100:8:2", "rmsnorm:1e-5". InputError saying the form otherwise.
Layer parse_layer(const std::string& text);
/// What the front ends show of a kind of layer: its name, its spelling for parse_layer
/// ("dropout[:RATE]") and what such a layer does, in a phrase; its class name in Python (Keras'
/// name: "LayerNormalization"); and, for a kind made from numbers alone, its settings' names in the
/// order parse_layer and make_layer take them (empty for Dense and Embedding).
struct LayerKind {
  std::string name, form, meaning, keras_name;
  std::vector<std::string> settings;
};
/// Every kind's, in Layer's order.
std::vector<LayerKind> layer_kinds();
/// The layer of kind name (LayerKind::settings non-empty) with the settings given by name and the
/// others at their defaults, checked; InputError for an unknown kind or setting, or a bad value.
Layer make_layer(const std::string& name, const std::vector<std::pair<std::string, double>>& settings);
/// The value of one of the layer's settings (LayerKind::settings); InputError for another name.
double layer_setting(const Layer& layer, const std::string& name);

}  // namespace ember
