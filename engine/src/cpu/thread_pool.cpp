#include "cpu/thread_pool.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu/threading.hpp"

namespace ember::threads {
namespace {

using Clock = std::chrono::steady_clock;

// An idle worker spins this long for the next operation before sleeping: long enough to bridge
// the single-threaded ops between two parallel ones in a training step, short enough that a
// worker never holds a shared core for long.
constexpr auto kWorkerSpin = std::chrono::microseconds(50);
// A caller that waits longer than this for a worker's last chunk saw that worker stall (its core
// was taken); the policy then runs on one thread for a while (threading.hpp).
constexpr auto kStall = std::chrono::microseconds(1000);

inline void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spins until value differs from old or the time runs out; returns whether it changed.
template <typename T>
bool spin_while_equal(const std::atomic<T>& value, T old, Clock::duration limit) {
  const Clock::time_point end = Clock::now() + limit;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (value.load(std::memory_order_acquire) != old) return true;
      cpu_pause();
    }
    if (Clock::now() >= end) return false;
  }
}

struct Job {
  ChunkTask task;
  std::int64_t chunks;
  std::atomic<std::int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error{};  // the first chunk's exception, written by the thread that set failed
};

class Pool {
 public:
  void run(std::int64_t chunks, int threads, ChunkTask task);
  int awake() const { return awake_.load(std::memory_order_relaxed); }

 private:
  void ensure_workers(int count);
  void work();
  static void run_claimed(Job& job);

  std::mutex submit_;  // one operation at a time; a second caller runs inline
  std::mutex grow_;
  std::vector<std::thread> workers_;
  std::atomic<int> worker_count_{0};
  std::atomic<std::uint32_t> generation_{0};  // bumped for each operation, to wake workers
  std::atomic<Job*> job_{nullptr};
  std::atomic<int> seats_{0};  // workers that may still join the current operation
  std::atomic<int> left_{0};   // workers that joined and have finished
  std::atomic<int> awake_{0};  // workers spinning or working
};

thread_local bool inside_task = false;

void Pool::run_claimed(Job& job) {
  try {
    for (std::int64_t chunk = job.next.fetch_add(1, std::memory_order_relaxed); chunk < job.chunks;
         chunk = job.next.fetch_add(1, std::memory_order_relaxed))
      job.task(chunk);
  } catch (...) {
    job.next.store(job.chunks, std::memory_order_relaxed);  // the others stop claiming
    if (!job.failed.exchange(true, std::memory_order_acq_rel)) job.error = std::current_exception();
  }
}

void Pool::ensure_workers(int count) {
  if (worker_count_.load(std::memory_order_acquire) >= count) return;
  const std::lock_guard lock(grow_);
  while (static_cast<int>(workers_.size()) < count) {
    workers_.emplace_back([this] { work(); });
    worker_count_.store(static_cast<int>(workers_.size()), std::memory_order_release);
  }
}

void Pool::work() {
  inside_task = true;  // a task that asks for threads runs its chunks itself
  std::uint32_t seen = generation_.load(std::memory_order_acquire);
  awake_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    if (!spin_while_equal(generation_, seen, kWorkerSpin)) {
      awake_.fetch_sub(1, std::memory_order_relaxed);
      generation_.wait(seen, std::memory_order_acquire);
      awake_.fetch_add(1, std::memory_order_relaxed);
    }
    seen = generation_.load(std::memory_order_acquire);
    // A seat is this operation's (or a later one's: job_ is set before seats_ is published).
    if (seats_.fetch_sub(1, std::memory_order_acq_rel) <= 0) continue;
    Job* job = job_.load(std::memory_order_acquire);
    run_claimed(*job);
    left_.fetch_add(1, std::memory_order_acq_rel);
    left_.notify_one();
  }
}

void Pool::run(std::int64_t chunks, int threads, ChunkTask task) {
  Job job{.task = task, .chunks = chunks};
  std::unique_lock lock(submit_, std::try_to_lock);
  if (threads <= 1 || chunks <= 1 || inside_task || !lock.owns_lock()) {
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) task(chunk);
    return;
  }
  const int helpers = static_cast<int>(std::min<std::int64_t>(threads, chunks)) - 1;
  ensure_workers(helpers);
  left_.store(0, std::memory_order_relaxed);
  job_.store(&job, std::memory_order_release);
  seats_.store(helpers, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();

  inside_task = true;
  run_claimed(job);
  inside_task = false;
  // No chunk is left to claim: close the seats and wait for the workers that took one.
  const int joined = helpers - std::max(0, seats_.exchange(INT_MIN / 2, std::memory_order_acq_rel));
  const Clock::time_point done = Clock::now();
  for (int finished = left_.load(std::memory_order_acquire); finished < joined;
       finished = left_.load(std::memory_order_acquire))
    if (!spin_while_equal(left_, finished, std::chrono::microseconds(20))) left_.wait(finished);
  report_wait(Clock::now() - done > kStall);
  if (job.failed.load(std::memory_order_acquire)) std::rethrow_exception(job.error);
}

/// The process's pool, made on first use and never destroyed: workers sleep through exit. A child
/// of fork() has none of the parent's threads, so it starts a pool of its own.
std::atomic<Pool*> instance{nullptr};

Pool& pool() {
  Pool* current = instance.load(std::memory_order_acquire);
  if (current != nullptr) return *current;
  static std::once_flag registered;
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, [] { instance.store(nullptr); }); });
  Pool* made = new Pool;  // NOLINT(cppcoreguidelines-owning-memory): lives as long as the process
  if (instance.compare_exchange_strong(current, made, std::memory_order_acq_rel)) return *made;
  delete made;
  return *current;
}

}  // namespace

void run_chunks(std::int64_t chunks, int threads, ChunkTask task) {
  if (threads <= 1 || chunks <= 1 || inside_task) {
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) task(chunk);
    return;
  }
  pool().run(chunks, threads, task);
}

int awake_workers() {
  const Pool* current = instance.load(std::memory_order_acquire);
  return current != nullptr ? current->awake() : 0;
}

}  // namespace ember::threads
