// The kernel tables of `ember bench`: Ember's kernels timed beside their yardsticks (cuBLAS, a
// device-to-device copy, CUB) in the same run. Every figure is the median of the timed runs, each
// bracketed by CUDA events after the L2 cache was flushed (a 256 MiB memset), following two
// untimed warm-up runs. Inputs are uniform random in (0, 1] (a counter-based hash), never zeros.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "cuda/cublas_util.hpp"
#include "cuda/cuda_api.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "layer_ops.hpp"

namespace ember::cuda {
namespace {

using bench::BandwidthRow;
using bench::GemmRow;
using bench::KernelTableOptions;

/// Device memory owned for the length of one table.
class DeviceMemory {
 public:
  explicit DeviceMemory(std::size_t bytes) : bytes_(bytes) {
    const cudaError_t status = cudaMalloc(&data_, std::max<std::size_t>(bytes, 256));
    if (status != cudaSuccess) {
      cudaGetLastError();
      throw Error(fmt::format("ember bench: cannot allocate {:.0f} MiB of GPU memory: {}", bytes / 1048576.0,
                              cudaGetErrorString(status)));
    }
  }
  ~DeviceMemory() { cudaFree(data_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  float* floats() const { return static_cast<float*>(data_); }
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_;
};

/// A stream, its events, the L2 flush buffer and random inputs: what every table needs.
class Bench {
 public:
  explicit Bench(std::int64_t runs) : runs_(runs), flush_(kFlushBytes) {
    if (runs < 20) throw InputError(fmt::format("--runs {}: at least 20 runs make a median", runs));
    EMBER_CUDA_CHECK(cudaSetDevice(0));
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    EMBER_CUDA_CHECK(cudaEventCreate(&start_));
    EMBER_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Bench() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaStreamDestroy(stream_);
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  cudaStream_t stream() const { return stream_; }

  /// Uniform values in (0, 1], never zero; each call draws a fresh sequence.
  void randomize(float* data, std::size_t count) {
    kernels::launch_fill_uniform(data, static_cast<std::int64_t>(count), ++seed_, stream_);
  }

  /// host = the floats of device (as many as host holds), once the work queued before is done.
  void download(const DeviceMemory& device, std::vector<float>& host) {
    EMBER_CUDA_CHECK(
        cudaMemcpyAsync(host.data(), device.data(), host.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  /// Median milliseconds of launch(), which enqueues work on stream().
  template <typename Launch>
  double median_ms(Launch&& launch) {
    std::vector<double> samples;
    for (std::int64_t run = -2; run < runs_; ++run) {
      EMBER_CUDA_CHECK(cudaMemsetAsync(flush_.data(), static_cast<int>(run & 0xff), flush_.bytes(), stream_));
      EMBER_CUDA_CHECK(cudaEventRecord(start_, stream_));
      launch();
      EMBER_CUDA_CHECK(cudaEventRecord(stop_, stream_));
      EMBER_CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      if (run >= 0) samples.push_back(ms);
    }
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2), samples.end());
    return samples[samples.size() / 2];
  }

 private:
  static constexpr std::size_t kFlushBytes = std::size_t{256} << 20;  // over 4x the L2 of an H200
  std::int64_t runs_;
  DeviceMemory flush_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::uint64_t seed_ = 2024;
};

struct GemmCase {
  std::string label;
  std::int64_t m, n, k;
  bool ta, tb;
};

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  for (const std::int64_t size : {1024, 2048, 4096, 8192})
    cases.push_back({fmt::format("{}^3", size), size, size, size, false, false});
  // A Dense layer of width w on a batch of b: the forward x @ w^T (NT), the input gradient dy @ w
  // (NN) and the weight gradient dy^T @ x (TN).
  for (const auto& [batch, width] : {std::pair<std::int64_t, std::int64_t>{4096, 1024}, {8192, 4096}}) {
    cases.push_back({fmt::format("forward {}x{}x{}", batch, width, width), batch, width, width, false, true});
    cases.push_back({fmt::format("input grad {}x{}x{}", batch, width, width), batch, width, width, false, false});
    cases.push_back({fmt::format("weight grad {}x{}x{}", width, width, batch), width, width, batch, true, false});
  }
  return cases;
}

std::string short_kernel_name(const std::string& kernel) {
  if (kernel == "matmul_128x128_kernel") return "128x128";
  if (kernel == "matmul_64x64_kernel") return "64x64";
  if (kernel == "matmul_32x32_kernel") return "32x32";
  if (kernel == "split_k_sum_kernel") return "64x64 split-k";
  if (kernel == "matmul_tf32_kernel") return "tf32 mma.sync";
  if (kernel == "matmul_wgmma_kernel") return "tf32 wgmma";
  if (kernel == "matmul_wgmma_wide_kernel") return "tf32 wgmma 128x256";
  return kernel;
}

/// ||got - expected|| / ||expected||, in double.
double relative_error(const std::vector<float>& got, const std::vector<float>& expected) {
  double difference = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - expected[i];
    difference += d * d;
    norm += static_cast<double>(expected[i]) * expected[i];
  }
  return norm > 0 ? std::sqrt(difference / norm) : std::sqrt(difference);
}

std::string mode_name(bool ta, bool tb) {
  return fmt::format("{}{}", ta ? 'T' : 'N', tb ? 'T' : 'N');
}

}  // namespace

std::vector<GemmRow> gemm_table(const KernelTableOptions& options, const std::function<void(const GemmRow&)>& on_row) {
  Bench bench(options.runs);
  CublasHandle fp32(bench.stream(), false), tf32(bench.stream(), true);
  DeviceMemory scratch(kernels::kReductionScratchFloats * sizeof(float));  // as the CUDA backend has: split-k on
  std::vector<GemmRow> rows;
  for (const GemmCase& g : gemm_cases()) {
    // a is stored (m, k), or (k, m) when transposed; b (k, n), or (n, k).
    const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
    const int lda = g.ta ? m : k, ldb = g.tb ? k : n;
    DeviceMemory a(g.m * g.k * sizeof(float)), b(g.k * g.n * sizeof(float)), c(g.m * g.n * sizeof(float));
    bench.randomize(a.floats(), static_cast<std::size_t>(g.m * g.k));
    bench.randomize(b.floats(), static_cast<std::size_t>(g.k * g.n));
    const double flop = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
    const auto tflops = [&](double ms) { return flop / (ms * 1e-3) / 1e12; };
    const char* kernel = nullptr;  // the last Ember kernel timed
    // Each Ember result is checked against cuBLAS's FP32 product of the same inputs.
    std::vector<float> expected(static_cast<std::size_t>(g.m * g.n)), got(expected.size());
    // Ember's plan for the precision, or the given one (the TF32 kernels it does not pick).
    const auto ember = [&](kernels::MatmulPrecision precision, const kernels::MatmulPlan* plan, double& relative) {
      const double figure = tflops(bench.median_ms([&] {
        kernel = plan != nullptr
                     ? kernels::launch_matmul_planned(*plan, g.ta, g.tb, m, n, k, a.floats(), lda, b.floats(), ldb,
                                                      c.floats(), n, {}, bench.stream(), scratch.floats())
                     : kernels::launch_matmul(g.ta, g.tb, m, n, k, a.floats(), lda, b.floats(), ldb, c.floats(), n, {},
                                              bench.stream(), precision, scratch.floats());
      }));
      bench.download(c, got);
      relative = relative_error(got, expected);
      return figure;
    };
    const auto time_cublas = [&](const CublasHandle& handle) {
      return tflops(bench.median_ms([&] {
        cublas_sgemm_row_major(handle.get(), g.ta, g.tb, m, n, k, 1.0f, a.floats(), lda, b.floats(), ldb, 0.0f,
                               c.floats(), n);
      }));
    };
    GemmRow row;
    row.label = g.label;
    row.m = g.m;
    row.n = g.n;
    row.k = g.k;
    row.mode = mode_name(g.ta, g.tb);
    row.cublas = time_cublas(fp32);
    bench.download(c, expected);
    row.ember = ember(kernels::MatmulPrecision::fp32, nullptr, row.error);
    row.kernel = short_kernel_name(kernel);
    constexpr double kNotRun = std::numeric_limits<double>::quiet_NaN();
    row.ember_tf32 = row.ember_tf32_mma = row.ember_tf32_wide = kNotRun;
    row.error_tf32 = row.error_tf32_mma = row.error_tf32_wide = kNotRun;
    if (kernels::tf32_matmul_available()) {
      row.ember_tf32 = ember(kernels::MatmulPrecision::tf32, nullptr, row.error_tf32);
      const std::string tf32_kernel = kernel;
      row.kernel += " / " + short_kernel_name(tf32_kernel);
      if (tf32_kernel == "matmul_wgmma_kernel") {
        const kernels::MatmulPlan mma{.kernel = kernels::MatmulKernel::tf32_mma_sync, .k_split = std::max(k, 1)};
        const kernels::MatmulPlan wide{.kernel = kernels::MatmulKernel::tf32_wgmma_wide, .k_split = std::max(k, 1)};
        row.ember_tf32_mma = ember(kernels::MatmulPrecision::tf32, &mma, row.error_tf32_mma);
        row.ember_tf32_wide = ember(kernels::MatmulPrecision::tf32, &wide, row.error_tf32_wide);
      }
    }
    row.cublas_tf32 = time_cublas(tf32);
    on_row(row);
    rows.push_back(row);
  }
  return rows;
}

std::vector<BandwidthRow> bandwidth_table(const KernelTableOptions& options,
                                          const std::function<void(const BandwidthRow&)>& on_row) {
  Bench bench(options.runs);
  cudaStream_t stream = bench.stream();
  // Every operand is n floats, viewed as (rows, cols) where an op needs a matrix.
  constexpr std::int64_t cols = 4096;
  const std::int64_t n = std::max<std::int64_t>(options.memory_elements / cols, 1) * cols, rows = n / cols;
  const double operand = static_cast<double>(n) * sizeof(float);
  DeviceMemory pair(2 * static_cast<std::size_t>(n) * sizeof(float));  // two operands back to back
  DeviceMemory out(static_cast<std::size_t>(n) * sizeof(float)), third(static_cast<std::size_t>(n) * sizeof(float));
  DeviceMemory bias(cols * sizeof(float)), bias_gradient(cols * sizeof(float));
  DeviceMemory indices(static_cast<std::size_t>(rows) * sizeof(std::int32_t)), cursor(2 * sizeof(std::int32_t));
  DeviceMemory scratch(kernels::kReductionScratchFloats * sizeof(float)), sum(sizeof(float));
  DeviceMemory column_sums(3 * cols * sizeof(float)), labels(static_cast<std::size_t>(rows) * sizeof(float));
  const std::size_t cub_bytes = kernels::cub_sum_scratch_bytes(2 * n);
  DeviceMemory cub_scratch(cub_bytes);
  float* first = pair.floats();
  float* second = pair.floats() + n;
  bench.randomize(first, static_cast<std::size_t>(2 * n));
  bench.randomize(third.floats(), static_cast<std::size_t>(n));
  bench.randomize(bias.floats(), cols);
  // A random permutation of the rows for the gather, and its cursor at 0.
  std::vector<std::int32_t> order(static_cast<std::size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  // On the bench's own stream (a non-blocking one, which the legacy default stream does not order
  // with), then waited for: the host vector must outlive the copy.
  EMBER_CUDA_CHECK(cudaMemcpyAsync(indices.data(), order.data(), order.size() * sizeof(std::int32_t),
                                   cudaMemcpyHostToDevice, stream));
  EMBER_CUDA_CHECK(cudaMemsetAsync(cursor.data(), 0, 2 * sizeof(std::int32_t), stream));  // and dropout's epoch
  // Class labels for the cross-entropy: every class in turn.
  std::vector<float> label_values(static_cast<std::size_t>(rows));
  for (std::size_t i = 0; i < label_values.size(); ++i) label_values[i] = static_cast<float>(i % cols);
  EMBER_CUDA_CHECK(cudaMemcpyAsync(labels.data(), label_values.data(), label_values.size() * sizeof(float),
                                   cudaMemcpyHostToDevice, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  const auto* index_data = static_cast<const std::int32_t*>(indices.data());
  const auto* cursor_data = static_cast<const std::int32_t*>(cursor.data());

  const auto gb_per_s = [](double bytes, double ms) { return bytes / (ms * 1e-3) / 1e9; };
  const double copy_bytes = 2 * operand;
  const double copy = gb_per_s(copy_bytes, bench.median_ms([&] {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(out.data(), first, static_cast<std::size_t>(n) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, stream));
  }));
  std::vector<BandwidthRow> table;
  const auto emit = [&](BandwidthRow row) {
    on_row(row);
    table.push_back(std::move(row));
  };
  emit({"d2d copy", copy_bytes, copy, "d2d copy", copy});
  const auto measure = [&](const char* name, double bytes, auto&& launch) {
    emit({name, bytes, gb_per_s(bytes, bench.median_ms(launch)), "d2d copy", copy});
  };
  measure("bias add", 2 * operand, [&] { kernels::launch_bias_add(out.floats(), bias.floats(), rows, cols, stream); });
  measure("bias gradient", operand,
          [&] { kernels::launch_bias_gradient(first, bias_gradient.floats(), rows, cols, scratch.floats(), stream); });
  measure("relu forward", 2 * operand,
          [&] { kernels::launch_activation_forward(Activation::relu, first, out.floats(), n, stream); });
  measure("relu backward", 3 * operand, [&] {
    kernels::launch_activation_backward(Activation::relu, first, nullptr, second, out.floats(), n, stream);
  });
  measure("gelu forward", 2 * operand,
          [&] { kernels::launch_activation_forward(Activation::gelu, first, out.floats(), n, stream); });
  measure("gelu backward", 3 * operand, [&] {  // dy and x read (GELU's backward needs no y), dx written
    kernels::launch_activation_backward(Activation::gelu, first, second, second, out.floats(), n, stream);
  });
  // Dropout's op, as its layer part runs it.
  const kernels::LayerOpLaunch dropout = kernels::find_layer_op("dropout");
  const ConstView dropout_in{first, rows, cols};
  const View dropout_out{out.floats(), rows, cols};
  const float dropout_rate = 0.1f;
  measure("dropout 0.1", 2 * operand, [&] {
    dropout({{&dropout_in, 1}, {&dropout_out, 1}, {&dropout_rate, 1}, {7, cursor_data}}, stream);
  });
  // The optimizers' step values (OptimizerScalars: rate factor 1, step 1) in device memory.
  DeviceMemory scalars(sizeof(OptimizerScalars));
  const OptimizerScalars one{1.0f, 1};
  EMBER_CUDA_CHECK(cudaMemcpyAsync(scalars.data(), &one, sizeof(one), cudaMemcpyHostToDevice, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  const auto* step_values = static_cast<const OptimizerScalars*>(scalars.data());
  // w, gradient and each state buffer read; w and the state written. The state is the operand pair
  // (n floats apart), the gradient the third operand. A small rate keeps the weights finite.
  const auto update = [&](const char* name, const Optimizer& optimizer, int states) {
    measure(name, (3 + 2 * states) * operand, [&] {
      kernels::launch_optimizer_update(optimizer, out.floats(), third.floats(), first, n, n, step_values, stream);
    });
  };
  update("sgd update", SGD{.lr = 1e-6f, .momentum = 0.9f}, 1);
  update("adam update", Adam{.lr = 1e-6f}, 2);
  update("rmsprop update", RMSprop{.lr = 1e-6f}, 1);
  measure("gather rows", 2 * operand + static_cast<double>(rows) * sizeof(std::int32_t),
          [&] { kernels::launch_gather_rows(first, rows, cols, index_data, cursor_data, out.floats(), rows, stream); });
  // A plain reduction's rate beside the copy: CUB sums 2n floats.
  const double cub = gb_per_s(2 * operand, bench.median_ms([&] {
    kernels::launch_cub_sum(first, 2 * n, sum.floats(), cub_scratch.data(), cub_bytes, stream);
  }));
  emit({"cub reduce sum", 2 * operand, cub, "cub reduce sum", cub});
  // The losses read prediction and target (cross-entropy: the labels, one per row) and write the
  // gradient; their sums are small.
  // Each through its op's launch, as the loss's part runs it.
  const kernels::LayerOpLaunch mse = kernels::find_layer_op("mse_loss"),
                               cross_entropy = kernels::find_layer_op("cross_entropy_loss");
  const auto loss = [&](kernels::LayerOpLaunch launch, ConstView prediction, ConstView target, std::int64_t sums,
                        float setting) {
    const ConstView in[] = {prediction, target};
    const View outputs[] = {{column_sums.floats(), 1, sums}, {out.floats(), prediction.rows, prediction.cols}};
    OpArgs args{in, outputs, {&setting, static_cast<std::size_t>(launch == mse ? 0 : 1)}};
    args.scratch = scratch.floats();
    launch(args, stream);
  };
  measure("mse loss + gradient", 3 * operand, [&] {
    loss(mse, {first, rows, cols}, {second, rows, cols}, 3 * cols, 0.0f);
  });
  measure("cross-entropy + gradient", 2 * operand + static_cast<double>(rows) * sizeof(float), [&] {
    loss(cross_entropy, {first, rows, cols}, {labels.floats(), rows, 1}, 2, 0.0f);
  });
  // Ten classes, as a table's classifier has (a warp per row of 10 logits); the labels in `third`,
  // which the updates above are done with.
  constexpr std::int64_t kClasses = 10;
  const std::int64_t class_rows = n / kClasses;
  std::vector<float> class_labels(static_cast<std::size_t>(class_rows));
  for (std::size_t i = 0; i < class_labels.size(); ++i) class_labels[i] = static_cast<float>(i % kClasses);
  EMBER_CUDA_CHECK(cudaMemcpyAsync(third.data(), class_labels.data(), class_labels.size() * sizeof(float),
                                   cudaMemcpyHostToDevice, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  measure("cross-entropy, 10 classes", static_cast<double>(class_rows) * (2 * kClasses + 1) * sizeof(float), [&] {
    loss(cross_entropy, {first, class_rows, kClasses}, {third.floats(), class_rows, 1}, 2, 0.0f);
  });
  return table;
}

std::vector<bench::TuningRow> tuning_table(const KernelTableOptions& options,
                                           const std::function<void(const bench::TuningRow&)>& on_row) {
  Bench bench(options.runs);
  DeviceMemory scratch(kernels::kReductionScratchFloats * sizeof(float));
  std::vector<bench::TuningRow> rows;
  // A depth-4 MLP of width w (input width w, one output) on a batch: its six distinct products,
  // with the epilogues the step gives them.
  struct Product {
    const char* name;
    std::int64_t m, n, k;
    bool ta, tb;
    kernels::EpilogueKind kind;
  };
  for (const std::int64_t width : {64, 256, 1024})
    for (const std::int64_t batch : {1024, 8192}) {
      const Product products[] = {
          {"forward", batch, width, width, false, true, kernels::EpilogueKind::bias_relu},
          {"output forward", batch, 1, width, false, true, kernels::EpilogueKind::bias},
          {"input gradient", batch, width, width, false, false, kernels::EpilogueKind::relu_mask},
          {"output input gradient", batch, width, 1, false, false, kernels::EpilogueKind::relu_mask},
          {"weight gradient", width, width, batch, true, false, kernels::EpilogueKind::linear},
          {"output weight gradient", 1, width, batch, true, false, kernels::EpilogueKind::linear}};
      for (const Product& p : products) {
        const int m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
        const int lda = p.ta ? m : k, ldb = p.tb ? k : n;
        DeviceMemory a(p.m * p.k * sizeof(float)), b(p.k * p.n * sizeof(float)), c(p.m * p.n * sizeof(float));
        DeviceMemory bias(p.n * sizeof(float)), mask(p.m * p.n * sizeof(float)), sums(p.m * sizeof(float));
        bench.randomize(a.floats(), static_cast<std::size_t>(p.m * p.k));
        bench.randomize(b.floats(), static_cast<std::size_t>(p.k * p.n));
        bench.randomize(bias.floats(), static_cast<std::size_t>(p.n));
        bench.randomize(mask.floats(), static_cast<std::size_t>(p.m * p.n));
        kernels::MatmulEpilogue epilogue{.kind = p.kind};
        if (p.kind == kernels::EpilogueKind::bias || p.kind == kernels::EpilogueKind::bias_relu)
          epilogue.bias = bias.floats();
        if (p.kind == kernels::EpilogueKind::relu_mask) epilogue.mask = mask.floats();
        if (p.kind == kernels::EpilogueKind::linear) epilogue.row_sums = sums.floats();  // the bias gradient
        const kernels::MatmulProblem problem =
            kernels::matmul_problem(p.ta, p.tb, m, n, k, epilogue, kernels::MatmulPrecision::fp32, true);
        const kernels::MatmulPlan chosen = kernels::plan_matmul(problem);
        std::vector<kernels::MatmulPlan> plans = kernels::candidate_plans(problem);
        std::stable_partition(plans.begin(), plans.end(), [&](const kernels::MatmulPlan& x) { return x == chosen; });
        std::vector<float> expected(static_cast<std::size_t>(p.m * p.n)), got(expected.size());
        std::vector<float> expected_sums(static_cast<std::size_t>(p.m)), got_sums(expected_sums.size());
        const bool with_sums = epilogue.row_sums != nullptr;
        for (const kernels::MatmulPlan& plan : plans) {  // the chosen plan first: the others are compared with it
          bench::TuningRow row;
          row.product = fmt::format("width {} batch {} {}", width, batch, p.name);
          row.m = p.m;
          row.n = p.n;
          row.k = p.k;
          row.mode = mode_name(p.ta, p.tb);
          row.plan = kernels::plan_name(plan);
          row.chosen = plan == chosen;
          row.microseconds = 1e3 * bench.median_ms([&] {
            kernels::launch_matmul_planned(plan, p.ta, p.tb, m, n, k, a.floats(), lda, b.floats(), ldb, c.floats(), n,
                                           epilogue, bench.stream(), scratch.floats());
          });
          bench.download(c, row.chosen ? expected : got);
          if (with_sums) bench.download(sums, row.chosen ? expected_sums : got_sums);
          if (!row.chosen)
            row.error =
                std::max(relative_error(got, expected), with_sums ? relative_error(got_sums, expected_sums) : 0.0);
          on_row(row);
          rows.push_back(row);
        }
      }
    }
  return rows;
}

}  // namespace ember::cuda
