// Sequential::export_onnx: the whole model as one ONNX graph, from the raw feature columns (the
// learned preprocessing: missing-value fills and indicators, one-hot categories, the scaler) through
// the layers to the outputs in the units `ember predict` writes. The file is built with ONNX's own
// protobuf classes and verified by its checker and strict shape inference before it is written.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/error.hpp"
#include "ember/model.hpp"

#if defined(EMBER_WITH_ONNX)
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "activation_math.hpp"
#include "cells.hpp"
#include "layer_part.hpp"
#endif

namespace ember {

#if !defined(EMBER_WITH_ONNX)

bool onnx_export_available() {
  return false;
}

void Sequential::export_onnx(const std::string&) const {
  throw InputError(
      "ONNX export is not in this build of Ember: it was built without ONNX (install libonnx-dev and "
      "libprotobuf-dev, e.g. with scripts/install-deps.sh, and build again)");
}

#else

bool onnx_export_available() {
  return true;
}

namespace {

using Json = nlohmann::json;

// Opset 17 is the newest ONNX 1.12 (Debian 12's libonnx) defines; ONNX Runtime runs it from 1.13 on.
// ai.onnx.ml 2 holds LabelEncoder-2 (string and integer keys).
constexpr std::int64_t kOpset = 17;
constexpr std::int64_t kMlOpset = 2;
constexpr std::int64_t kIrVersion = 8;
constexpr const char* kMl = "ai.onnx.ml";
// LabelEncoder codes: a category's index, else one of these.
constexpr std::int64_t kUnseenCode = -1;
constexpr std::int64_t kMissingCode = -2;

/// Nodes and initializers of one graph, with fresh names for what lies between them.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  /// A node of op on inputs; returns its one output's name (output, or a fresh one).
  std::string op(const std::string& op_type, const std::vector<std::string>& inputs, std::string output = {},
                 const char* domain = "") {
    onnx::NodeProto& node = *graph_.add_node();
    node.set_op_type(op_type);
    if (*domain != '\0') node.set_domain(domain);
    for (const std::string& input : inputs) node.add_input(input);
    if (output.empty()) output = fresh(op_type);
    node.add_output(output);
    node.set_name(output);
    last_ = &node;
    return output;
  }
  /// Attributes of the node op() added last.
  GraphBuilder& attribute(const std::string& name, std::int64_t value) {
    onnx::AttributeProto& a = new_attribute(name, onnx::AttributeProto::INT);
    a.set_i(value);
    return *this;
  }
  GraphBuilder& attribute(const std::string& name, float value) {
    onnx::AttributeProto& a = new_attribute(name, onnx::AttributeProto::FLOAT);
    a.set_f(value);
    return *this;
  }
  GraphBuilder& attribute(const std::string& name, const std::string& value) {
    onnx::AttributeProto& a = new_attribute(name, onnx::AttributeProto::STRING);
    a.set_s(value);
    return *this;
  }
  GraphBuilder& attribute(const std::string& name, const std::vector<std::int64_t>& values) {
    onnx::AttributeProto& a = new_attribute(name, onnx::AttributeProto::INTS);
    for (const std::int64_t v : values) a.add_ints(v);
    return *this;
  }
  GraphBuilder& attribute(const std::string& name, const std::vector<std::string>& values) {
    onnx::AttributeProto& a = new_attribute(name, onnx::AttributeProto::STRINGS);
    for (const std::string& v : values) a.add_strings(v);
    return *this;
  }

  /// x (a bool tensor) as 0 or 1 floats.
  std::string as_float(const std::string& x) {
    const std::string y = op("Cast", {x});
    attribute("to", std::int64_t{onnx::TensorProto::FLOAT});
    return y;
  }
  /// The pieces, each (rows, k), side by side.
  std::string columns(const std::vector<std::string>& pieces) {
    if (pieces.size() == 1) return pieces[0];
    const std::string joined = op("Concat", pieces);
    attribute("axis", std::int64_t{1});
    return joined;
  }

  /// Initializers (constants), named after hint.
  std::string floats(const std::string& hint, const std::vector<std::int64_t>& dims, const float* values,
                     std::size_t count) {
    static_assert(std::endian::native == std::endian::little, "ONNX's raw_data is little-endian");
    onnx::TensorProto& t = tensor(hint, dims, onnx::TensorProto::FLOAT);
    t.set_raw_data(values, count * sizeof(float));
    return t.name();
  }
  std::string floats(const std::string& hint, const std::vector<std::int64_t>& dims, const std::vector<float>& values) {
    return floats(hint, dims, values.data(), values.size());
  }
  std::string int64s(const std::string& hint, const std::vector<std::int64_t>& dims,
                     const std::vector<std::int64_t>& values) {
    onnx::TensorProto& t = tensor(hint, dims, onnx::TensorProto::INT64);
    for (const std::int64_t v : values) t.add_int64_data(v);
    return t.name();
  }

  /// A graph input or output: a float or string tensor of (rows, columns), rows dynamic; columns 0
  /// means a vector of rows.
  void value(bool input, const std::string& name, onnx::TensorProto::DataType type, std::int64_t columns,
             const std::string& doc) {
    onnx::ValueInfoProto& v = input ? *graph_.add_input() : *graph_.add_output();
    v.set_name(name);
    v.set_doc_string(doc);
    onnx::TypeProto::Tensor& tensor = *v.mutable_type()->mutable_tensor_type();
    tensor.set_elem_type(type);
    tensor.mutable_shape()->add_dim()->set_dim_param("rows");
    if (columns > 0) tensor.mutable_shape()->add_dim()->set_dim_value(columns);
  }

 private:
  std::string fresh(const std::string& hint) { return fmt::format("ember/{}_{}", hint, next_++); }
  onnx::AttributeProto& new_attribute(const std::string& name, onnx::AttributeProto::AttributeType type) {
    onnx::AttributeProto& a = *last_->add_attribute();
    a.set_name(name);
    a.set_type(type);
    return a;
  }
  onnx::TensorProto& tensor(const std::string& hint, const std::vector<std::int64_t>& dims,
                            onnx::TensorProto::DataType type) {
    onnx::TensorProto& t = *graph_.add_initializer();
    t.set_name(fresh(hint));
    t.set_data_type(type);
    for (const std::int64_t d : dims) t.add_dims(d);
    return t;
  }

  onnx::GraphProto& graph_;
  onnx::NodeProto* last_ = nullptr;
  int next_ = 0;
};

std::vector<float> as_floats(const std::vector<double>& values) {
  return {values.begin(), values.end()};
}

/// One feature column's model inputs, (rows, inputs()), from its graph input; offset is an embedded
/// column's first row of the table (Preprocessing::embedding_offsets).
std::string feature_inputs(GraphBuilder& g, const FeatureColumn& feature, Missing missing, std::int64_t offset) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::string> pieces;
  if (!feature.one_hot) {
    // A number: a missing cell (NaN) takes the fill, and sets the indicator where there is one;
    // without a fill (the model refuses or drops such rows) NaN goes on to the outputs.
    std::string missing_cell;
    std::string value = feature.name;
    if (!feature.fill.empty()) {
      missing_cell = g.op("IsNaN", {feature.name});
      value = g.op("Where", {missing_cell, g.floats("fill", {}, {static_cast<float>(feature.fill[0])}), feature.name});
    }
    pieces.push_back(value);
    if (!feature.bin_edges.empty()) {
      // Each bin's share: clamp((value - low) / (high - low), 0, 1), the bins side by side.
      const auto bins = static_cast<std::int64_t>(feature.bins());
      std::vector<float> low, width;
      for (std::size_t k = 0; k + 1 < feature.bin_edges.size(); ++k) {
        low.push_back(static_cast<float>(feature.bin_edges[k]));
        width.push_back(static_cast<float>(feature.bin_edges[k + 1] - feature.bin_edges[k]));
      }
      const std::string shares = g.op(
          "Div", {g.op("Sub", {value, g.floats("bin_low", {1, bins}, low)}), g.floats("bin_width", {1, bins}, width)});
      pieces.push_back(g.op("Clip", {shares, g.floats("zero", {}, {0.0f}), g.floats("one", {}, {1.0f})}));
    }
    if (feature.levels) {
      // An indicator per whole-number value: (value == level) as 0 or 1, the levels side by side.
      const auto count = static_cast<std::int64_t>(feature.level_count());
      pieces.push_back(
          g.as_float(g.op("Equal", {value, g.floats("levels", {1, count}, as_floats(feature.bin_edges))})));
    }
    if (feature.missing_indicator) pieces.push_back(g.as_float(missing_cell));
  } else {
    // A category: its index among the learned ones, -1 for one training never saw (no indicator
    // set), -2 for a missing cell.
    const auto width = static_cast<std::int64_t>(feature.categories.size());
    std::vector<std::int64_t> indices(static_cast<std::size_t>(width));
    std::iota(indices.begin(), indices.end(), std::int64_t{0});
    std::vector<std::string> keys = feature.categories;
    std::vector<std::int64_t> codes = indices;
    for (const std::string_view token : cells::kMissingTokens) {
      keys.emplace_back(token);
      codes.push_back(kMissingCode);
    }
    const std::string code = g.op("LabelEncoder", {feature.name}, {}, kMl);
    g.attribute("keys_strings", keys).attribute("values_int64s", codes).attribute("default_int64", kUnseenCode);
    if (feature.embedded) {
      // The category's row of the table, or the column's last for a missing or unseen one (also
      // where the model refuses or drops a missing cell: the Gather needs a row).
      const std::string row =
          g.op("Where", {g.op("Less", {code, g.int64s("zero", {}, {0})}), g.int64s("other", {}, {width}), code});
      const std::string index = g.op("Cast", {g.op("Add", {row, g.int64s("offset", {}, {offset})})});
      g.attribute("to", std::int64_t{onnx::TensorProto::FLOAT});
      return index;
    }
    const std::string indicators = g.as_float(g.op("Equal", {code, g.int64s("categories", {1, width}, indices)}));
    const std::string missing_cell = g.op("Equal", {code, g.int64s("missing_code", {}, {kMissingCode})});
    if (missing == Missing::mean) {
      // Each category's training frequency.
      const std::string frequencies = g.floats("fill", {1, width}, as_floats(feature.fill));
      pieces.push_back(g.op("Add", {indicators, g.op("Mul", {g.as_float(missing_cell), frequencies})}));
    } else if (missing == Missing::fill) {
      pieces.push_back(indicators);
      if (feature.missing_indicator) pieces.push_back(g.as_float(missing_cell));
    } else {
      // error, drop: the row's outputs are NaN.
      pieces.push_back(g.op("Add", {indicators, g.op("Where", {missing_cell, g.floats("nan", {}, {nan}),
                                                               g.floats("zero", {}, {0.0f})})}));
    }
  }
  return g.columns(pieces);
}

std::string activation(GraphBuilder& g, Activation kind, const std::string& x) {
  namespace a = activations;
  const auto scalar = [&](const char* hint, double v) { return g.floats(hint, {}, {static_cast<float>(v)}); };
  switch (kind) {
    case Activation::linear:
      return x;
    case Activation::relu:
      return g.op("Relu", {x});
    case Activation::leaky_relu: {
      const std::string y = g.op("LeakyRelu", {x});
      g.attribute("alpha", static_cast<float>(a::LeakyRelu::kSlope));
      return y;
    }
    case Activation::gelu: {
      // 0.5 x (1 + erf(x / sqrt 2)); Gelu is an operator from opset 20 on.
      const std::string erf = g.op("Erf", {g.op("Mul", {x, scalar("inverse_sqrt2", a::Gelu::kInverseSqrt2)})});
      return g.op("Mul", {g.op("Mul", {x, scalar("half", 0.5)}), g.op("Add", {erf, scalar("one", 1.0)})});
    }
    case Activation::gelu_tanh: {
      const std::string cube = g.op("Mul", {g.op("Mul", {x, x}), x});
      const std::string inner = g.op("Add", {x, g.op("Mul", {cube, scalar("cubic", a::GeluTanh::kCubic)})});
      const std::string t = g.op("Tanh", {g.op("Mul", {inner, scalar("sqrt_2_over_pi", a::GeluTanh::kSqrt2OverPi)})});
      return g.op("Mul", {g.op("Mul", {x, scalar("half", 0.5)}), g.op("Add", {t, scalar("one", 1.0)})});
    }
    case Activation::silu:
      return g.op("Mul", {x, g.op("Sigmoid", {x})});
    case Activation::tanh:
      return g.op("Tanh", {x});
    case Activation::sigmoid:
      return g.op("Sigmoid", {x});
  }
  throw Error("export_onnx: an activation without an ONNX form");
}

/// The graph as the layer parts write their nodes (layer_part::onnx).
class PartGraph final : public OnnxGraph {
 public:
  explicit PartGraph(GraphBuilder& g) : g_(g) {}
  std::string node(const std::string& op_type, const std::vector<std::string>& inputs) override {
    return g_.op(op_type, inputs);
  }
  OnnxGraph& attribute(const std::string& name, std::int64_t value) override {
    g_.attribute(name, value);
    return *this;
  }
  OnnxGraph& attribute(const std::string& name, float value) override {
    g_.attribute(name, value);
    return *this;
  }
  std::string floats(const std::string& hint, const std::vector<std::int64_t>& dims, const float* values,
                     std::size_t count) override {
    return g_.floats(hint, dims, values, count);
  }
  std::string int64s(const std::string& hint, const std::vector<std::int64_t>& dims,
                     const std::vector<std::int64_t>& values) override {
    return g_.int64s(hint, dims, values);
  }
  std::string to_int64(const std::string& x) override {
    const std::string y = g_.op("Cast", {x});
    g_.attribute("to", std::int64_t{onnx::TensorProto::INT64});
    return y;
  }
  std::string columns(const std::vector<std::string>& pieces) override { return g_.columns(pieces); }
  std::string activation(Activation kind, const std::string& x) override { return ember::activation(g_, kind, x); }

 private:
  GraphBuilder& g_;
};

Json metadata_columns(const Preprocessing& p) {
  Json columns = Json::array();
  for (const FeatureColumn& f : p.features) {
    Json column = {{"name", f.name}, {"type", f.one_hot ? "category" : "number"}};
    if (f.one_hot) column["categories"] = f.categories;
    if (f.embedded) column["embedded"] = true;
    columns.push_back(std::move(column));
  }
  return columns;
}

}  // namespace

void Sequential::export_onnx(const std::string& path) const {
  if (!built()) throw InputError("the model has no weights yet; fit or load it before export_onnx");
  check_writable(path);
  const bool classification = is_classification(options_.loss);

  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("ember");
  model.set_producer_version(EMBER_VERSION);
  model.set_doc_string(fmt::format("An Ember model: {} inputs, {} layers, {}", input_width_, layers_.size(),
                                   classification ? "classification" : "regression"));
  for (const auto& [domain, version] : {std::pair{"", kOpset}, std::pair{kMl, kMlOpset}}) {
    onnx::OperatorSetIdProto& opset = *model.add_opset_import();
    opset.set_domain(domain);
    opset.set_version(version);
  }
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("ember");
  GraphBuilder g(graph);

  // Inputs: a model trained on a table takes each feature column as it was read (numbers as float,
  // NaN for a missing cell; categories as text), one (rows, 1) input each; one trained on matrices
  // takes them as one (rows, inputs) float input.
  std::string x;
  if (preprocessing_.empty()) {
    g.value(true, "input", onnx::TensorProto::FLOAT, input_width_, "the model's inputs, one column each");
    x = "input";
  } else {
    std::vector<std::string> pieces;
    const std::vector<std::int64_t> offsets = preprocessing_.embedding_offsets();
    for (std::size_t i = 0; i < preprocessing_.features.size(); ++i) {
      const FeatureColumn& f = preprocessing_.features[i];
      g.value(true, f.name, f.one_hot ? onnx::TensorProto::STRING : onnx::TensorProto::FLOAT, 1,
              f.one_hot ? "the column's cells as text (trimmed; empty or NA for a missing cell)"
                        : "the column's numbers (NaN for a missing cell)");
      pieces.push_back(feature_inputs(g, f, preprocessing_.missing, offsets[i]));
    }
    x = g.columns(pieces);
  }
  if (scaler_.enabled) {
    const std::vector<std::int64_t> dims = {1, input_width_};
    x = g.op("Div", {g.op("Sub", {x, g.floats("input_mean", dims, as_floats(scaler_.x.mean))}),
                     g.floats("input_std", dims, as_floats(scaler_.x.std))});
  }
  // Each member's layers on the same inputs; an ensemble's outputs are their mean (below), and a
  // blend's the mean of the layers' and of its linear model's, weighed by its share.
  PartGraph parts(g);
  const auto network_outputs = [&](const Sequential& model) {
    std::vector<std::string> each;
    for (std::int64_t m = 0; m < model.member_count(); ++m) {
      std::string y = x;
      for (std::size_t l = 0, in = static_cast<std::size_t>(input_width_); l < model.layers_.size(); ++l) {
        const OnnxLayer at{l, static_cast<std::int64_t>(in), y,
                           [&](const std::string& name) { return model.member_tensor(m, l, name); }};
        y = layer_part::onnx(model.layers_[l], parts, at);
        in = static_cast<std::size_t>(layer_part::output_width(model.layers_[l], at.in));
      }
      each.push_back(y);
    }
    return each;
  };
  const std::vector<std::string> outputs = network_outputs(*this);
  const std::vector<std::string> linear_outputs =
      linear_.empty() ? std::vector<std::string>{} : network_outputs(linear_.front());
  const auto mean = [&](const std::vector<std::string>& values, const std::string& name) {
    if (values.size() == 1) return name.empty() ? values[0] : g.op("Identity", values, name);
    return g.op("Div", {g.op("Sum", values), g.floats("members", {}, {static_cast<float>(values.size())})}, name);
  };
  // The layers' mean, or a blend's: (1 - share) times it plus share times the linear model's.
  const auto blend = [&](const std::vector<std::string>& layers, const std::vector<std::string>& linear,
                         const std::string& name) {
    if (linear.empty()) return mean(layers, name);
    const auto share = static_cast<float>(linear_share_);
    return g.op("Add",
                {g.op("Mul", {mean(layers, {}), g.floats("layers_share", {}, {1.0f - share})}),
                 g.op("Mul", {mean(linear, {}), g.floats("linear_share", {}, {share})})},
                name);
  };

  // The outputs' names, unless a feature column has taken one.
  std::set<std::string> taken = {"input"};
  for (const FeatureColumn& f : preprocessing_.features) taken.insert(f.name);
  const auto output_name = [&](std::string name) {
    while (taken.count(name) > 0) name = "ember_" + name;
    return name;
  };
  const std::string predictions = output_name("predictions"), probabilities = output_name("probabilities"),
                    label = output_name("label");
  if (!classification) {
    x = blend(outputs, linear_outputs, {});
    const std::int64_t outputs = output_width();
    if (scaler_.enabled) {
      const std::vector<std::int64_t> dims = {1, outputs};
      x = g.op("Add",
               {g.op("Mul", {x, g.floats("target_std", dims, as_floats(scaler_.y.std))}),
                g.floats("target_mean", dims, as_floats(scaler_.y.mean))},
               predictions);
    } else {
      x = g.op("Identity", {x}, predictions);
    }
    g.value(false, predictions, onnx::TensorProto::FLOAT, outputs, "the targets, in their original units");
  } else {
    const std::int64_t classes = class_count();
    const auto probabilities_of = [&](const std::vector<std::string>& logits_of_each) {
      std::vector<std::string> each;  // every member's probabilities
      for (const std::string& logits : logits_of_each) {
        if (output_width() == 1) {
          const std::string p = g.op("Sigmoid", {logits});
          each.push_back(g.op("Concat", {g.op("Sub", {g.floats("one", {}, {1.0f}), p}), p}));
        } else {
          each.push_back(g.op("Softmax", {logits}));
        }
        g.attribute("axis", std::int64_t{1});
      }
      return each;
    };
    blend(probabilities_of(outputs), probabilities_of(linear_outputs), probabilities);
    // The first most likely class (ArgMax's ties), and no label for a row whose probabilities are
    // NaN (a missing cell the model cannot fill).
    const std::string best = g.op("ArgMax", {probabilities});
    g.attribute("axis", std::int64_t{1}).attribute("keepdims", std::int64_t{0});
    const std::string total = g.op("ReduceSum", {probabilities, g.int64s("axis", {1}, {1})});
    g.attribute("keepdims", std::int64_t{0});
    const std::string index = g.op("Where", {g.op("IsNaN", {total}), g.int64s("no_class", {}, {-1}), best});
    std::vector<std::int64_t> keys;
    for (std::int64_t c = 0; c < classes; ++c) keys.push_back(c);
    g.op("LabelEncoder", {index}, label, kMl);
    g.attribute("keys_int64s", keys)
        .attribute("values_strings", this->classes())
        .attribute("default_string", std::string{});
    g.value(false, label, onnx::TensorProto::STRING, 0, "the most likely class's label");
    g.value(false, probabilities, onnx::TensorProto::FLOAT, classes, "each class's probability");
  }

  const auto metadata = [&](const std::string& key, const std::string& value) {
    onnx::StringStringEntryProto& entry = *model.add_metadata_props();
    entry.set_key(key);
    entry.set_value(value);
  };
  metadata("ember.version", EMBER_VERSION);
  metadata("ember.task", classification ? "classification" : "regression");
  metadata("ember.columns", metadata_columns(preprocessing_).dump());
  metadata("ember.targets", Json(target_names()).dump());
  if (classification) metadata("ember.classes", Json(this->classes()).dump());
  if (!preprocessing_.empty()) metadata("ember.missing", to_string(preprocessing_.missing));
  if (epoch_record_) {
    Json figures = {{"epoch", epoch_record_->epoch}};
    for (const auto& [name, value] : epoch_figures(*epoch_record_)) figures[name] = value;
    metadata("ember.figures", figures.dump());
  }

  // What ONNX Runtime would refuse is a bug here, reported as such before anything is written.
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions{true, 1, false});
  } catch (const std::exception& e) {
    throw Error(fmt::format("export_onnx: the graph Ember built does not pass ONNX's checks: {}", e.what()));
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("export_onnx: the ONNX model could not be serialized");
  write_file_atomically(path, bytes);
}

#endif

}  // namespace ember
