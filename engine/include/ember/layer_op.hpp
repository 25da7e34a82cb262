#pragma once
// An op that a layer or loss part brings with it, rather than a function of the Backend interface: its
// float64 loops (the reference), optionally float32 loops for the fast CPU path, and a CUDA launch
// that the CUDA plugin finds by the op's name (kernels/layer_ops.hpp). Backend::layer_op runs it.
// A layer whose math no other op has is then its part's file and its kernel's file
// (docs/architecture.md, "Adding a layer").
#include <cstdint>
#include <functional>
#include <span>

#include "ember/tensor.hpp"

namespace ember {

/// A batch whose rows are spread over the ranks of a data-parallel run, for an op whose statistics
/// span the batch (a BatchNorm's, as torch.nn.SyncBatchNorm): the op writes its rank's partial sums
/// to scratch, calls sum on them, and goes on with the totals. sum adds count floats of backend
/// memory over the ranks, in place and in order with the backend's ops (a collective on the GPU,
/// else on the host); scaled: each rank's values times its share of the batch's rows (its rows over
/// all ranks') first. Every rank makes the same calls with the same counts, a rank without rows too.
using SumOverRanks = std::function<void(float* values, std::int64_t count, bool scaled)>;
struct BatchAcrossRanks {
  float* scratch = nullptr;  // backend memory, as many floats as the op says
  SumOverRanks sum;
};

/// A random op's key (Dropout's mask): the layer's seed, and two int32 of backend memory read when
/// the op runs (the step's gather cursor and epoch), so that each step draws anew and a recorded
/// step replays with the counters' new values.
struct OpDraws {
  std::uint64_t seed = 0;
  const std::int32_t* counters = nullptr;
};

/// An op's operands, in the order its part defines: inputs, outputs (a View with null data for an
/// output not asked for) and settings, in backend memory as every op's; draws for an op that draws
/// at random; ranks for an op training on a batch across ranks (else null). scratch is the
/// backend's to fill: the CUDA backend's reduction scratch (kernels/matmul_plan.hpp's
/// kReductionScratchFloats floats, one op's at a time), where a kernel keeps partial sums; null on
/// the CPU.
struct OpArgs {
  std::span<const ConstView> in;
  std::span<const View> out;
  std::span<const float> settings;
  OpDraws draws = {};
  const BatchAcrossRanks* ranks = nullptr;
  float* scratch = nullptr;
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
