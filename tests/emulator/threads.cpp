// The CPU emulator's threads (README.md here): a kernel's blocks run one at a time, each thread of
// a block a fiber on this OS thread that switches at __syncthreads and at warp exchanges (shuffles,
// mma.sync); and the tensor-core instructions, emulated from the PTX ISA.
#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "internal.hpp"

namespace ember::emulator {
namespace {

constexpr int kExchangeWords = 6;  // a lane's words in a warp exchange: mma.sync's 4 of A and 2 of B
constexpr std::size_t kFiberStackBytes = 256 * 1024;

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
  // A fiber that exits never returns from its frames: their redzones must be cleared now, or the
  // next fiber on the same stack memory trips over them.
  if (exits) __asan_handle_no_return();
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
void switch_context(Context& from, Context& to, bool = false) {
  swapcontext(&from.context, &to.context);
}
void enter_fiber(Context&) {}
#endif

// ---- kernels: one block at a time, its threads as fibers ----
enum class FiberState { ready, at_block_barrier, at_warp_exchange, exited };

/// A wgmma issued by a thread: it runs when a wgmma.wait_group completes its group.
struct Wgmma {
  float* d;
  int n;
  std::uint64_t a_descriptor, b_descriptor;
};

struct Fiber {
  Context context;
  FiberState state = FiberState::ready;
  ThreadContext indices{};
  std::unique_ptr<char[]> stack;
  std::vector<Wgmma> uncommitted;         // issued since the last wgmma.commit_group
  std::deque<std::vector<Wgmma>> groups;  // committed, not yet waited for
};

struct BlockRun {
  std::vector<Fiber> fibers;
  int threads = 0;
  int current = -1;
  Context scheduler;
  const Work* body = nullptr;
  std::vector<std::array<std::uint32_t, kWarp * kExchangeWords>> exchange;  // per warp
  std::string error;                                                        // a kernel fault, ending the launch
  // The shared window: 1024-byte aligned, with the dynamic shared memory 16 bytes into it (as if
  // behind a little static shared memory), so that kernels aligning it themselves are tested.
  std::vector<unsigned char> shared;
  unsigned char* window = nullptr;
  std::size_t dynamic_bytes = 0;
  // The shared memory as the async proxy (wgmma's operand reads) sees it: a copy taken when every
  // live thread has executed fence.proxy.async since the last copy.
  std::vector<unsigned char> async_view;
  int proxy_fences = 0;
};
constexpr std::size_t kDynamicOffset = 16;

BlockRun run;

[[noreturn]] void fault(const std::string& what);

void fiber_main() {
  enter_fiber(run.scheduler);
  (*run.body)();
  const Fiber& fiber = run.fibers[run.current];
  if (!fiber.uncommitted.empty() || !fiber.groups.empty())
    fault("a thread ended with wgmmas that no wgmma.wait_group completed");
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
bool run_block(const Work& body, dim3 grid, dim3 block, uint3 block_idx) {
  run.body = &body;
  run.threads = static_cast<int>(block.x * block.y * block.z);
  std::fill(run.shared.begin(), run.shared.end(), 0xff);  // uninitialized: NaN
  run.async_view = run.shared;
  run.proxy_fences = 0;
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
    fiber.uncommitted.clear();
    fiber.groups.clear();
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

}  // namespace

void run_grid(const Work& body, dim3 grid, dim3 block, std::size_t shared_bytes) {
  run.shared.assign(shared_bytes + kDynamicOffset + 1024, 0xff);
  const auto base = reinterpret_cast<std::uintptr_t>(run.shared.data());
  run.window = run.shared.data() + ((1024 - base % 1024) % 1024);
  run.dynamic_bytes = shared_bytes;
  // Every other launch runs its blocks last to first: a kernel whose result depends on the order of
  // its blocks (which a GPU does not promise) then differs from one launch to the next.
  static unsigned long long launches = 0;
  const bool reverse = launches++ % 2 == 1;
  const unsigned long long blocks = static_cast<unsigned long long>(grid.x) * grid.y * grid.z;
  for (unsigned long long i = 0; i < blocks; ++i) {
    const unsigned long long linear = reverse ? blocks - 1 - i : i;
    const uint3 index{static_cast<unsigned>(linear % grid.x), static_cast<unsigned>(linear / grid.x % grid.y),
                      static_cast<unsigned>(linear / grid.x / grid.y)};
    if (!run_block(body, grid, block, index)) {
      const std::string what = "kernel block (" + std::to_string(index.x) + ", " + std::to_string(index.y) + ", " +
                               std::to_string(index.z) + "): " + run.error;
      run.error.clear();
      run.current = -1;
      sticky_error = fail(cudaErrorLaunchFailure, what);
      return;
    }
  }
  run.current = -1;
}

namespace {

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

  /// Element (row, k) of the operand's 8 k, as the tensor cores read it: the top 19 bits (TF32),
  /// through the async proxy, whose view must agree with what the threads wrote.
  double at(int row, int k) const {
    const std::uint64_t linear = start + (row / 8) * stride + (row % 8) * 128 + k * 4;
    const std::uint64_t address = linear ^ (((linear >> 7) & 7) << 4);
    if (address < kDynamicOffset || address + 4 > kDynamicOffset + run.dynamic_bytes)
      fault("a wgmma operand read outside the dynamic shared memory");
    const unsigned char* seen = run.async_view.data() + (run.window - run.shared.data()) + address;
    if (std::memcmp(seen, run.window + address, 4) != 0)
      fault(
          "a wgmma operand differs from what the async proxy saw: a write without fence.proxy.async before "
          "the wgmma, or a write to its operands before the wgmma.wait_group that completes it");
    std::uint32_t bits;
    std::memcpy(&bits, seen, 4);
    return std::bit_cast<float>(bits & 0xffffe000u);
  }
};

}  // namespace

const ThreadContext& thread_context() {
  return current_fiber().indices;
}

int lane_id() {
  return run.current % kWarp;
}

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

namespace {

/// A wgmma's product, when its group completes.
void run_wgmma(const Wgmma& wgmma) {
  float* const d = wgmma.d;
  const int n = wgmma.n;
  const SharedOperand a_operand(wgmma.a_descriptor), b_operand(wgmma.b_descriptor);
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

}  // namespace

void wgmma_m64nNk8_tf32(float* d, int n, std::uint64_t a_descriptor, std::uint64_t b_descriptor) {
  if (run.threads % 128 != 0) fault("wgmma in a block that is not whole warpgroups");
  (void)SharedOperand(a_descriptor), (void)SharedOperand(b_descriptor);  // descriptors checked at issue
  current_fiber().uncommitted.push_back({d, n, a_descriptor, b_descriptor});
}

void fence_proxy_async() {
  const int live = static_cast<int>(std::count_if(run.fibers.begin(), run.fibers.begin() + run.threads,
                                                  [](const Fiber& f) { return f.state != FiberState::exited; }));
  if (++run.proxy_fences >= live) {
    run.async_view = run.shared;
    run.proxy_fences = 0;
  }
}

void wgmma_fence() {}

void wgmma_commit_group() {
  Fiber& fiber = current_fiber();
  fiber.groups.push_back(std::move(fiber.uncommitted));
  fiber.uncommitted.clear();
}

void wgmma_wait_group(int pending) {
  Fiber& fiber = current_fiber();
  for (; fiber.groups.size() > static_cast<std::size_t>(pending); fiber.groups.pop_front())
    for (const Wgmma& wgmma : fiber.groups.front()) run_wgmma(wgmma);
}

void trap() {
  fault("__trap()");
}

}  // namespace ember::emulator
