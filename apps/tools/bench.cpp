#include "ember/bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <utility>

#include "cuda/cuda_api.hpp"
#include "data_parallel.hpp"
#include "ember/error.hpp"
#include "ember/model.hpp"
#include "ember/random.hpp"
#include "plan.hpp"

namespace ember::bench {

std::string StepCase::name() const {
  return fmt::format("depth {} width {} batch {}{}", depth, width, batch,
                     classes > 0 ? fmt::format(" softmax {} adam", classes) : std::string());
}

namespace {

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
  return values[values.size() / 2];
}

}  // namespace

StepTiming time_training_step(Backend& backend, const StepCase& step, std::int64_t runs, std::int64_t steps_per_run,
                              Communicator* communicator, GradientSum gradient_sum,
                              const std::function<void(std::int64_t run)>& before_run) {
  std::vector<Layer> layers;
  for (std::int64_t l = 0; l + 1 < step.depth; ++l) layers.emplace_back(Dense(step.width, Activation::relu));
  layers.emplace_back(Dense(step.classes > 0 ? step.classes : 1));
  Sequential model(layers, 1);
  model.build(step.width);

  // Random inputs and targets (never zeros), one batch's worth per step of a run.
  const std::int64_t rows = step.batch * steps_per_run;
  Random random(7);
  Matrix x(rows, step.width), y(rows, 1);
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(2 * random.uniform() - 1);
  for (std::int64_t i = 0; i < y.size(); ++i)
    y.data()[i] = step.classes > 0 ? static_cast<float>(random.below(static_cast<std::uint64_t>(step.classes)))
                                   : static_cast<float>(2 * random.uniform() - 1);

  // A small rate keeps the weights finite however many steps run.
  const Optimizer optimizer =
      step.classes > 0 ? Optimizer{Adam{.lr = 1e-4f}} : Optimizer{SGD{.lr = 1e-4f, .momentum = 0.9f}};
  const Loss loss = step.classes > 0 ? Loss{CrossEntropy{}} : Loss{MeanSquaredError{}};
  DataParallel parallel(communicator, false, false, gradient_sum);
  parallel.set_rows(step.batch, rows);
  Plan plan(backend, layers, step.width, parallel.plan_batch_size(), optimizer, loss);
  plan.upload_parameters(model.parameters(),
                         std::vector<float>(model.parameters().size() * optimizer_state_names(optimizer).size()));
  const std::string data_parallel = parallel.connect(backend);
  const BackendMatrix device_x(backend, x), device_y(backend, y);
  std::vector<std::int32_t> order(static_cast<std::size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  order = parallel.local_order(order);
  Buffer indices(backend, order.size() * sizeof(std::int32_t));
  backend.copy_to_device(indices.data(), order.data(), order.size() * sizeof(std::int32_t));
  plan.bind_training_set(device_x.view, device_y.view, static_cast<const std::int32_t*>(indices.data()));

  using Clock = std::chrono::steady_clock;
  std::vector<double> step_ms, host_us;
  for (std::int64_t run = -2; run < runs; ++run) {  // two warm-up runs: graph capture, caches
    if (before_run) before_run(run);
    plan.reset_epoch();
    backend.synchronize();
    const auto start = Clock::now();
    for (std::int64_t s = 0; s < steps_per_run; ++s) {
      if (parallel.active())
        parallel.step(plan, s, false);
      else
        plan.train_step(step.batch);
    }
    const auto enqueued = Clock::now();
    backend.synchronize();
    const auto done = Clock::now();
    if (run < 0) continue;
    step_ms.push_back(std::chrono::duration<double, std::milli>(done - start).count() /
                      static_cast<double>(steps_per_run));
    host_us.push_back(std::chrono::duration<double, std::micro>(enqueued - start).count() /
                      static_cast<double>(steps_per_run));
  }
  const double median_ms = median(step_ms);
  return {median_ms, median(host_us), plan.parameter_count(), runs, data_parallel, std::move(step_ms)};
}

double time_predict(Device device, const StepCase& step, std::int64_t rows, std::int64_t runs) {
  std::vector<Layer> layers;
  for (std::int64_t l = 0; l + 1 < step.depth; ++l) layers.emplace_back(Dense(step.width, Activation::relu));
  layers.emplace_back(Dense(step.classes > 0 ? step.classes : 1));
  Sequential model(layers, 1);
  model.compile({.optimizer = SGD{}, .loss = MeanSquaredError{}, .device = device});
  model.build(step.width);
  Random random(11);
  Matrix x(rows, step.width);
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(2 * random.uniform() - 1);
  std::vector<double> ms;
  for (std::int64_t run = -1; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    const Matrix y = model.predict(std::as_const(x).view());
    const auto done = std::chrono::steady_clock::now();
    if (!std::isfinite(y.data()[0])) throw Error("time_predict: the prediction is not finite");
    if (run >= 0) ms.push_back(std::chrono::duration<double, std::milli>(done - start).count());
  }
  return median(ms);
}

SumTiming time_gradient_sum(Communicator& communicator, std::int64_t parameters, std::int64_t runs, Backend* backend,
                            GradientSum gradient_sum) {
  // Two warm-up runs (connections, pages), then the median of runs; prepare runs untimed before each.
  const auto median_ms = [runs](const std::function<void()>& prepare, const std::function<void()>& sum) {
    std::vector<double> ms;
    for (std::int64_t run = -2; run < runs; ++run) {
      prepare();
      const auto start = std::chrono::steady_clock::now();
      sum();
      const auto done = std::chrono::steady_clock::now();
      if (run >= 0) ms.push_back(std::chrono::duration<double, std::milli>(done - start).count());
    }
    return median(ms);
  };
  SumTiming timing;
  DataParallel parallel(&communicator, false, false, gradient_sum);
  if (backend != nullptr) parallel.connect(*backend);
  if (DeviceCollective* collective = parallel.collective()) {
    // The scaled sum of the float32 gradients in backend memory, as the step runs it (one bucket).
    Buffer buffer(*backend, static_cast<std::size_t>(parameters) * sizeof(float)), factor(*backend, sizeof(float));
    auto* values = static_cast<float*>(buffer.data());
    backend->fill({static_cast<float*>(factor.data()), 1, 1}, 1.0f);
    backend->fill({values, 1, parameters}, 1.0f);
    timing.median_ms =
        median_ms([&] { backend->synchronize(); },
                  [&] {
                    collective->start_scaled_sum(values, parameters, static_cast<const float*>(factor.data()));
                    collective->finish();
                    backend->synchronize();
                  });
    timing.megabytes = static_cast<double>(parameters) * sizeof(float) / 1e6;
  } else {
    // The float64 gradients and what the host step carries beside them.
    std::vector<double> values(static_cast<std::size_t>(parameters + DataParallel::kHostStepExtras));
    timing.median_ms = median_ms([&] { std::fill(values.begin(), values.end(), 1.0); },
                                 [&] { communicator.all_reduce(values, Reduction::sum); });
    timing.megabytes = static_cast<double>(values.size()) * sizeof(double) / 1e6;
  }
  // The slowest rank's median: the step waits for it.
  communicator.all_reduce({&timing.median_ms, 1}, Reduction::max);
  return timing;
}

namespace {

/// One of the plugin's kernel tables, or InputError saying why there is no GPU to run it on.
template <typename Row, typename Table>
std::vector<Row> gpu_table(const char* name, Table cuda::PluginApi::*table, const KernelTableOptions& options,
                           const std::function<void(const Row&)>& on_row) {
  const std::string reason = cuda_unavailable_reason();
  if (!reason.empty()) throw InputError(fmt::format("the {} table needs a GPU: {}", name, reason));
  return (cuda::find_plugin().api->*table)(options, on_row);
}

}  // namespace

std::vector<GemmRow> gemm_table(const KernelTableOptions& options, const std::function<void(const GemmRow&)>& on_row) {
  return gpu_table<GemmRow>("GEMM", &cuda::PluginApi::gemm_table, options, on_row);
}

std::vector<BandwidthRow> bandwidth_table(const KernelTableOptions& options,
                                          const std::function<void(const BandwidthRow&)>& on_row) {
  return gpu_table<BandwidthRow>("memory-bound", &cuda::PluginApi::bandwidth_table, options, on_row);
}

std::vector<TuningRow> tuning_table(const KernelTableOptions& options,
                                    const std::function<void(const TuningRow&)>& on_row) {
  return gpu_table<TuningRow>("tuning", &cuda::PluginApi::tuning_table, options, on_row);
}

}  // namespace ember::bench
