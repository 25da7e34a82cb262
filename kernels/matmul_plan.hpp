#pragma once
// Which matmul kernel runs a product, and how it splits k: plain host C++ (no CUDA), so that the
// choice and its invariants are tested on any machine (tests/matmul_plan_test.cpp).
//
// Outputs of at least one 128 x 128 tile per SM run on 128 x 128 tiles: the FP32 kernel, or with
// TF32 the wgmma kernel where it is ready (else mma.sync). TF32 outputs of a quarter of that run on
// mma.sync's 128 x 128 kernel. FP32 outputs of a third of a wave of such tiles take them too when
// k is long and neither side is narrower than a tile. Everything else runs on 64 x 64 tiles, and a
// plain (linear) product with a scratch is split over k as far as the SMs hold blocks of that
// kernel at once (the weight gradient of a narrow layer): each split's partial product (and row
// sums) goes to the scratch, a second kernel adds them in split order. Unsplit outputs of less than
// a wave of 64 x 64 tiles take 32 x 32 tiles instead, four times the blocks.
//
// The thresholds come from `ember bench --tables tuning` on an H200 (docs/performance.md): a split
// block's time grows with its k (64 x 64 x 1024 split 4, 8, 16, 64 ways: 28, 18, 12, 10 us), and
// 128 x 128 tiles beat 64 x 64 ones from about half a wave at k of 256 and more (8192 x 256 x 256:
// 36 against 83 us; 1024^3: 120 against 164 us) but not on a 64- or 1-wide output.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace ember::kernels {

/// The reductions' scratch: kReductionScratchFloats floats of device memory (4 MiB), used by one
/// op at a time (stream order): the loss's and the bias gradient's column sums and split-k matmuls.
inline constexpr std::int64_t kReductionScratchFloats = std::int64_t{1} << 20;

inline constexpr int kBigTile = 128;      // the 128 x 128 kernels' tile (FP32, mma.sync, wgmma)
inline constexpr int kSmallTile = 64;     // the 64 x 64 kernel's tile (split-k runs on it)
inline constexpr int kSmallestTile = 32;  // sub-wave outputs: the 32 x 32 kernel's tile
inline constexpr int kSmallSliceK = 16;   // its k slice: a split covers a whole number of them
inline constexpr int kMinSplitK = 32;     // k per split at least (two slices): shorter gained nothing measured
inline constexpr int kMaxSplits = 64;
// The 64 x 64 kernel's blocks one SM holds at once (256 threads of 48-80 registers: 3 to 5): a
// split fills that many per SM, beyond which blocks wait for a second round.
inline constexpr int kSmallTileBlocksPerSm = 4;
// k from which FP32 outputs of a third of a wave of 128 x 128 tiles run on them.
inline constexpr int kBigTileMinK = 256;

/// tf32_wgmma_wide: the wgmma kernel on 128 x 256 tiles, which the benchmarks time beside the
/// 128 x 128 one; plan_matmul does not pick it.
enum class MatmulKernel { fp32_32x32, fp32_64x64, fp32_128x128, tf32_mma_sync, tf32_wgmma, tf32_wgmma_wide };

struct MatmulProblem {
  std::int64_t m = 0, n = 0, k = 0;
  int multiprocessors = 1;
  bool tf32 = false;      // TF32 precision asked for
  bool wgmma = false;     // the wgmma kernel may be used (ready, and not excluded)
  bool linear = true;     // a plain product (the fused epilogues need the whole sum: no split)
  bool scratch = false;   // a scratch is given
  bool row_sums = false;  // row sums of op(a) are wanted
};

struct MatmulPlan {
  MatmulKernel kernel = MatmulKernel::fp32_64x64;
  std::int64_t splits = 1;   // blocks along k (the 64 x 64 kernel only)
  std::int64_t k_split = 1;  // k per split: a multiple of kSmallSliceK when split, else max(k, 1)
  /// Whether the 64 x 64 or 32 x 32 kernel sums the rows itself; otherwise a column reduction of a follows.
  bool row_sums_in_kernel = false;
};

inline bool operator==(const MatmulPlan& x, const MatmulPlan& y) {
  return x.kernel == y.kernel && x.splits == y.splits && x.k_split == y.k_split &&
         x.row_sums_in_kernel == y.row_sums_in_kernel;
}

inline std::int64_t tile_count(std::int64_t m, std::int64_t n, std::int64_t tile) {
  return ((m + tile - 1) / tile) * ((n + tile - 1) / tile);
}

/// The 64 x 64 kernel's plan for p split into at most `splits` ranges of k: k per split a whole
/// number of slices, then the splits that k actually needs (none empty). Splits of 1: no split.
inline MatmulPlan split_plan(const MatmulProblem& p, std::int64_t splits) {
  MatmulPlan plan;
  plan.kernel = MatmulKernel::fp32_64x64;
  plan.row_sums_in_kernel = p.row_sums;
  if (splits <= 1) {
    plan.k_split = std::max<std::int64_t>(p.k, 1);
    return plan;
  }
  const std::int64_t per_split = (p.k + splits - 1) / splits;
  plan.k_split = (per_split + kSmallSliceK - 1) / kSmallSliceK * kSmallSliceK;
  plan.splits = (p.k + plan.k_split - 1) / plan.k_split;
  return plan;
}

/// The most splits p's partials (and row sums) fit in the scratch, within kMaxSplits; 1 where p
/// cannot be split (a fused epilogue, or no scratch).
inline std::int64_t max_splits(const MatmulProblem& p) {
  if (!p.linear || !p.scratch || p.m * p.n == 0) return 1;
  const std::int64_t split_floats = p.m * p.n + (p.row_sums ? p.m : 0);
  return std::max<std::int64_t>(1, std::min(kReductionScratchFloats / split_floats, std::int64_t{kMaxSplits}));
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
  const bool long_and_wide = p.k >= kBigTileMinK && std::min(p.m, p.n) >= kBigTile && 3 * big_tiles >= sms;
  if (big_tiles >= sms || long_and_wide) {
    plan.kernel = MatmulKernel::fp32_128x128;
    plan.k_split = std::max<std::int64_t>(p.k, 1);
    return plan;
  }
  // Split as far as the SMs hold the blocks at once, with k of kMinSplitK per split at least.
  const std::int64_t small_tiles = std::max<std::int64_t>(tile_count(p.m, p.n, kSmallTile), 1);
  const std::int64_t splits = std::min({kSmallTileBlocksPerSm * sms / small_tiles, p.k / kMinSplitK, max_splits(p)});
  plan = split_plan(p, splits);
  // Less than a wave and unsplit: more, smaller blocks.
  if (plan.splits == 1 && small_tiles < sms) plan.kernel = MatmulKernel::fp32_32x32;
  return plan;
}

/// Every FP32 plan that can run p (what `ember bench --tables tuning` times): 32 x 32 and 64 x 64
/// tiles unsplit, 64 x 64 split 2, 4, 8, ... ways where p can be split and k allows (at least one
/// slice per split), and 128 x 128 tiles. plan_matmul(p) is one of them (for FP32 p).
inline std::vector<MatmulPlan> candidate_plans(const MatmulProblem& p) {
  std::vector<MatmulPlan> plans;
  MatmulPlan small = split_plan(p, 1);
  small.kernel = MatmulKernel::fp32_32x32;
  plans.push_back(small);
  plans.push_back(split_plan(p, 1));
  std::int64_t previous = 1;
  for (std::int64_t splits = 2; splits <= max_splits(p) && splits * kSmallSliceK <= p.k; splits *= 2) {
    const MatmulPlan split = split_plan(p, splits);
    if (split.splits != previous) plans.push_back(split);  // a k too short to honour the count repeats one
    previous = split.splits;
  }
  // The plan's own count, when no power of two gave it.
  const MatmulPlan chosen = split_plan(p, plan_matmul(p).splits);
  if (chosen.splits > 1 && std::find(plans.begin(), plans.end(), chosen) == plans.end()) plans.push_back(chosen);
  MatmulPlan big;
  big.kernel = MatmulKernel::fp32_128x128;
  big.k_split = std::max<std::int64_t>(p.k, 1);
  plans.push_back(big);
  return plans;
}

/// "32x32", "64x64", "64x64 split 8", "128x128", "tf32 mma.sync", "tf32 wgmma", "tf32 wgmma 128x256".
inline std::string plan_name(const MatmulPlan& plan) {
  switch (plan.kernel) {
    case MatmulKernel::fp32_32x32:
      return "32x32";
    case MatmulKernel::fp32_64x64:
      return plan.splits == 1 ? "64x64" : "64x64 split " + std::to_string(plan.splits);
    case MatmulKernel::fp32_128x128:
      return "128x128";
    case MatmulKernel::tf32_mma_sync:
      return "tf32 mma.sync";
    case MatmulKernel::tf32_wgmma:
      return "tf32 wgmma";
    case MatmulKernel::tf32_wgmma_wide:
      return "tf32 wgmma 128x256";
  }
  return "?";
}

}  // namespace ember::kernels
