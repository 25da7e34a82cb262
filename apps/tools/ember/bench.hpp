#pragma once
// The measurements behind `ember bench`: training steps of MLPs on any backend, and on the GPU the
// kernel tables (GEMM against cuBLAS, memory-bound kernels against a device-to-device copy and
// CUB's reduction, the matmul's plans against each other), each measured with CUDA events as the
// median of repeated runs after a warm-up, with the L2 cache flushed before each run and random
// inputs.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ember/backend.hpp"
#include "ember/distributed.hpp"

namespace ember::bench {

struct StepCase {
  std::int64_t depth = 4;   // Dense layers
  std::int64_t width = 64;  // units of every hidden layer, and the input width
  std::int64_t batch = 32;
  /// 0: regression, one output, MSE, SGD with momentum 0.9. Else a classification over this many
  /// classes: one output per class, softmax cross-entropy, Adam.
  std::int64_t classes = 0;
  /// "depth 4 width 64 batch 32", with " softmax 10 adam" for a classification.
  std::string name() const;
};

struct StepTiming {
  double median_step_ms = 0;    // wall time per step, device work included
  double host_us_per_step = 0;  // host time to enqueue one step (equals the step on the CPU)
  std::int64_t parameters = 0;
  std::int64_t runs = 0;
  std::string data_parallel{};   // with several ranks: where the gradients were summed (TrainingSummary's)
  std::vector<double> run_ms{};  // each timed run's step time, in order
};

/// Times training steps (forward, loss, backward, update) on backend; runs >= 20. With a
/// communicator of several ranks (every rank calls it), each rank trains on its slice of each
/// global batch of step.batch rows and the gradients are summed between backward and update, as
/// fit does: the data-parallel step.
/// gradient_sum: where, as FitOptions::gradient_sum.
/// before_run(run), where given, is called before each run (warm-ups count from -2): a way to change
/// a setting between runs and compare two settings run by run (StepTiming::run_ms).
StepTiming time_training_step(Backend& backend, const StepCase& step, std::int64_t runs = 21,
                              std::int64_t steps_per_run = 10, Communicator* communicator = nullptr,
                              GradientSum gradient_sum = GradientSum::automatic,
                              const std::function<void(std::int64_t run)>& before_run = nullptr);

/// Times Sequential::predict (its default batch of 1024 rows) of `rows` random inputs on the step's
/// MLP on device: milliseconds, the median of runs after one warm-up.
double time_predict(Device device, const StepCase& step, std::int64_t rows, std::int64_t runs);

struct SumTiming {
  double median_ms = 0;  // the slowest rank's median
  double megabytes = 0;  // what each rank sums
};

/// The sum over the ranks of one step's gradients for a model of parameters, as a data-parallel
/// step makes it (every rank calls it): communicator.all_reduce over the float64 gradients (and
/// what the step carries beside them), or, where gradient_sum chooses the backend's collective
/// (NCCL), its scaled sum of the float32 gradients in backend memory.
SumTiming time_gradient_sum(Communicator& communicator, std::int64_t parameters, std::int64_t runs = 21,
                            Backend* backend = nullptr, GradientSum gradient_sum = GradientSum::host);

/// One GEMM case: TFLOP/s (2 m n k per product) of each provider; NaN where one is unavailable.
inline constexpr double kFp32GemmTolerance = 1e-5, kTf32GemmTolerance = 5e-3;

struct GemmRow {
  std::string label;  // "4096^3" or "forward 8192x4096x4096"
  std::int64_t m = 0, n = 0, k = 0;
  std::string mode;  // "NN", "NT" or "TN": op(a), op(b) transposed or not
  double ember = 0, cublas = 0, ember_tf32 = 0, cublas_tf32 = 0;
  double ember_tf32_mma = 0;   // where TF32 ran on wgmma: the mma.sync kernel on the same product; else NaN
  double ember_tf32_wide = 0;  // likewise the wgmma kernel on 128 x 256 tiles (a candidate Ember does not pick yet)
  /// Relative error ||ember - cublas|| / ||cublas|| of each Ember result against cuBLAS's FP32 product
  /// (NaN where that variant did not run); above kFp32GemmTolerance or kTf32GemmTolerance, it is wrong.
  double error = 0, error_tf32 = 0, error_tf32_mma = 0, error_tf32_wide = 0;
  std::string kernel;  // Ember's kernels that ran: FP32's ("128x128", "64x64", "64x64 split-k"), then " / " TF32's
};

/// One memory-bound kernel: GB/s (bytes the op must move, over time) against its yardstick, which
/// is measured in the same run: a device-to-device copy, or CUB's DeviceReduce::Sum for the loss.
struct BandwidthRow {
  std::string kernel;
  double bytes = 0;
  double gb_per_s = 0;
  std::string yardstick;
  double yardstick_gb_per_s = 0;
};

/// One product of a training step's MLP run one way (one of the plans the matmul could use).
struct TuningRow {
  std::string product;  // "width 256 batch 1024 forward"
  std::int64_t m = 0, n = 0, k = 0;
  std::string mode;  // "NN", "NT" or "TN"
  std::string plan;  // "32x32", "64x64", "64x64 split 8", "128x128"
  double microseconds = 0;
  bool chosen = false;  // the plan Ember uses for this product
  /// ||this plan's result - the chosen plan's|| / ||the chosen plan's||; above kFp32GemmTolerance, wrong.
  double error = 0;
};

struct KernelTableOptions {
  std::int64_t runs = 21;                                // timed runs per figure (median), >= 20
  std::int64_t memory_elements = std::int64_t{1} << 28;  // floats per operand of the memory table (1 GiB)
};

/// GPU only (InputError where no GPU is usable). Calls on_row as each row is measured.
std::vector<GemmRow> gemm_table(const KernelTableOptions& options, const std::function<void(const GemmRow&)>& on_row);
std::vector<BandwidthRow> bandwidth_table(const KernelTableOptions& options,
                                          const std::function<void(const BandwidthRow&)>& on_row);
/// Every FP32 plan for each matmul of the depth-4 step MLPs (widths 64, 256, 1024; batch 1024 and
/// 8192), timed with the epilogue the step uses: how good the plan's choices are on this GPU.
std::vector<TuningRow> tuning_table(const KernelTableOptions& options,
                                    const std::function<void(const TuningRow&)>& on_row);

}  // namespace ember::bench
