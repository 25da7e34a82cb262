// `ember bench`'s GPU measurements on the emulated GPU, at sizes a CPU can afford: the memory table
// and the training step (CUDA graphs and plain launches). This checks that they run and report
// sane figures before GPU time is spent on them. The figures themselves mean nothing here. The
// GEMM and tuning tables have fixed sizes (1024^3 and up), which would take hours.
#include "ember/bench.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"

namespace ember {
namespace {

TEST(EmulatedBench, MemoryTableMeasuresEveryKernel) {
  std::vector<std::string> seen;
  const std::vector<bench::BandwidthRow> rows =
      bench::bandwidth_table({.runs = 20, .memory_elements = std::int64_t{1} << 14},
                             [&](const bench::BandwidthRow& row) { seen.push_back(row.kernel); });
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(seen.size(), rows.size());
  for (const bench::BandwidthRow& row : rows) {
    EXPECT_GT(row.bytes, 0) << row.kernel;
    EXPECT_TRUE(std::isfinite(row.gb_per_s) && row.gb_per_s > 0) << row.kernel;
    EXPECT_TRUE(std::isfinite(row.yardstick_gb_per_s) && row.yardstick_gb_per_s > 0) << row.kernel;
    EXPECT_FALSE(row.yardstick.empty()) << row.kernel;
  }
}

TEST(EmulatedBench, TrainingStepTimesWithAndWithoutGraphs) {
  for (const bool graph : {true, false}) {
    const auto backend = make_backend(Device::cuda, {.cuda_graph = graph});
    const bench::StepTiming timing = bench::time_training_step(*backend, {.depth = 4, .width = 17, .batch = 33}, 20, 3);
    EXPECT_GT(timing.median_step_ms, 0) << "graph " << graph;
    EXPECT_GT(timing.host_us_per_step, 0) << "graph " << graph;
    EXPECT_EQ(timing.parameters, 3 * (17 * 17 + 17) + 17 + 1);
    EXPECT_EQ(timing.runs, 20);
  }
}

TEST(EmulatedBench, CommTimesTheStepAndTheSumWhereNcclMakesThem) {
  // One rank through NCCL (the emulator's): the comm table's two measurements on the GPU path.
  const auto backend = make_backend(Device::cuda);
  const std::shared_ptr<Communicator> one = distributed::single_process();
  const bench::StepTiming timing =
      bench::time_training_step(*backend, {.depth = 4, .width = 17, .batch = 33}, 20, 3, one.get(), GradientSum::nccl);
  EXPECT_GT(timing.median_step_ms, 0);
  EXPECT_NE(timing.data_parallel.find("gradients summed by NCCL"), std::string::npos) << timing.data_parallel;
  const bench::SumTiming sum = bench::time_gradient_sum(*one, timing.parameters, 20, backend.get(), GradientSum::nccl);
  EXPECT_TRUE(std::isfinite(sum.median_ms) && sum.median_ms > 0) << sum.median_ms;
  EXPECT_EQ(sum.megabytes, static_cast<double>(timing.parameters) * sizeof(float) / 1e6) << "float32, on the GPU";
}

}  // namespace
}  // namespace ember
