#pragma once
// An op that a layer part brings with it, rather than a function of the Backend interface: its
// float64 loops (the reference), optionally float32 loops for the fast CPU path, and a CUDA launch
// that the CUDA plugin finds by the op's name (kernels/layer_ops.hpp). Backend::layer_op runs it.
// A layer whose math no other op has is then its part's file and its kernel's file
// (docs/architecture.md, "Adding a layer").
#include <span>

#include "ember/tensor.hpp"

namespace ember {

/// An op's operands, in the order its part defines: inputs, outputs (a View with null data for an
/// output not asked for) and settings. In backend memory, as every op's.
struct OpArgs {
  std::span<const ConstView> in;
  std::span<const View> out;
  std::span<const float> settings;
};

struct LayerOp {
  /// Unique; the CUDA kernels register their launch under it.
  const char* name;
  /// Throws Error when the operands do not fit the op (every backend calls it first).
  void (*check)(const OpArgs&);
  /// Plain loops with float64 accumulation: the oracle the other backends are tested against.
  void (*reference)(const OpArgs&);
  /// The fast CPU path's float32 loops; null: it runs the reference's.
  void (*fast)(const OpArgs&) = nullptr;
};

}  // namespace ember
