#pragma once
// What every layer part (layers/NAME.hpp) shares: the declaration of Part and a few helpers.
// layer_part.cpp includes every part through the generated layer_parts.hpp, so that a layer's part
// is one file of this folder.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "activation_math.hpp"
#include "cpu/thread_pool.hpp"
#include "ember/error.hpp"
#include "ember/layer_op.hpp"
#include "ember/random.hpp"
#include "layer_part.hpp"
#include "onnx_graph.hpp"
#include "parameter_layout.hpp"
#include "shape_checks.hpp"

namespace ember::layer_part {

/// The layer's second buffer (rows, out) where the plan keeps one (Buffers::extra).
inline std::optional<View> extra(const Slots& slots, const Pass& pass) {
  if (slots.extra == nullptr) return std::nullopt;
  return View{slots.extra, pass.rows, slots.out};
}

/// One part per kind of layer: its name and the members the functions of layer_part.hpp call.
template <typename Settings>
struct Part;

/// text as a whole number 1 or more, or 0 when it is not one.
inline std::int64_t whole_number(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value > 0 ? value : 0;
}

/// The layer's tensor name as an ONNX constant "layers.{i}.NAME" of its checkpoint's shape.
template <typename Settings>
std::string onnx_tensor(const Settings& settings, OnnxGraph& g, const OnnxLayer& at, const std::string& name) {
  for (const ParameterShape& tensor : Part<Settings>::parameters(settings, at.in))
    if (tensor.name == name) {
      const ConstView values = at.tensor(name);
      return g.floats(fmt::format("layers.{}.{}", at.index, name), tensor.shape, values.data,
                      static_cast<std::size_t>(values.size()));
    }
  throw std::logic_error("onnx_tensor: no tensor " + name);
}

/// Error unless a LayerOp's call has in inputs, out outputs and settings settings (their names, for
/// the message: "epsilon", "no setting").
inline void check_operand_counts(const OpArgs& a, const char* op, std::size_t in, std::size_t out, std::size_t settings,
                                 const char* setting_names) {
  if (a.in.size() != in || a.out.size() != out || a.settings.size() != settings)
    throw Error(fmt::format("{}: takes {} inputs, {} outputs and {}", op, in, out, setting_names));
}

/// An op's optional output where it was given, else `fallback` (for shape checks that skip it).
inline ConstView given_or(View view, ConstView fallback) {
  return view.data != nullptr ? ConstView(view) : fallback;
}

/// body(r) for each row of x, the rows split among threads as their flops per element make worth it.
template <typename Body>
void for_rows(ConstView x, double flops_per_element, Body&& body) {
  const double seconds = threads::single_thread_seconds(flops_per_element * static_cast<double>(x.size()),
                                                        8.0 * static_cast<double>(x.size()));
  threads::for_ranges(x.rows, seconds, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) body(r);
  });
}

/// sums(0, c) = the sum over rows r of a(r, c) * b(r, c), accumulated in Real in row order, the
/// columns split among threads: the weight gradient of a layer that scales each feature by its
/// weight (RMSNorm's, Scale's; kernels/column_dot.cuh on the GPU).
template <typename Real>
void column_dot(ConstView a, ConstView b, View sums) {
  const double seconds =
      threads::single_thread_seconds(2.0 * static_cast<double>(a.size()), 8.0 * static_cast<double>(a.size()));
  threads::for_ranges(a.cols, seconds, 64, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t c = begin; c < end; ++c) {
      Real sum = 0;
      for (std::int64_t r = 0; r < a.rows; ++r) sum += static_cast<Real>(a(r, c)) * b(r, c);
      sums(0, c) = static_cast<float>(sum);
    }
  });
}

}  // namespace ember::layer_part
