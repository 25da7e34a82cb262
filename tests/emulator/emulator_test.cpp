// The CPU emulator's own semantics, which the emulated GPU suite relies on: barriers order shared
// memory, shuffles exchange within a warp, faults and misuse are reported as a GPU would report
// them, stream work runs when waited for in the order that exposes a missing event, and a
// captured graph replays its work with the arguments of the capture.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "backend_conformance.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

using emulator::set_stream_order;
using emulator::StreamOrder;

/// Reverses 256 values through shared memory: right only if every thread stores before any loads.
__global__ void reverse_kernel(const float* in, float* out) {
  __shared__ float buffer[256];
  buffer[threadIdx.x] = in[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = buffer[255 - threadIdx.x];
}

/// Each warp's sum, by shuffles, into out[warp]; lane l also writes lane l + 1's value (or its own).
__global__ void warp_sum_kernel(const float* in, float* out, float* neighbours) {
  float value = in[threadIdx.x];
  neighbours[threadIdx.x] = __shfl_down_sync(0xffffffffu, value, 1);
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = value;
}

/// Threads below `split` wait at a barrier the others never reach while they wait at a shuffle.
__global__ void divergent_kernel(float* out, unsigned split) {
  if (threadIdx.x < split) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);
  }
}

/// A missing barrier: thread t reads what thread t - 1 stores in the same phase.
__global__ void racy_kernel(float* out, float base) {
  __shared__ float buffer[64];
  buffer[threadIdx.x] = base + static_cast<float>(100 * blockIdx.x + threadIdx.x);
  out[64 * blockIdx.x + threadIdx.x] = threadIdx.x == 0 ? 0.0f : buffer[threadIdx.x - 1];
}

__global__ void add_kernel(float* x, float amount) {
  x[threadIdx.x] += amount;
}

__global__ void scale_kernel(float* x, float factor) {
  x[threadIdx.x] *= factor;
}

__global__ void block_order_kernel(unsigned* counter, unsigned* steps) {
  steps[blockIdx.x] = atomicAdd(counter, 1u) % gridDim.x;
}

__global__ void indices_kernel(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  out[block * blockDim.x + threadIdx.x] = block * 1000 + threadIdx.x;
}

class Emulator : public ::testing::Test {
 protected:
  template <typename T>
  T* device(const std::vector<T>& host) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    allocations_.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  std::vector<T> host(const T* p, std::size_t count) {
    std::vector<T> out(count);
    EXPECT_EQ(cudaMemcpy(out.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  void TearDown() override {
    for (void* p : allocations_) cudaFree(p);
  }

 private:
  std::vector<void*> allocations_;
};

TEST_F(Emulator, BarriersOrderSharedMemory) {
  std::vector<float> in(256);
  std::iota(in.begin(), in.end(), 1.0f);
  const float* din = device(in);
  float* dout = device(std::vector<float>(256, 0.0f));
  launch(reverse_kernel, 1, 256, 0, nullptr, din, dout);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> out = host(dout, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], in[255 - i]) << i;
}

TEST_F(Emulator, ShufflesStayInTheirWarp) {
  std::vector<float> in(96);
  std::iota(in.begin(), in.end(), 0.0f);
  const float* din = device(in);
  float* sums = device(std::vector<float>(3, 0.0f));
  float* neighbours = device(std::vector<float>(96, 0.0f));
  launch(warp_sum_kernel, 1, 96, 0, nullptr, din, sums, neighbours);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> got = host(sums, 3), next = host(neighbours, 96);
  for (int w = 0; w < 3; ++w) EXPECT_EQ(got[w], 32.0f * 32 * w + 31 * 16) << "warp " << w;
  for (int t = 0; t < 96; ++t) EXPECT_EQ(next[t], t % 32 == 31 ? in[t] : in[t + 1]) << t;
}

TEST_F(Emulator, EveryBlockAndThreadRunsOnce) {
  const dim3 grid(3, 2, 2);
  unsigned* out = device(std::vector<unsigned>(12 * 64, 0xffffffffu));
  launch(indices_kernel, grid, 64, 0, nullptr, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<unsigned> got = host(out, 12 * 64);
  for (unsigned b = 0; b < 12; ++b)
    for (unsigned t = 0; t < 64; ++t) EXPECT_EQ(got[b * 64 + t], b * 1000 + t);
}

TEST_F(Emulator, AMissingBarrierShowsInOddBlocks) {
  // Even blocks run their threads first to last (thread t - 1 has stored when t reads), odd ones
  // last to first: there thread t reads before t - 1 stores, and sees a stale value (another
  // block's or launch's), whichever order the launch runs its blocks in.
  float* out = device(std::vector<float>(128, NAN));
  for (int launch_number = 0; launch_number < 2; ++launch_number) {
    const float base = 1000.0f * static_cast<float>(launch_number);
    launch(racy_kernel, 2, 64, 0, nullptr, out, base);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    const std::vector<float> got = host(out, 128);
    for (int t = 1; t < 64; ++t) {
      EXPECT_EQ(got[t], base + t - 1.0f);
      EXPECT_NE(got[64 + t], base + 100 + t - 1.0f) << "block 1 must read a stale value, launch " << launch_number;
    }
  }
}

TEST_F(Emulator, EveryOtherLaunchRunsItsBlocksLastToFirst) {
  // Block b records the launch-wide step at which it ran, through a counter in device memory.
  unsigned* counter = device(std::vector<unsigned>(1, 0));
  unsigned* steps = device(std::vector<unsigned>(8, 0));
  std::set<std::vector<unsigned>> orders;
  for (int launch_number = 0; launch_number < 2; ++launch_number) {
    launch(block_order_kernel, 8, 1, 0, nullptr, counter, steps);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    orders.insert(host(steps, 8));
  }
  EXPECT_EQ(orders, (std::set<std::vector<unsigned>>{{0, 1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4, 3, 2, 1, 0}}));
}

TEST_F(Emulator, DivergentBarrierIsALaunchFailure) {
  float* out = device(std::vector<float>(64, 0.0f));
  launch(divergent_kernel, 1, 64, 0, nullptr, out, 16u);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaDeviceReset(), cudaSuccess);  // the fault is sticky until then, as on a GPU
}

TEST_F(Emulator, HostPointerArgumentIsRefused) {
  std::vector<float> on_host(32, 0.0f);
  launch(add_kernel, 1, 32, 0, nullptr, on_host.data(), 1.0f);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevicePointer);
  EXPECT_EQ(on_host[0], 0.0f);
}

TEST_F(Emulator, BadLaunchConfigurationIsRefused) {
  float* x = device(std::vector<float>(32, 0.0f));
  launch(add_kernel, dim3(1, 65536), 32, 0, nullptr, x, 1.0f);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  launch(add_kernel, 1, 2048, 0, nullptr, x, 1.0f);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(host(x, 32)[0], 0.0f);
}

TEST_F(Emulator, GraphReplaysItsCapturedWorkWithTheCapturedArguments) {
  float* x = device(std::vector<float>(32, 1.0f));
  cudaStream_t stream = nullptr, side = nullptr;
  cudaEvent_t fork = nullptr, join = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&join, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  float amount = 2.0f;
  launch(add_kernel, 1, 32, 0, stream, x, amount);
  amount = 100.0f;  // a capture keeps the arguments it was given
  ASSERT_EQ(cudaEventRecord(fork, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
  launch(add_kernel, 1, 32, 0, side, x, 3.0f);
  ASSERT_EQ(cudaEventRecord(join, side), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(stream, join, 0), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(host(x, 32)[0], 1.0f) << "captured work must not run";
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  const StreamOrder previous = set_stream_order(StreamOrder::late);
  float expected = 1.0f;
  for (const StreamOrder order : {StreamOrder::late, StreamOrder::early, StreamOrder::interleaved}) {
    set_stream_order(order);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    expected += 2 * 5.0f;
    EXPECT_EQ(host(x, 32)[31], expected) << static_cast<int>(order);
  }
  set_stream_order(previous);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaEventDestroy(fork);
  cudaEventDestroy(join);
  cudaStreamDestroy(side);
  cudaStreamDestroy(stream);
}

TEST_F(Emulator, StreamWorkRunsWhenWaitedFor) {
  float* x = device(std::vector<float>(32, 1.0f));
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  launch(add_kernel, 1, 32, 0, stream, x, 2.0f);
  EXPECT_EQ(host(x, 32)[0], 1.0f) << "a copy on the legacy stream does not wait for a non-blocking stream";
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(host(x, 32)[0], 3.0f);
  cudaStreamDestroy(stream);
}

/// x = 1; on the main stream x *= 2, then a fork to the side stream, x += 3 there, a join, and
/// x *= 2 on the main stream: 10, unless an event is missing. Returns x after synchronizing the
/// main stream only.
float fork_and_join(float* x, bool fork, bool join) {
  const std::vector<float> one(32, 1.0f);
  cudaStream_t main_stream = nullptr, side = nullptr;
  cudaEvent_t forked = nullptr, joined = nullptr;
  cudaStreamCreateWithFlags(&main_stream, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
  cudaEventCreateWithFlags(&forked, cudaEventDisableTiming);
  cudaEventCreateWithFlags(&joined, cudaEventDisableTiming);
  cudaMemcpy(x, one.data(), one.size() * sizeof(float), cudaMemcpyHostToDevice);
  launch(scale_kernel, 1, 32, 0, main_stream, x, 2.0f);
  cudaEventRecord(forked, main_stream);
  if (fork) cudaStreamWaitEvent(side, forked, 0);
  launch(add_kernel, 1, 32, 0, side, x, 3.0f);
  cudaEventRecord(joined, side);
  if (join) cudaStreamWaitEvent(main_stream, joined, 0);
  launch(scale_kernel, 1, 32, 0, main_stream, x, 2.0f);
  float result = 0;
  cudaMemcpyAsync(&result, x, sizeof(float), cudaMemcpyDeviceToHost, main_stream);  // done on return
  cudaStreamDestroy(side);
  cudaStreamDestroy(main_stream);
  cudaEventDestroy(forked);
  cudaEventDestroy(joined);
  return result;
}

TEST_F(Emulator, StreamOrdersExposeMissingEvents) {
  float* x = device(std::vector<float>(32, 1.0f));
  const StreamOrder previous = set_stream_order(StreamOrder::late);
  for (const StreamOrder order : {StreamOrder::late, StreamOrder::early, StreamOrder::interleaved}) {
    set_stream_order(order);
    EXPECT_EQ(fork_and_join(x, true, true), 10.0f) << static_cast<int>(order);
  }
  // Without the join, the late order runs the side stream's work after the main stream's.
  set_stream_order(StreamOrder::late);
  EXPECT_EQ(fork_and_join(x, true, false), 4.0f);
  // Without the fork, the early order runs it before the main stream's first kernel.
  set_stream_order(StreamOrder::early);
  EXPECT_EQ(fork_and_join(x, false, true), 16.0f);
  set_stream_order(previous);
}

TEST_F(Emulator, CaptureRefusesUnjoinedForksAndForbiddenCalls) {
  float* x = device(std::vector<float>(32, 1.0f));
  cudaStream_t stream = nullptr, side = nullptr;
  cudaEvent_t fork = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), cudaSuccess);
  // A fork whose work the origin never waits on.
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(fork, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
  launch(add_kernel, 1, 32, 0, side, x, 3.0f);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureUnjoined);
  EXPECT_EQ(graph, nullptr);
  cudaGetLastError();
  // cudaMalloc and host copies inside a capture.
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  float one = 1.0f;
  EXPECT_EQ(cudaMemcpyAsync(x, &one, sizeof one, cudaMemcpyHostToDevice, stream), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();
  EXPECT_EQ(host(x, 32)[0], 1.0f);
  cudaEventDestroy(fork);
  cudaStreamDestroy(side);
  cudaStreamDestroy(stream);
}

TEST_F(Emulator, HostAccessToDeviceMemoryIsReported) {
#if defined(__SANITIZE_ADDRESS__)
  float* x = device(std::vector<float>(4, 1.0f));
  EXPECT_DEATH(std::printf("%f\n", static_cast<double>(static_cast<volatile float*>(x)[0])), "use-after-poison");
#else
  GTEST_SKIP() << "device memory is poisoned for the host in AddressSanitizer builds only (.ci/run's sanitizer stage)";
#endif
}

TEST_F(Emulator, CopiesOutsideTheirAllocationAreRefused) {
  float* x = device(std::vector<float>(8, 1.0f));
  std::vector<float> out(16);
  EXPECT_EQ(cudaMemcpy(out.data(), x, 16 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(out.data(), out.data() + 8, 8 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  cudaGetLastError();
}

// Every plan the matmul can run, the ones plan_matmul does not pick included (the k splits, and
// the 128 x 256 wgmma variant that the benchmarks time), against the CPU reference: the GPU suite
// reaches each only through the shapes that choose it.
TEST_F(Emulator, EveryMatmulPlanMatchesTheProduct) {
  using namespace ember::testing;
  struct Shape {
    int m, n, k;
  };
  CpuBackend reference;
  std::set<std::string> ran;
  std::uint64_t seed = 3000;
  // Strides multiple of 4 (16-byte loads, which the 128 x 256 variant needs), then odd ones.
  for (const auto& [m, n, k] : {Shape{257, 516, 132}, Shape{130, 131, 67}})
    for (int mode = 0; mode < 4; ++mode) {
      const bool ta = mode & 1, tb = mode & 2;
      const Matrix a = transposed_if(ta, random_matrix(m, k, ++seed));
      const Matrix b = transposed_if(tb, random_matrix(k, n, ++seed));
      Matrix expected = poisoned(m, n);
      reference.matmul(ta ? Transpose::yes : Transpose::no, tb ? Transpose::yes : Transpose::no, 1.0f, a.view(),
                       b.view(), 0.0f, expected.view());
      const auto on_device = [&](const Matrix& x) { return device(std::vector<float>(x.data(), x.data() + x.size())); };
      const float* da = on_device(a);
      const float* db = on_device(b);
      float* dc = on_device(expected);
      float* scratch = device(std::vector<float>(kReductionScratchFloats, NAN));
      const MatmulEpilogue linear{};
      std::vector<std::pair<MatmulPlan, double>> plans;  // each with its tolerance
      for (const MatmulPlan& plan :
           candidate_plans(matmul_problem(ta, tb, m, n, k, linear, MatmulPrecision::fp32, true)))
        plans.emplace_back(plan, kFloat32Tolerance);
      for (const MatmulKernel tf32 :
           {MatmulKernel::tf32_mma_sync, MatmulKernel::tf32_wgmma, MatmulKernel::tf32_wgmma_wide})
        plans.emplace_back(MatmulPlan{.kernel = tf32, .k_split = k}, kTf32Tolerance);
      for (const auto& [plan, tolerance] : plans) {
        const Matrix nan = poisoned(m, n);
        ASSERT_EQ(cudaMemcpy(dc, nan.data(), nan.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
        const char* kernel = launch_matmul_planned(plan, ta, tb, m, n, k, da, static_cast<int>(a.cols()), db,
                                                   static_cast<int>(b.cols()), dc, n, linear, nullptr, scratch);
        ASSERT_EQ(cudaGetLastError(), cudaSuccess) << kernel;
        ran.insert(kernel);
        Matrix got(m, n);
        ASSERT_EQ(cudaMemcpy(got.data(), dc, got.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_LT(relative_error(got, expected), tolerance) << kernel << " (" << plan_name(plan) << ") m " << m << " n "
                                                            << n << " k " << k << " ta " << ta << " tb " << tb;
      }
    }
  EXPECT_EQ(ran, (std::set<std::string>{"matmul_32x32_kernel", "matmul_64x64_kernel", "split_k_sum_kernel",
                                        "matmul_128x128_kernel", "matmul_tf32_kernel", "matmul_wgmma_kernel",
                                        "matmul_wgmma_wide_kernel"}));
}

TEST(EmulatorTf32, RoundsToNearestTiesAwayFromZero) {
  const float one = 1.0f, ulp = std::ldexp(1.0f, -10);           // TF32 keeps 10 mantissa bits
  EXPECT_EQ(emulator::round_to_tf32(one + ulp / 2), one + ulp);  // a tie: away from zero
  EXPECT_EQ(emulator::round_to_tf32(-(one + ulp / 2)), -(one + ulp));
  EXPECT_EQ(emulator::round_to_tf32(one + ulp / 4), one);
  EXPECT_EQ(emulator::round_to_tf32(one + ulp * 3 / 4), one + ulp);
  EXPECT_TRUE(std::isinf(emulator::round_to_tf32(INFINITY)));
  EXPECT_TRUE(std::isnan(emulator::round_to_tf32(NAN)));
}

}  // namespace
}  // namespace ember::kernels
