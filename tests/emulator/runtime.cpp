// The CPU emulator's runtime (tests/emulator/README.md): device memory, streams, events, graph
// capture and replay, and kernels run block by block, each thread of a block a fiber on this OS
// thread, switching at __syncthreads and at warp exchanges.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

// ---- the emulated device --------------------------------------------------------------------------
namespace ember::emulator {
namespace {

// The GPU the emulator stands for: an H200's SM count and compute capability, so that the kernels'
// plans are the ones an H200 runs.
constexpr int kMultiprocessors = 132, kMajor = 9, kMinor = 0;
constexpr std::size_t kMemoryBytes = std::size_t{8} << 30;
constexpr int kWarp = 32;
constexpr int kExchangeWords = 6;  // a lane's words in a warp exchange: mma.sync's 4 of A and 2 of B
constexpr std::size_t kFiberStackBytes = 256 * 1024;

cudaError_t last_error = cudaSuccess;
cudaError_t sticky_error = cudaSuccess;  // a failed kernel: every later call reports it, as on a GPU

cudaError_t fail(cudaError_t error, const std::string& what) {
  std::fprintf(stderr, "CUDA emulator: %s: %s\n", cudaGetErrorName(error), what.c_str());
  last_error = error;
  return error;
}

// ---- memory ----
std::map<const char*, std::size_t> allocations;  // start -> bytes
std::size_t allocated_bytes = 0;

/// Whether [pointer, pointer + bytes) lies in one allocation (a pointer one past the end only for 0 bytes).
bool is_device_range(const void* pointer, std::size_t bytes) {
  const char* p = static_cast<const char*>(pointer);
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin()) return false;
  --it;
  return static_cast<std::size_t>(p - it->first) + bytes <= it->second;
}
bool is_device_pointer(const void* pointer) { return is_device_range(pointer, 0); }

// ---- work: run now, or recorded into the graph of a capturing stream ----
using Work = std::function<void()>;

struct Capture {
  std::vector<Work> work;
  CUstream_st* origin = nullptr;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  bool invalidated = false;
};

}  // namespace
}  // namespace ember::emulator

struct CUstream_st {
  unsigned flags = 0;
  std::shared_ptr<ember::emulator::Capture> capture;  // set while the stream takes part in a capture
  std::size_t work_count = 0;  // work captured on this stream
  bool joined = true;          // a forked stream: whether the capture has waited on its last work
};
struct CUevent_st {
  unsigned flags = 0;
  std::chrono::steady_clock::time_point time{};
  bool recorded = false;
  std::shared_ptr<ember::emulator::Capture> capture;  // recorded in this capture
  CUstream_st* stream = nullptr;                      // on this stream
  std::size_t work_count = 0;                         // after this much of the stream's captured work
};
struct CUgraph_st {
  std::vector<ember::emulator::Work> work;
};
struct CUgraphExec_st {
  std::vector<ember::emulator::Work> work;
};
struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
};

namespace ember::emulator {
namespace {

CUstream_st legacy_stream;  // stream 0
std::set<CUstream_st*> streams{&legacy_stream};
std::set<CUevent_st*> events;
int strict_captures = 0;  // captures in global or thread-local mode (one host thread: both forbid the same calls)

CUstream_st* resolve(cudaStream_t stream) { return stream == nullptr ? &legacy_stream : stream; }

/// A new stream or event with `flags`, registered so that later calls can check the handle.
template <typename Handle>
cudaError_t create_handle(Handle** handle, std::set<Handle*>& registry, unsigned flags) {
  *handle = new Handle{};
  (*handle)->flags = flags;
  registry.insert(*handle);
  return cudaSuccess;
}
template <typename Handle>
cudaError_t destroy_handle(Handle* handle, std::set<Handle*>& registry, const char* call) {
  if (handle == nullptr || registry.erase(handle) == 0) return fail(cudaErrorInvalidResourceHandle, call);
  delete handle;
  return cudaSuccess;
}

/// A call the CUDA runtime forbids while this thread captures (cudaMalloc, cudaFree, synchronous
/// copies, synchronization): it fails and invalidates the captures, as on a GPU.
bool capture_forbids(const char* call) {
  if (strict_captures == 0) return false;
  for (CUstream_st* s : streams)
    if (s->capture) s->capture->invalidated = true;
  fail(cudaErrorStreamCaptureUnsupported, std::string(call) + " while a stream is being captured");
  return true;
}

cudaError_t submit(cudaStream_t stream, Work work) {
  if (sticky_error != cudaSuccess) return sticky_error;
  CUstream_st* s = resolve(stream);
  if (streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "unknown stream");
  if (s->capture) {
    if (s->capture->invalidated) return fail(cudaErrorStreamCaptureInvalidated, "capture already invalidated");
    s->capture->work.push_back(std::move(work));
    ++s->work_count;
    s->joined = false;
    return cudaSuccess;
  }
  work();
  return sticky_error;
}

// ---- fibers: an emulated thread's stack and saved registers ----
#if defined(__x86_64__)
// A switch that saves the System V callee-saved registers on the old stack and pops them from the
// new one: no system call, unlike swapcontext (which saves the signal mask), and so about 50x
// faster; kernels switch at every barrier and shuffle. Under AddressSanitizer each switch is
// announced to it (its fiber interface), so that it tracks which stack is live.
extern "C" void ember_emulator_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl ember_emulator_switch
  .type ember_emulator_switch, @function
ember_emulator_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ember_emulator_switch, .-ember_emulator_switch
)");

struct Context {
  void* sp = nullptr;
  const void* stack = nullptr;  // its stack's lowest address and size (for AddressSanitizer)
  std::size_t stack_bytes = 0;
};
/// Makes `context` start entry() on [stack, stack + bytes) at its first switch.
void make_context(Context& context, char* stack, std::size_t bytes, void (*entry)()) {
  context.stack = stack;
  context.stack_bytes = bytes;
  // entry's address is where the first switch's `ret` goes: 16-byte aligned, so that entry sees the
  // stack as a call leaves it; below it, the six registers that switch pops.
  auto top = reinterpret_cast<std::uintptr_t>(stack + bytes) & ~std::uintptr_t{15};
  void** slot = reinterpret_cast<void**>(top - 16);
  *slot = reinterpret_cast<void*>(entry);
  for (int r = 1; r <= 6; ++r) slot[-r] = nullptr;
  context.sp = slot - 6;
}
/// Switches from `from` (whose stack is abandoned when it `exits`) to `to`.
void switch_context(Context& from, Context& to, bool exits = false) {
#if defined(__SANITIZE_ADDRESS__)
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(exits ? nullptr : &fake_stack, to.stack, to.stack_bytes);
  ember_emulator_switch(&from.sp, to.sp);
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
  (void)exits;
  ember_emulator_switch(&from.sp, to.sp);
#endif
}
/// The first thing a fiber does: completes the switch into it and learns the scheduler's stack.
void enter_fiber(Context& scheduler) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, &scheduler.stack, &scheduler.stack_bytes);
#else
  (void)scheduler;
#endif
}
#else
struct Context {
  ucontext_t context{};
};
void make_context(Context& context, char* stack, std::size_t bytes, void (*entry)()) {
  getcontext(&context.context);
  context.context.uc_stack.ss_sp = stack;
  context.context.uc_stack.ss_size = bytes;
  context.context.uc_link = nullptr;
  makecontext(&context.context, entry, 0);
}
void switch_context(Context& from, Context& to, bool = false) { swapcontext(&from.context, &to.context); }
void enter_fiber(Context&) {}
#endif

// ---- kernels: one block at a time, its threads as fibers ----
enum class FiberState { ready, at_block_barrier, at_warp_exchange, exited };

struct Fiber {
  Context context;
  FiberState state = FiberState::ready;
  ThreadContext indices{};
  std::unique_ptr<char[]> stack;
};

struct BlockRun {
  std::vector<Fiber> fibers;
  int threads = 0;
  int current = -1;
  Context scheduler;
  const std::function<void()>* body = nullptr;
  std::vector<std::array<std::uint32_t, kWarp * kExchangeWords>> exchange;  // per warp
  std::string error;                                           // a kernel fault, ending the launch
  // The shared window: 1024-byte aligned, with the dynamic shared memory 16 bytes into it (as if
  // behind a little static shared memory), so that kernels aligning it themselves are tested.
  std::vector<unsigned char> shared;
  unsigned char* window = nullptr;
  std::size_t dynamic_bytes = 0;
};
constexpr std::size_t kDynamicOffset = 16;
std::map<const void*, std::size_t> dynamic_shared_limits;  // cudaFuncAttributeMaxDynamicSharedMemorySize

BlockRun run;

void fiber_main() {
  enter_fiber(run.scheduler);
  (*run.body)();
  run.fibers[run.current].state = FiberState::exited;
  switch_context(run.fibers[run.current].context, run.scheduler, true);
}

/// Back to the scheduler in `state`, until it resumes this fiber.
void yield(FiberState state) {
  Fiber& fiber = run.fibers[run.current];
  fiber.state = state;
  switch_context(fiber.context, run.scheduler);
}

/// Releases whatever barrier can be released; false when none can (every live fiber waits).
bool release_waiting() {
  bool released = false;
  for (int w = 0; w * kWarp < run.threads; ++w) {  // warps whose live lanes all wait at an exchange
    const int first = w * kWarp, last = std::min(run.threads, first + kWarp);
    bool all = true, any = false;
    for (int t = first; t < last; ++t) {
      const FiberState state = run.fibers[t].state;
      if (state == FiberState::exited) continue;
      any = true;
      all = all && state == FiberState::at_warp_exchange;
    }
    if (any && all) {
      for (int t = first; t < last; ++t)
        if (run.fibers[t].state == FiberState::at_warp_exchange) run.fibers[t].state = FiberState::ready;
      released = true;
    }
  }
  if (released) return true;
  bool all = true, any = false;
  for (int t = 0; t < run.threads; ++t) {
    const FiberState state = run.fibers[t].state;
    if (state == FiberState::exited) continue;
    any = true;
    all = all && state == FiberState::at_block_barrier;
  }
  if (!any || !all) return false;
  for (int t = 0; t < run.threads; ++t)
    if (run.fibers[t].state == FiberState::at_block_barrier) run.fibers[t].state = FiberState::ready;
  return true;
}

/// Runs one block to its end; false (with run.error) on a fault.
bool run_block(const std::function<void()>& body, dim3 grid, dim3 block, uint3 block_idx) {
  run.body = &body;
  run.threads = static_cast<int>(block.x * block.y * block.z);
  std::fill(run.shared.begin(), run.shared.end(), 0xff);  // uninitialized: NaN
  if (run.fibers.size() < static_cast<std::size_t>(run.threads)) run.fibers.resize(run.threads);
  run.exchange.resize((run.threads + kWarp - 1) / kWarp);
  for (int t = 0; t < run.threads; ++t) {
    Fiber& fiber = run.fibers[t];
    if (!fiber.stack) fiber.stack = std::make_unique<char[]>(kFiberStackBytes);
    const unsigned linear = static_cast<unsigned>(t);
    fiber.indices = {.thread_idx = {linear % block.x, linear / block.x % block.y, linear / (block.x * block.y)},
                     .block_idx = block_idx,
                     .block_dim = block,
                     .grid_dim = grid};
    fiber.state = FiberState::ready;
    make_context(fiber.context, fiber.stack.get(), kFiberStackBytes, fiber_main);
  }
  for (;;) {
    // Odd blocks run their threads last to first: a read that should wait for another thread's
    // write in the same phase (a missing barrier) sees stale data in one order or the other.
    const bool reverse = (block_idx.x + block_idx.y + block_idx.z) % 2 == 1;
    for (int i = 0; i < run.threads; ++i) {
      const int t = reverse ? run.threads - 1 - i : i;
      if (run.fibers[t].state != FiberState::ready) continue;
      run.current = t;
      switch_context(run.scheduler, run.fibers[t].context);
      if (!run.error.empty()) return false;
    }
    const bool done = std::all_of(run.fibers.begin(), run.fibers.begin() + run.threads,
                                  [](const Fiber& f) { return f.state == FiberState::exited; });
    if (done) return true;
    if (!release_waiting()) {
      run.error =
          "deadlock: the block's threads wait at different barriers (a __syncthreads or a warp shuffle that not "
          "every thread reaches)";
      return false;
    }
  }
}

void run_grid(const std::function<void()>& body, dim3 grid, dim3 block, std::size_t shared_bytes) {
  run.shared.assign(shared_bytes + kDynamicOffset + 1024, 0xff);
  const auto base = reinterpret_cast<std::uintptr_t>(run.shared.data());
  run.window = run.shared.data() + ((1024 - base % 1024) % 1024);
  run.dynamic_bytes = shared_bytes;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x)
        if (!run_block(body, grid, block, {x, y, z})) {
          const std::string what = "kernel block (" + std::to_string(x) + ", " + std::to_string(y) + ", " +
                                   std::to_string(z) + "): " + run.error;
          run.error.clear();
          run.current = -1;
          sticky_error = fail(cudaErrorLaunchFailure, what);
          return;
        }
  run.current = -1;
}

Fiber& current_fiber() {
  if (run.current < 0) {
    std::fprintf(stderr, "CUDA emulator: a device built-in used outside a kernel\n");
    std::abort();
  }
  return run.fibers[run.current];
}

/// Ends the running fiber's launch with a fault (the scheduler abandons the block).
[[noreturn]] void fault(const std::string& what) {
  run.error = what;
  Fiber& fiber = current_fiber();
  fiber.state = FiberState::exited;
  switch_context(fiber.context, run.scheduler, true);
  std::abort();  // never resumed
}

/// A wgmma operand in shared memory, from its matrix descriptor (PTX ISA, wgmma): start address,
/// leading and stride byte offsets, each in 16-byte units in 14 bits, and the swizzle mode in bits
/// 62-63 (1: 128 bytes). K-major with the 128-byte swizzle, row r's k values run along 128 bytes,
/// rows of an 8-row group 128 bytes apart, groups SBO apart; the leading byte offset is not used.
/// The swizzle XORs address bits 4-6 with bits 7-9.
struct SharedOperand {
  std::uint64_t start, stride;

  explicit SharedOperand(std::uint64_t descriptor)
      : start((descriptor & 0x3fff) << 4), stride(((descriptor >> 32) & 0x3fff) << 4) {
    if ((descriptor >> 62) != 1) fault("a wgmma descriptor whose swizzle is not 128 bytes (not emulated)");
    if (((descriptor >> 49) & 7) != 0) fault("a wgmma descriptor with a base offset (not emulated)");
  }

  /// Element (row, k) of the operand's 8 k, as the tensor cores read it: the top 19 bits (TF32).
  double at(int row, int k) const {
    const std::uint64_t linear = start + (row / 8) * stride + (row % 8) * 128 + k * 4;
    const std::uint64_t address = linear ^ (((linear >> 7) & 7) << 4);
    if (address < kDynamicOffset || address + 4 > kDynamicOffset + run.dynamic_bytes)
      fault("a wgmma operand read outside the dynamic shared memory");
    std::uint32_t bits;
    std::memcpy(&bits, run.window + address, 4);
    return std::bit_cast<float>(bits & 0xffffe000u);
  }
};

}  // namespace

const ThreadContext& thread_context() { return current_fiber().indices; }

int lane_id() { return run.current % kWarp; }

void sync_threads() {
  current_fiber();
  yield(FiberState::at_block_barrier);
}

std::uint32_t warp_exchange(unsigned mask, std::uint32_t word, int source_lane) {
  const int lane = lane_id(), warp = run.current / kWarp;
  const int lanes = std::min(kWarp, run.threads - warp * kWarp);
  const unsigned full = lanes == kWarp ? 0xffffffffu : (1u << lanes) - 1;
  if (mask != full) fault("a warp shuffle whose mask is not the whole warp (the emulator has whole warps only)");
  auto& slots = run.exchange[warp];
  slots[lane] = word;
  yield(FiberState::at_warp_exchange);
  const std::uint32_t result = source_lane >= 0 && source_lane < lanes ? slots[source_lane] : word;
  yield(FiberState::at_warp_exchange);  // every lane has read before the slots are reused
  return result;
}

void mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
  const int lane = lane_id(), warp = run.current / kWarp;
  if (run.threads - warp * kWarp < kWarp) fault("mma.sync in a warp that is not whole");
  auto& slots = run.exchange[warp];
  for (int r = 0; r < 4; ++r) slots[lane * kExchangeWords + r] = a[r];
  for (int r = 0; r < 2; ++r) slots[lane * kExchangeWords + 4 + r] = b[r];
  yield(FiberState::at_warp_exchange);
  // PTX ISA, mma.m16n8k8 with .tf32: groupID g = lane / 4, threadID_in_group t = lane % 4.
  // A (16 x 8, row): a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4).
  // B (8 x 8, col): b0 (t, g), b1 (t + 4, g).
  // C, D (16 x 8): c0 (g, 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1).
  // The tensor cores read the top 19 bits of each operand (TF32).
  const auto tf32 = [](std::uint32_t bits) { return std::bit_cast<float>(bits & 0xffffe000u); };
  const auto a_at = [&](int row, int col) {
    const int owner = (row % 8) * 4 + col % 4, reg = row / 8 + 2 * (col / 4);
    return tf32(slots[owner * kExchangeWords + reg]);
  };
  const auto b_at = [&](int row, int col) {
    const int owner = col * 4 + row % 4, reg = row / 4;
    return tf32(slots[owner * kExchangeWords + 4 + reg]);
  };
  const int g = lane / 4, t = lane % 4;
  float result[4];
  for (int q = 0; q < 4; ++q) {
    const int row = g + (q / 2) * 8, col = 2 * t + q % 2;
    double sum = d[q];
    for (int p = 0; p < 8; ++p) sum += static_cast<double>(a_at(row, p)) * b_at(p, col);
    result[q] = static_cast<float>(sum);
  }
  yield(FiberState::at_warp_exchange);  // every lane has read the fragments
  for (int q = 0; q < 4; ++q) d[q] = result[q];
}

unsigned char* dynamic_shared_memory() {
  current_fiber();
  return run.window + kDynamicOffset;
}

std::uint64_t shared_address(const void* pointer) {
  const auto* p = static_cast<const unsigned char*>(pointer);
  if (p < run.window + kDynamicOffset || p > run.window + kDynamicOffset + run.dynamic_bytes)
    fault("__cvta_generic_to_shared of a pointer outside the dynamic shared memory");
  return static_cast<std::uint64_t>(p - run.window);
}

void wgmma_m64nNk8_tf32(float* d, int n, std::uint64_t a_descriptor, std::uint64_t b_descriptor) {
  if (run.threads % 128 != 0) fault("wgmma in a block that is not whole warpgroups");
  const SharedOperand a_operand(a_descriptor), b_operand(b_descriptor);
  // D (64 x n): thread t of the warpgroup, warp w = t / 32, g = lane / 4, q = lane % 4, holds
  // d[4 j + 2 h + i] = D[16 w + g + 8 h][8 j + 2 q + i].
  const int t = run.current % 128, w = t / 32, g = t % 32 / 4, q = t % 4;
  double a[2][8];
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 8; ++k) a[h][k] = a_operand.at(16 * w + g + 8 * h, k);
  for (int j = 0; j < n / 8; ++j)
    for (int i = 0; i < 2; ++i) {
      double b[8];
      for (int k = 0; k < 8; ++k) b[k] = b_operand.at(8 * j + 2 * q + i, k);
      for (int h = 0; h < 2; ++h) {
        float& out = d[4 * j + 2 * h + i];
        double sum = out;
        for (int k = 0; k < 8; ++k) sum += a[h][k] * b[k];
        out = static_cast<float>(sum);
      }
    }
}

void trap() { fault("__trap()"); }

void submit_kernel(const void* function, dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                   const PointerArgument* pointers, int pointer_count, std::function<void()> body) {
  if (sticky_error != cudaSuccess) return;
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  const auto limit = dynamic_shared_limits.find(function);
  const std::size_t shared_limit = limit != dynamic_shared_limits.end() ? limit->second : 48 * 1024;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || shared_bytes > shared_limit) {
    fail(cudaErrorInvalidConfiguration,
         "launch of (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " + std::to_string(grid.z) +
             ") blocks of (" + std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
             std::to_string(block.z) + ") threads, " + std::to_string(shared_bytes) + " bytes of shared memory");
    return;
  }
  for (int i = 0; i < pointer_count; ++i)
    if (pointers[i].pointer != nullptr && !is_device_pointer(pointers[i].pointer)) {
      fail(cudaErrorInvalidDevicePointer,
           "kernel argument " + std::to_string(pointers[i].position) + " is not device memory (from cudaMalloc)");
      return;
    }
  submit(stream, [body = std::move(body), grid, block, shared_bytes] { run_grid(body, grid, block, shared_bytes); });
}

cudaError_t function_attributes(cudaFuncAttributes* attributes) {
  *attributes = {.maxThreadsPerBlock = 1024, .numRegs = 0, .ptxVersion = kMajor * 10, .binaryVersion = kMajor * 10};
  return cudaSuccess;
}

}  // namespace ember::emulator

// ---- the runtime API ------------------------------------------------------------------------------
using namespace ember::emulator;

cudaError_t cudaFuncSetAttribute(const void* function, cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > 227 * 1024)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: beyond the 227 KiB of an H200 block");
  dynamic_shared_limits[function] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = sticky_error != cudaSuccess ? sticky_error : last_error;
  last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined: return "capture was not joined with the origin stream";
    default: return "unknown error";
  }
}

cudaError_t cudaDriverGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaSetDevice: the emulator has device 0 only");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: no such device");
  *properties = {};
  std::snprintf(properties->name, sizeof properties->name, "CUDA emulator on the CPU (H200-like)");
  properties->totalGlobalMem = kMemoryBytes;
  properties->sharedMemPerBlockOptin = 227 * 1024;
  properties->major = kMajor;
  properties->minor = kMinor;
  properties->multiProcessorCount = kMultiprocessors;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: no such device");
  switch (attribute) {
    case cudaDevAttrMultiProcessorCount: *value = kMultiprocessors; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = kMajor; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = kMinor; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
}
cudaError_t cudaDeviceReset() {
  sticky_error = last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** pointer, std::size_t bytes) {
  if (capture_forbids("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
  if (sticky_error != cudaSuccess) return sticky_error;
  if (bytes == 0) {
    *pointer = nullptr;
    return cudaSuccess;
  }
  if (allocated_bytes + bytes > kMemoryBytes) return fail(cudaErrorMemoryAllocation, "cudaMalloc beyond the memory");
  const std::size_t rounded = (bytes + 255) / 256 * 256;
  char* p = static_cast<char*>(std::aligned_alloc(256, rounded));
  if (p == nullptr) return fail(cudaErrorMemoryAllocation, "cudaMalloc: the host is out of memory");
  std::memset(p, 0xff, rounded);  // uninitialized memory reads as NaN
#if defined(__SANITIZE_ADDRESS__)
  __asan_poison_memory_region(p + bytes, rounded - bytes);  // an access past `bytes` is an error
#endif
  allocations[p] = bytes;
  allocated_bytes += bytes;
  *pointer = p;
  return cudaSuccess;
}
cudaError_t cudaFree(void* pointer) {
  if (capture_forbids("cudaFree")) return cudaErrorStreamCaptureUnsupported;
  if (pointer == nullptr) return cudaSuccess;
  const auto it = allocations.find(static_cast<const char*>(pointer));
  if (it == allocations.end()) return fail(cudaErrorInvalidDevicePointer, "cudaFree of memory cudaMalloc did not give");
  allocated_bytes -= it->second;
#if defined(__SANITIZE_ADDRESS__)
  __asan_unpoison_memory_region(pointer, (it->second + 255) / 256 * 256);
#endif
  allocations.erase(it);
  std::free(pointer);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  *free_bytes = kMemoryBytes - allocated_bytes;
  *total_bytes = kMemoryBytes;
  return cudaSuccess;
}

namespace {

/// Checks a copy's ranges: device sides inside one allocation, host sides outside any.
cudaError_t check_copy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
  const bool device_destination = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool device_source = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost)
    return fail(cudaErrorInvalidValue, "cudaMemcpy kind not emulated");
  if (device_destination != is_device_pointer(destination) || device_source != is_device_pointer(source))
    return fail(cudaErrorInvalidValue, "cudaMemcpy: a pointer on the wrong side for its kind");
  if ((device_destination && !is_device_range(destination, bytes)) ||
      (device_source && !is_device_range(source, bytes)))
    return fail(cudaErrorInvalidValue, "cudaMemcpy: the range runs past its allocation");
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
  if (capture_forbids("cudaMemcpy")) return cudaErrorStreamCaptureUnsupported;
  if (const cudaError_t error = check_copy(destination, source, bytes, kind); error != cudaSuccess) return error;
  if (sticky_error != cudaSuccess) return sticky_error;
  if (bytes > 0) std::memmove(destination, source, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (const cudaError_t error = check_copy(destination, source, bytes, kind); error != cudaSuccess) return error;
  // Host memory here is pageable (the emulator has no cudaMallocHost): not capturable.
  if (resolve(stream)->capture && kind != cudaMemcpyDeviceToDevice) {
    resolve(stream)->capture->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "a copy between host and device inside a captured stream");
  }
  return submit(stream, [=] {
    if (bytes > 0) std::memmove(destination, source, bytes);
  });
}
cudaError_t cudaMemsetAsync(void* destination, int value, std::size_t bytes, cudaStream_t stream) {
  if (!is_device_range(destination, bytes)) return fail(cudaErrorInvalidValue, "cudaMemset outside an allocation");
  return submit(stream, [=] { std::memset(destination, value, bytes); });
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  return create_handle(stream, streams, flags);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) { return destroy_handle(stream, streams, "cudaStreamDestroy"); }
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  CUstream_st* s = resolve(stream);
  if (streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize");
  if (s->capture) {
    s->capture->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize on a capturing stream");
  }
  return sticky_error;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr) return fail(cudaErrorStreamCaptureUnsupported, "capturing the legacy stream");
  if (stream->capture) return fail(cudaErrorInvalidValue, "the stream is already capturing");
  stream->capture = std::make_shared<Capture>();
  stream->capture->origin = stream;
  stream->capture->mode = mode;
  stream->work_count = 0;
  stream->joined = true;
  if (mode != cudaStreamCaptureModeRelaxed) ++strict_captures;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (stream == nullptr || !stream->capture || stream->capture->origin != stream)
    return fail(cudaErrorInvalidValue, "cudaStreamEndCapture on a stream that did not begin a capture");
  const std::shared_ptr<Capture> capture = stream->capture;
  bool unjoined = false;
  for (CUstream_st* s : streams) {
    if (s->capture != capture) continue;
    unjoined = unjoined || (s != stream && !s->joined);
    s->capture.reset();
  }
  if (capture->mode != cudaStreamCaptureModeRelaxed) --strict_captures;
  if (unjoined)
    return fail(cudaErrorStreamCaptureUnjoined, "a stream forked from the capture has work the origin never waited on");
  if (capture->invalidated) return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated");
  *graph = new CUgraph_st{std::move(capture->work)};
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) { return create_handle(event, events, flags); }
cudaError_t cudaEventDestroy(cudaEvent_t event) { return destroy_handle(event, events, "cudaEventDestroy"); }
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  CUstream_st* s = resolve(stream);
  if (events.count(event) == 0 || streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord");
  event->capture = s->capture;
  event->stream = s;
  event->work_count = s->work_count;
  event->recorded = !s->capture;
  if (!s->capture) event->time = std::chrono::steady_clock::now();
  return sticky_error;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  CUstream_st* s = resolve(stream);
  if (events.count(event) == 0 || streams.count(s) == 0)
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent");
  if (!event->capture) return sticky_error;  // work before it has run: the emulator runs work as it comes
  if (s->capture && s->capture != event->capture)
    return fail(cudaErrorStreamCaptureUnsupported, "waiting on an event of another capture");
  if (!s->capture) {  // the stream joins the capture (a fork)
    s->capture = event->capture;
    s->work_count = 0;
    s->joined = true;
  }
  if (event->stream != s && event->work_count == event->stream->work_count) event->stream->joined = true;
  return sticky_error;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (events.count(event) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize");
  if (capture_forbids("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
  return sticky_error;
}
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  if (events.count(start) == 0 || events.count(end) == 0 || !start->recorded || !end->recorded ||
      ((start->flags | end->flags) & cudaEventDisableTiming) != 0)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of events without times");
  *milliseconds = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (graph == nullptr) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate of no graph");
  *exec = new CUgraphExec_st{graph->work};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return fail(cudaErrorInvalidValue, "cudaGraphLaunch of no graph");
  return submit(stream, [work = exec->work] {
    for (const Work& w : work) {
      if (sticky_error != cudaSuccess) return;
      w();
    }
  });
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

// ---- cuBLAS ---------------------------------------------------------------------------------------
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext{};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  handle->mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void* workspace, std::size_t bytes) {
  return is_device_range(workspace, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    default: return "CUBLAS_STATUS_EXECUTION_FAILED";
  }
}
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* a, int lda, const float* b, int ldb,
                           const float* beta, float* c, int ldc) {
  const bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
  // Column-major: op(a) is m x k, op(b) k x n, c m x n; the leading dimensions as cuBLAS checks them.
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) ||
      ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (!is_device_pointer(c) || (k > 0 && (!is_device_pointer(a) || !is_device_pointer(b))))
    return CUBLAS_STATUS_INVALID_VALUE;
  const float alpha_value = *alpha, beta_value = *beta;
  const bool tf32 = handle->mode == CUBLAS_TF32_TENSOR_OP_MATH;
  const cudaError_t error = submit(handle->stream, [=] {
    const auto operand = [tf32](float x) { return tf32 ? round_to_tf32(x) : x; };
    // Column-major: element (r, c) of a matrix with leading dimension ld is at r + c ld.
    const auto at = [](const float* x, long long ld, long long r, long long c) { return x[r + c * ld]; };
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double sum = 0;
        for (int p = 0; p < k; ++p)
          sum += static_cast<double>(operand(ta ? at(a, lda, p, i) : at(a, lda, i, p))) *
                 operand(tb ? at(b, ldb, j, p) : at(b, ldb, p, j));
        float& out = c[i + static_cast<long long>(j) * ldc];
        out = beta_value == 0.0f ? static_cast<float>(alpha_value * sum)
                                 : static_cast<float>(alpha_value * sum + static_cast<double>(beta_value) * out);
      }
  });
  return error == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
