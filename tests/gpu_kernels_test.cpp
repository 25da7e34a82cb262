// Every CUDA op against the CPU reference (tests/backend_conformance.hpp), for Ember's kernels and
// for the cuBLAS matmul provider. Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include <cstdlib>

#include "backend_conformance.hpp"

namespace ember {
namespace {

using namespace testing;

// Under compute-sanitizer (scripts/gpu-check.sh) the 1024^3 case would take minutes: left out there.
// On the CPU emulation of CUDA (tests/emulator), shapes above 170 M multiply-adds are left out: the
// smaller ones reach the same kernels and paths.
std::int64_t max_work() {
  if (std::getenv("EMBER_EMULATED_GPU") != nullptr) return 170'000'000;
  return std::getenv("EMBER_SANITIZER_RUN") != nullptr ? 1'000'000'000 : kAnyShape;
}

TEST(GpuKernels, MatmulEmberAllShapesAndModes) {
  EMBER_REQUIRE_GPU(gpu, BackendOptions{.matmul = MatmulProvider::ember});
  expect_matmul_matches_reference(*gpu, kFloat32Tolerance, max_work());
}

TEST(GpuKernels, MatmulCublasAllShapesAndModes) {
  EMBER_REQUIRE_GPU(gpu, BackendOptions{.matmul = MatmulProvider::cublas});
  expect_matmul_matches_reference(*gpu, kFloat32Tolerance, max_work());
}

TEST(GpuKernels, SplitKMatmulIsBitReproducible) {
  // A weight gradient of a narrow layer over a long batch: split over k, summed in a fixed order.
  EMBER_REQUIRE_GPU(gpu);
  const Matrix dy = random_matrix(8192, 64, 41), x = random_matrix(8192, 64, 42);
  OnBackend ddy(*gpu, dy), dx(*gpu, x), first(*gpu, poisoned(64, 64)), second(*gpu, poisoned(64, 64));
  gpu->matmul(Transpose::yes, Transpose::no, 1.0f, ddy.view(), dx.view(), 0.0f, first.view());
  gpu->matmul(Transpose::yes, Transpose::no, 1.0f, ddy.view(), dx.view(), 0.0f, second.view());
  EXPECT_EQ(first.download(), second.download());
  // The same product with its bias gradient (row sums in the split kernels), beside an input gradient.
  const Matrix weight = random_matrix(64, 64, 43);
  OnBackend dweight(*gpu, weight), dw(*gpu, poisoned(64, 64)), db(*gpu, poisoned(1, 64)),
      input_gradient(*gpu, poisoned(8192, 64));
  OnBackend dw_again(*gpu, poisoned(64, 64)), db_again(*gpu, poisoned(1, 64));
  gpu->dense_backward(ddy.view(), dx.view(), dweight.view(), std::nullopt, dw.view(), db.view(), input_gradient.view());
  gpu->dense_backward(ddy.view(), dx.view(), dweight.view(), std::nullopt, dw_again.view(), db_again.view(),
                      input_gradient.view());
  EXPECT_EQ(dw.download(), dw_again.download());
  EXPECT_EQ(db.download(), db_again.download());
  EXPECT_EQ(dw.download(), first.download());  // the row sums change nothing in the product
}

TEST(GpuKernels, MatmulTf32AllShapesAndModes) {
  EMBER_REQUIRE_GPU(gpu, BackendOptions{.matmul = MatmulProvider::ember, .precision = Precision::tf32});
  expect_matmul_matches_reference(*gpu, kTf32Tolerance, max_work());
}

TEST(GpuKernels, Tf32RunsOnTensorCores) {
  // TF32 rounding shows: an error far above FP32's proves the tensor-core path ran. The output has
  // enough 128 x 128 tiles to be given to the TF32 kernel (169 on a 1540 x 1548 output).
  EMBER_REQUIRE_GPU(gpu, BackendOptions{.matmul = MatmulProvider::ember, .precision = Precision::tf32});
  CpuBackend cpu;
  const Matrix a = random_matrix(1540, 260, 31), b = random_matrix(260, 1548, 32);
  Matrix expected = poisoned(1540, 1548);
  cpu.matmul(Transpose::no, Transpose::no, 1.0f, a.view(), b.view(), 0.0f, expected.view());
  OnBackend da(*gpu, a), db(*gpu, b), dc(*gpu, poisoned(1540, 1548));
  gpu->matmul(Transpose::no, Transpose::no, 1.0f, da.view(), db.view(), 0.0f, dc.view());
  const double error = relative_error(dc.download(), expected);
  EXPECT_GT(error, 10 * kFloat32Tolerance);
  EXPECT_LT(error, kTf32Tolerance);
}

TEST(GpuKernels, DenseFusedEpiloguesTf32) {
  EMBER_REQUIRE_GPU(gpu, BackendOptions{.matmul = MatmulProvider::ember, .precision = Precision::tf32});
  expect_dense_ops_match_reference(*gpu, kTf32Tolerance, max_work());
}

TEST(GpuKernels, DenseFusedEpiloguesMatchCpu) {
  EMBER_REQUIRE_GPU(gpu);
  expect_dense_ops_match_reference(*gpu, kFloat32Tolerance, max_work());
}

TEST(GpuKernels, BiasAndEveryActivationMatchCpu) {
  EMBER_REQUIRE_GPU(gpu);
  expect_pointwise_ops_match_reference(*gpu);
}

TEST(GpuKernels, LossesMatchCpuAndAreDeterministic) {
  EMBER_REQUIRE_GPU(gpu);
  expect_losses_match_reference(*gpu);
}

TEST(GpuKernels, OptimizersMatchCpuWithTails) {
  EMBER_REQUIRE_GPU(gpu);
  expect_optimizers_match_reference(*gpu);
}

TEST(GpuKernels, EmbeddingMatchesCpu) {
  EMBER_REQUIRE_GPU(gpu);
  expect_embedding_matches_reference(*gpu);
}

TEST(GpuKernels, EveryLayerMatchesCpu) {
  EMBER_REQUIRE_GPU(gpu);
  expect_every_layer_matches_reference(*gpu);
}

TEST(GpuKernels, LayerNormMatchesCpuAndIsDeterministic) {
  EMBER_REQUIRE_GPU(gpu);
  expect_layer_norm_matches_reference(*gpu);
}

TEST(GpuKernels, BatchNormMatchesCpuAndIsDeterministic) {
  EMBER_REQUIRE_GPU(gpu);
  expect_batch_norm_matches_reference(*gpu);
}

TEST(GpuKernels, ClipByNormMatchesCpuAndIsDeterministic) {
  EMBER_REQUIRE_GPU(gpu);
  expect_clip_matches_reference(*gpu);
}

TEST(GpuKernels, GatherFillCopyMatchCpu) {
  EMBER_REQUIRE_GPU(gpu);
  expect_gather_fill_copy_work(*gpu);
}

}  // namespace
}  // namespace ember
