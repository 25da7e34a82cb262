#pragma once
// The CPU backends' threads: one pool per process, whose workers help the calling thread run the
// pieces ("chunks") of one operation. The caller always takes part and every thread claims chunks
// from a shared counter, so a worker that starts late (its core is taken by another process) finds
// the work done instead of holding the others at a barrier. Idle workers spin for a few
// microseconds and then sleep in the kernel, so they never burn a shared core for long.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace ember::threads {

/// A non-owning reference to a callable taking a chunk index: no allocation per operation.
class ChunkTask {
 public:
  template <typename F>
  requires std::is_invocable_v<F&, std::int64_t> ChunkTask(
      F& function)  // NOLINT(google-explicit-constructor): built at the call site
      : object_(&function), call_([](void* object, std::int64_t chunk) { (*static_cast<F*>(object))(chunk); }) {}
  void operator()(std::int64_t chunk) const { call_(object_, chunk); }

 private:
  void* object_;
  void (*call_)(void*, std::int64_t);
};

/// Runs task(chunk) for every chunk in [0, chunks) on the calling thread and up to threads - 1
/// workers, and returns when all have run. Chunks must be independent of one another. Inside a
/// task, or while another thread's operation holds the pool, every chunk runs on the caller.
void run_chunks(std::int64_t chunks, int threads, ChunkTask task);

template <typename F>
void run_chunks(std::int64_t chunks, int threads, F&& function) {
  run_chunks(chunks, threads, ChunkTask(function));
}

/// Seconds one thread needs for an operation: flops at a core's FMA rate (OpenBLAS's sgemm) plus
/// bytes at one core's memory bandwidth. Rough on purpose: it only separates work that is worth
/// splitting from work that is not.
double single_thread_seconds(double flops, double bytes);

/// Into how many chunks an operation of this cost is split: 1 below two threads' worth of work,
/// else up to num_threads(). Depends on the cost and num_threads() only, never on the load, so
/// that results are the same however many threads end up running the chunks.
int chunks_for(double seconds);

/// How many threads to run an operation's chunks on now: chunks_for(seconds), fewer while other
/// processes keep the cores busy (sampled from the kernel's count of runnable threads) or after
/// a worker was seen starting late.
int threads_for(double seconds);

/// How many threads to run `tasks` independent tasks of this total cost on (each small enough to
/// claim one at a time): as threads_for, but whatever the load once the whole is long beside a
/// stalled thread's time slice and the tasks are many, since a late thread then only delays the
/// last of its tasks.
int threads_for_tasks(double seconds, std::int64_t tasks);

/// Splits [0, count) into `chunks` ranges aligned to `align` and runs body(begin, end) on each with
/// threads_for(seconds).
template <typename Body>
void for_ranges(std::int64_t count, double seconds, std::int64_t align, Body&& body) {
  const std::int64_t chunks = std::min<std::int64_t>(chunks_for(seconds), (count + align - 1) / align);
  if (chunks <= 1) {
    if (count > 0) body(std::int64_t{0}, count);
    return;
  }
  const std::int64_t step = ((count + chunks - 1) / chunks + align - 1) / align * align;
  const std::int64_t pieces = (count + step - 1) / step;
  auto piece = [&](std::int64_t chunk) {
    const std::int64_t begin = chunk * step;
    body(begin, std::min(count, begin + step));
  };
  run_chunks(pieces, threads_for(seconds), piece);
}

/// Workers that are awake now (working or spinning): the pool's own share of the runnable count.
int awake_workers();

}  // namespace ember::threads
