// The fast CPU path (float32, BLAS matmul, fused Dense ops) against the float64 reference.
#include <gtest/gtest.h>

#include "backend_conformance.hpp"
#include "cpu/fast_cpu_backend.hpp"

namespace ember {
namespace {

using namespace testing;

// The shapes sized for GPU tiling cost the float64 reference seconds each: left to the GPU tests.
constexpr std::int64_t kCpuMaxWork = 100'000'000;

TEST(FastCpu, IsTheDefaultCpuBackendAndTheReferenceIsSelectable) {
  std::string notice;
  EXPECT_EQ(make_backend(Device::cpu, {}, &notice)->name(), "cpu");
  EXPECT_EQ(notice, "");
  EXPECT_EQ(make_backend(Device::cpu, BackendOptions{.cpu_reference = true})->name(), "cpu (reference)");
  // TF32 is a GPU mode: on the CPU it is reported, not silently dropped.
  EXPECT_EQ(make_backend(Device::cpu, BackendOptions{.precision = Precision::tf32}, &notice)->name(), "cpu");
  EXPECT_EQ(notice, "TF32 applies to the GPU; the CPU computes in FP32");
}

TEST(FastCpu, FiftyTrainingStepsMatchReference) {
  const TrainingRun reference = train_fifty_steps(Device::cpu, {.cpu_reference = true});
  const TrainingRun fast = train_fifty_steps(Device::cpu);
  EXPECT_LT(relative_error(fast.parameters.data(), reference.parameters.data(),
                           static_cast<std::int64_t>(reference.parameters.size())),
            kTrainingTolerance);
  EXPECT_NEAR(fast.history.epochs[0].loss, reference.history.epochs[0].loss,
              kTrainingTolerance * reference.history.epochs[0].loss);
}

TEST(FastCpu, FiftyTrainingStepsMatchReferenceWithEveryActivation) {
  activations::for_each_part([](auto part) {
    const Activation kind = decltype(part)::kind;
    const TrainingRun reference = train_fifty_steps(Device::cpu, {.cpu_reference = true}, kNesterov, kind);
    const TrainingRun fast = train_fifty_steps(Device::cpu, {}, kNesterov, kind);
    EXPECT_LT(relative_error(fast.parameters.data(), reference.parameters.data(),
                             static_cast<std::int64_t>(reference.parameters.size())),
              kTrainingTolerance)
        << to_string(kind);
  });
}

TEST(FastCpu, MatmulAllShapesAndModes) {
  FastCpuBackend fast;
  expect_matmul_matches_reference(fast, kFloat32Tolerance, kCpuMaxWork);
}

TEST(FastCpu, DenseFusedOpsMatchReference) {
  FastCpuBackend fast;
  expect_dense_ops_match_reference(fast, kFloat32Tolerance, kCpuMaxWork);
}

TEST(FastCpu, ReferenceDenseOpsComposeTheSeparateOps) {
  CpuBackend reference;
  expect_dense_ops_match_reference(reference, kFloat32Tolerance, kCpuMaxWork);
}

TEST(FastCpu, BiasAndEveryActivationMatchReference) {
  FastCpuBackend fast;
  expect_pointwise_ops_match_reference(fast);
}

TEST(FastCpu, LossesMatchReference) {
  FastCpuBackend fast;
  expect_losses_match_reference(fast);
}

TEST(FastCpu, OptimizersMatchReference) {
  FastCpuBackend fast;
  expect_optimizers_match_reference(fast);
}

TEST(FastCpu, GatherFillCopy) {
  FastCpuBackend fast;
  expect_gather_fill_copy_work(fast);
}

}  // namespace
}  // namespace ember
