#pragma once
// What a layer part writes its ONNX nodes with (layer_part::onnx): plain C++, no protobuf, so that
// the parts compile in builds without ONNX; onnx_export.cpp makes the nodes with ONNX's classes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ember/activation.hpp"
#include "ember/tensor.hpp"

namespace ember {

class OnnxGraph {
 public:
  virtual ~OnnxGraph() = default;
  /// A node of op_type (an operator of the default domain, opset 17) on inputs, named by their
  /// value names; returns its one output's name.
  virtual std::string node(const std::string& op_type, const std::vector<std::string>& inputs) = 0;
  /// An attribute of the node made last.
  virtual OnnxGraph& attribute(const std::string& name, std::int64_t value) = 0;
  virtual OnnxGraph& attribute(const std::string& name, float value) = 0;
  /// Constants (initializers) of the shape dims, named after hint; return their value names.
  virtual std::string floats(const std::string& hint, const std::vector<std::int64_t>& dims, const float* values,
                             std::size_t count) = 0;
  virtual std::string int64s(const std::string& hint, const std::vector<std::int64_t>& dims,
                             const std::vector<std::int64_t>& values) = 0;
  /// x (floats holding whole numbers) as int64.
  virtual std::string to_int64(const std::string& x) = 0;
  /// The pieces, each (rows, k), side by side.
  virtual std::string columns(const std::vector<std::string>& pieces) = 0;
  /// The activation's nodes on x.
  virtual std::string activation(Activation kind, const std::string& x) = 0;
};

/// One layer of the model as its export sees it: its place, its input's width and value name, and
/// its tensors by name (layer_part::parameters' names).
struct OnnxLayer {
  std::size_t index = 0;
  std::int64_t in = 0;
  std::string x;
  std::function<ConstView(const std::string& name)> tensor;
};

}  // namespace ember
