#pragma once
// Which matmul kernel runs a product, and how it splits k: plain host C++ (no CUDA), so that the
// choice and its invariants are tested on any machine (tests/matmul_plan_test.cpp).
//
// Outputs of at least one 128 x 128 tile per SM run on 128 x 128 tiles: the FP32 kernel, or with
// TF32 the wgmma kernel where it is ready (else mma.sync). TF32 outputs of a quarter of that run on
// mma.sync's 128 x 128 kernel. Everything else runs on 64 x 64 tiles, and a plain (linear) product
// with a scratch is split over k when even those tiles cannot fill two waves of SMs and k is long
// (the weight gradient of a narrow layer): each split's partial product (and row sums) goes to the
// scratch, a second kernel adds them in split order. Unsplit outputs of less than a wave of 64 x 64
// tiles take 32 x 32 tiles instead, four times the blocks.
#include <algorithm>
#include <cstdint>

namespace ember::kernels {

/// The reductions' scratch: kReductionScratchFloats floats of device memory (4 MiB), used by one
/// op at a time (stream order): the losses (at most kMaxReductionBlocks of it), the bias gradient
/// and split-k matmuls.
inline constexpr std::int64_t kReductionScratchFloats = std::int64_t{1} << 20;
inline constexpr int kMaxReductionBlocks = 1024;
static_assert(kReductionScratchFloats >= kMaxReductionBlocks);

inline constexpr int kBigTile = 128;    // the 128 x 128 kernels' tile (FP32, mma.sync, wgmma)
inline constexpr int kSmallTile = 64;   // the 64 x 64 kernel's tile (split-k runs on it)
inline constexpr int kSmallestTile = 32;  // sub-wave outputs: the 32 x 32 kernel's tile
inline constexpr int kSmallSliceK = 16; // its k slice: a split covers a whole number of them
inline constexpr int kMinSplitK = 256;  // k per split at least: below that the partials' traffic dominates
inline constexpr int kMaxSplits = 64;

enum class MatmulKernel { fp32_32x32, fp32_64x64, fp32_128x128, tf32_mma_sync, tf32_wgmma };

struct MatmulProblem {
  std::int64_t m = 0, n = 0, k = 0;
  int multiprocessors = 1;
  bool tf32 = false;         // TF32 precision asked for
  bool wgmma = false;        // the wgmma kernel may be used (ready, and not excluded)
  bool linear = true;        // a plain product (the fused epilogues need the whole sum: no split)
  bool scratch = false;      // a scratch is given
  bool row_sums = false;     // row sums of op(a) are wanted
};

struct MatmulPlan {
  MatmulKernel kernel = MatmulKernel::fp32_64x64;
  std::int64_t splits = 1;   // blocks along k (the 64 x 64 kernel only)
  std::int64_t k_split = 1;  // k per split: a multiple of kSmallSliceK when split, else max(k, 1)
  /// Whether the 64 x 64 or 32 x 32 kernel sums the rows itself; otherwise a column reduction of a follows.
  bool row_sums_in_kernel = false;
};

inline std::int64_t tile_count(std::int64_t m, std::int64_t n, std::int64_t tile) {
  return ((m + tile - 1) / tile) * ((n + tile - 1) / tile);
}

inline MatmulPlan plan_matmul(const MatmulProblem& p) {
  MatmulPlan plan;
  const std::int64_t big_tiles = tile_count(p.m, p.n, kBigTile), sms = std::max(p.multiprocessors, 1);
  // TF32 runs on 128 x 128 tiles only; an output too small to busy a quarter of the SMs with them
  // (a narrow layer's weight gradient: a few tiles over a long k) goes to the FP32 kernels, whose
  // split-k spreads it over the GPU. FP32 is the more accurate of the two, so TF32's bounds hold.
  if (p.tf32 && 4 * big_tiles >= sms) {
    // wgmma for a wave of tiles or more; below that, mma.sync, whose smaller footprint fits more
    // blocks per SM.
    plan.kernel = p.wgmma && big_tiles >= sms ? MatmulKernel::tf32_wgmma : MatmulKernel::tf32_mma_sync;
    plan.k_split = std::max<std::int64_t>(p.k, 1);
    return plan;
  }
  if (big_tiles >= sms) {
    plan.kernel = MatmulKernel::fp32_128x128;
    plan.k_split = std::max<std::int64_t>(p.k, 1);
    return plan;
  }
  plan.kernel = MatmulKernel::fp32_64x64;
  plan.row_sums_in_kernel = p.row_sums;
  const std::int64_t small_tiles = tile_count(p.m, p.n, kSmallTile);
  // Split only as far as two waves of blocks, k of kMinSplitK per split, and partials (and row
  // sums) within the scratch.
  std::int64_t splits = 1;
  if (p.linear && p.scratch && small_tiles > 0) {
    const std::int64_t split_floats = p.m * p.n + (p.row_sums ? p.m : 0);
    splits = std::min({2 * sms / small_tiles, p.k / kMinSplitK, kReductionScratchFloats / split_floats,
                       std::int64_t{kMaxSplits}});
    splits = std::max<std::int64_t>(splits, 1);
  }
  if (splits == 1) {
    plan.k_split = std::max<std::int64_t>(p.k, 1);
    if (small_tiles < sms) plan.kernel = MatmulKernel::fp32_32x32;  // less than a wave: more, smaller blocks
    return plan;
  }
  // k per split, a whole number of slices; then the splits that k actually needs (none empty).
  const std::int64_t per_split = (p.k + splits - 1) / splits;
  plan.k_split = (per_split + kSmallSliceK - 1) / kSmallSliceK * kSmallSliceK;
  plan.splits = (p.k + plan.k_split - 1) / plan.k_split;
  return plan;
}

}  // namespace ember::kernels
