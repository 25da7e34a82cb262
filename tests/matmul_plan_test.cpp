// The GPU matmul's kernel choice and k split (kernels/matmul_plan.hpp, plain host code), checked
// here on any machine over a sweep of shapes, SM counts and options: the invariants the launch
// relies on (splits never empty, partials within the scratch, grids within limits).
#include "matmul_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ember::kernels {
namespace {

const std::vector<std::int64_t> kSizes = {1, 2, 17, 63, 64, 65, 127, 128, 129, 255, 257, 1000, 1024, 1543, 4096, 8192};
const std::vector<std::int64_t> kDepths = {0, 1, 15, 16, 17, 255, 256, 257, 1023, 4099, 8192, 65536, 1 << 20};

TEST(MatmulPlan, SplitsAreNonEmptyAndFitTheScratch) {
  int checked = 0;
  for (const int sms : {1, 8, 80, 108, 132, 170})
    for (const std::int64_t m : kSizes)
      for (const std::int64_t n : kSizes)
        for (const std::int64_t k : kDepths)
          for (const bool row_sums : {false, true})
            for (const bool linear : {false, true}) {
              const MatmulProblem problem{.m = m,
                                          .n = n,
                                          .k = k,
                                          .multiprocessors = sms,
                                          .linear = linear,
                                          .scratch = true,
                                          .row_sums = row_sums};
              const MatmulPlan plan = plan_matmul(problem);
              SCOPED_TRACE(testing::Message() << "m " << m << " n " << n << " k " << k << " sms " << sms << " row sums "
                                              << row_sums << " linear " << linear);
              ASSERT_GE(plan.splits, 1);
              ASSERT_LE(plan.splits, kMaxSplits);
              ASSERT_GE(plan.k_split, 1);
              if (plan.kernel == MatmulKernel::fp32_32x32) {  // sub-wave outputs only, never split
                EXPECT_LT(tile_count(m, n, kSmallTile), sms);
                EXPECT_EQ(plan.splits, 1);
              }
              if (plan.splits == 1) {
                EXPECT_EQ(plan.k_split, std::max<std::int64_t>(k, 1));
                continue;
              }
              ++checked;
              EXPECT_EQ(plan.kernel, MatmulKernel::fp32_64x64);
              EXPECT_TRUE(linear);  // fused epilogues need the whole sum
              EXPECT_EQ(plan.k_split % kSmallSliceK, 0);
              EXPECT_GE(plan.k_split, kMinSplitK / 2);         // long k only
              EXPECT_GE(plan.splits * plan.k_split, k);        // every k is covered
              EXPECT_LT((plan.splits - 1) * plan.k_split, k);  // and no split is empty
              EXPECT_LE(plan.splits * (m * n + (row_sums ? m : 0)), kReductionScratchFloats);
              EXPECT_LE(plan.splits * tile_count(m, n, kSmallTile), kSmallTileBlocksPerSm * sms);  // held at once
            }
  EXPECT_GT(checked, 100);  // the sweep does reach the split path
}

/// The invariants every split plan keeps (the launch's grid and scratch depend on them).
void expect_valid_split(const MatmulProblem& p, const MatmulPlan& plan) {
  if (plan.splits == 1) return;
  EXPECT_EQ(plan.kernel, MatmulKernel::fp32_64x64);
  EXPECT_TRUE(p.linear && p.scratch);
  EXPECT_EQ(plan.k_split % kSmallSliceK, 0);
  EXPECT_GE(plan.splits * plan.k_split, p.k);
  EXPECT_LT((plan.splits - 1) * plan.k_split, p.k);
  EXPECT_LE(plan.splits * (p.m * p.n + (p.row_sums ? p.m : 0)), kReductionScratchFloats);
  EXPECT_LE(plan.splits, kMaxSplits);
}

TEST(MatmulPlan, CandidatesAreValidAndIncludeTheChoice) {
  for (const std::int64_t m : kSizes)
    for (const std::int64_t n : {std::int64_t{1}, std::int64_t{64}, std::int64_t{257}, std::int64_t{4096}})
      for (const std::int64_t k : kDepths)
        for (const bool linear : {false, true}) {
          const MatmulProblem p{
              .m = m, .n = n, .k = k, .multiprocessors = 132, .linear = linear, .scratch = true, .row_sums = linear};
          SCOPED_TRACE(testing::Message() << "m " << m << " n " << n << " k " << k << " linear " << linear);
          const std::vector<MatmulPlan> plans = candidate_plans(p);
          ASSERT_GE(plans.size(), 3u);  // 32 x 32, 64 x 64, 128 x 128 at least
          for (const MatmulPlan& plan : plans) expect_valid_split(p, plan);
          EXPECT_NE(std::find(plans.begin(), plans.end(), plan_matmul(p)), plans.end()) << plan_name(plan_matmul(p));
          for (std::size_t i = 0; i < plans.size(); ++i)  // no duplicates
            for (std::size_t j = i + 1; j < plans.size(); ++j)
              EXPECT_FALSE(plans[i] == plans[j]) << plan_name(plans[i]);
        }
}

TEST(MatmulPlan, KernelFollowsTheTileCounts) {
  constexpr int kSms = 132;  // an H200
  // 12 x 12 = 144 tiles of 128: a wave of big tiles.
  EXPECT_EQ(plan_matmul({.m = 1536, .n = 1536, .k = 64, .multiprocessors = kSms}).kernel, MatmulKernel::fp32_128x128);
  // 8 x 8 = 64 big tiles: half a wave, over a long k: 128 x 128 tiles still. Over a short k, or
  // with a side narrower than a tile, 64 x 64 ones (256 of them; the output too large to split).
  EXPECT_EQ(plan_matmul({.m = 1024, .n = 1024, .k = 1024, .multiprocessors = kSms, .scratch = true}).kernel,
            MatmulKernel::fp32_128x128);
  const MatmulPlan small = plan_matmul({.m = 1024, .n = 1024, .k = 255, .multiprocessors = kSms, .scratch = true});
  EXPECT_EQ(small.kernel, MatmulKernel::fp32_64x64);
  EXPECT_EQ(small.splits, 1);
  EXPECT_EQ(plan_matmul({.m = 16384, .n = 64, .k = 1024, .multiprocessors = kSms}).kernel, MatmulKernel::fp32_64x64);
  // Under a third of a wave of big tiles (32), even over a long k: smaller tiles (here 32 x 32,
  // as 128 tiles of 64 are under a wave).
  EXPECT_EQ(plan_matmul({.m = 1024, .n = 512, .k = 1024, .multiprocessors = kSms}).kernel, MatmulKernel::fp32_32x32);
  // A narrow layer's weight gradient: one 64 x 64 tile over a batch of 8192, split the most ways
  // (64, k of 128 each); over a batch of 1024, into splits of k = 32.
  const MatmulPlan narrow = plan_matmul({.m = 64, .n = 64, .k = 8192, .multiprocessors = kSms, .scratch = true});
  EXPECT_EQ(narrow.splits, 64);
  EXPECT_EQ(narrow.k_split, 128);
  const MatmulPlan shorter = plan_matmul({.m = 64, .n = 64, .k = 1024, .multiprocessors = kSms, .scratch = true});
  EXPECT_EQ(shorter.splits, 32);
  EXPECT_EQ(shorter.k_split, 32);
  // 16 tiles of 64 (a width-256 layer's weight gradient): as many splits as 4 blocks per SM allow,
  // within the scratch (15 of 256 x 256 partials and row sums).
  EXPECT_EQ(
      plan_matmul({.m = 256, .n = 256, .k = 8192, .multiprocessors = kSms, .scratch = true, .row_sums = true}).splits,
      15);
  EXPECT_EQ(plan_matmul({.m = 256, .n = 256, .k = 200, .multiprocessors = 8, .scratch = true}).splits, 2);
  // No scratch, or a fused epilogue: no split, and less than a wave of 64 x 64 tiles: 32 x 32 ones.
  EXPECT_EQ(plan_matmul({.m = 64, .n = 64, .k = 8192, .multiprocessors = kSms}).splits, 1);
  const MatmulPlan fused =
      plan_matmul({.m = 64, .n = 64, .k = 8192, .multiprocessors = kSms, .linear = false, .scratch = true});
  EXPECT_EQ(fused.splits, 1);
  EXPECT_EQ(fused.kernel, MatmulKernel::fp32_32x32);
  // A width-256 layer's forward on a batch of 1024: 64 tiles of 64, 256 of 32.
  EXPECT_EQ(plan_matmul({.m = 1024, .n = 256, .k = 256, .multiprocessors = kSms, .linear = false}).kernel,
            MatmulKernel::fp32_32x32);
  // Row sums: in the 64 x 64 (or 32 x 32) kernel, else after it.
  EXPECT_TRUE(plan_matmul({.m = 64, .n = 64, .k = 8192, .multiprocessors = kSms, .scratch = true, .row_sums = true})
                  .row_sums_in_kernel);
  EXPECT_FALSE(
      plan_matmul({.m = 1536, .n = 1536, .k = 64, .multiprocessors = kSms, .row_sums = true}).row_sums_in_kernel);
}

TEST(MatmulPlan, DenseConformanceShapesReachEveryFp32Path) {
  // The weight gradients (out, in) over k = rows of tests/backend_conformance.hpp's dense shapes, on
  // an H200, with the bias gradient as row sums: every FP32 path is exercised by the GPU tests.
  const auto weight_gradient = [](std::int64_t rows, std::int64_t in, std::int64_t out) {
    return plan_matmul({.m = out, .n = in, .k = rows, .multiprocessors = 132, .scratch = true, .row_sums = true});
  };
  EXPECT_EQ(weight_gradient(17, 33, 65).kernel, MatmulKernel::fp32_32x32);
  EXPECT_TRUE(weight_gradient(17, 33, 65).row_sums_in_kernel);
  EXPECT_GT(weight_gradient(256, 256, 256).splits, 1);
  EXPECT_EQ(weight_gradient(301, 999, 1001).kernel, MatmulKernel::fp32_128x128);
  EXPECT_GT(weight_gradient(513, 129, 257).splits, 1);
  EXPECT_GT(weight_gradient(1537, 260, 1540).splits, 1);
  EXPECT_EQ(weight_gradient(129, 1541, 1543).kernel, MatmulKernel::fp32_128x128);
  EXPECT_FALSE(weight_gradient(129, 1541, 1543).row_sums_in_kernel);
  // The short-k shapes reach the same paths: the unsplit 64 x 64 weight gradient, and the 128 x 128
  // kernel for the forward product (rows, out), the input gradient (rows, in) and the weight gradient.
  const auto fused = [](std::int64_t m, std::int64_t n, std::int64_t k) {
    return plan_matmul({.m = m, .n = n, .k = k, .multiprocessors = 132, .linear = false, .scratch = true});
  };
  EXPECT_EQ(weight_gradient(33, 999, 1001).kernel, MatmulKernel::fp32_64x64);
  EXPECT_EQ(weight_gradient(33, 999, 1001).splits, 1);
  // (1537, 17, 1540)'s forward and (1537, 1540, 17)'s input gradient: both 1537 x 1540 over k = 17.
  EXPECT_EQ(fused(1537, 1540, 17).kernel, MatmulKernel::fp32_128x128);
  EXPECT_EQ(weight_gradient(17, 1540, 1543).kernel, MatmulKernel::fp32_128x128);
  EXPECT_FALSE(weight_gradient(17, 1540, 1543).row_sums_in_kernel);
  // (1024, 16, 1024) splits both products of dense_backward over k at once: the weight gradient on
  // the side stream and the input gradient (without a ReLU mask) on the main one, each through
  // its own scratch.
  EXPECT_GT(weight_gradient(1024, 16, 1024).splits, 1);
  EXPECT_GT(plan_matmul({.m = 1024, .n = 16, .k = 1024, .multiprocessors = 132, .scratch = true}).splits, 1);
}

TEST(MatmulPlan, Tf32PicksWgmmaForAWaveAndMmaSyncBelow) {
  constexpr int kSms = 132;
  const auto kernel = [](std::int64_t m, std::int64_t n, bool wgmma) {
    return plan_matmul({.m = m, .n = n, .k = 512, .multiprocessors = kSms, .tf32 = true, .wgmma = wgmma}).kernel;
  };
  EXPECT_EQ(kernel(1536, 1536, true), MatmulKernel::tf32_wgmma);      // 144 tiles
  EXPECT_EQ(kernel(1536, 1536, false), MatmulKernel::tf32_mma_sync);  // no wgmma in this build or device
  EXPECT_EQ(kernel(1024, 1024, true), MatmulKernel::tf32_mma_sync);   // 64 tiles: a quarter wave or more
  EXPECT_EQ(kernel(512, 512, true), MatmulKernel::fp32_32x32);        // 16 tiles: FP32 (no scratch here: no split)
}

}  // namespace
}  // namespace ember::kernels
