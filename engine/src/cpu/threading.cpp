// The threading policy: the thread limit (set_num_threads, the environment, the cores this process
// may use, the ranks on this node), how much work pays for a thread, and the load of the machine.
#include "cpu/threading.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

#include "cpu/thread_pool.hpp"
#include "ember/error.hpp"
#include "ember/threads.hpp"

namespace ember {
namespace threads {
namespace {

using Clock = std::chrono::steady_clock;

// One core's rates on the fast path: OpenBLAS's sgemm reaches ~60-90 GFLOP/s per core with AVX2
// kernels and 150-180 with AVX-512 ones (docs/performance.md), elementwise loops stream ~10 GB/s.
// The lower rate keeps small products on one thread; at widths 256 and 1024 the split still pays
// with AVX-512 kernels (0.55-0.7 of one thread's time, idle).
constexpr double kFlopsPerSecond = 50e9, kBytesPerSecond = 10e9;
// Each thread of an operation must get at least this much work: handing chunks to a worker and
// waiting for it costs a few microseconds on an idle machine.
constexpr double kSecondsPerThread = 25e-6;
// How often the runnable count is sampled, and how fast its average follows.
constexpr auto kLoadSamplePeriod = std::chrono::milliseconds(5);
constexpr double kLoadSmoothing = 0.3;
// Chunks this long run on their threads whatever the load: a stall of a time slice or two is small
// beside them, and the threads get the process a larger share of busy cores (as PyTorch's do).
constexpr double kLongChunkSeconds = 5e-3;
// Many small tasks taking this long in all run on their threads whatever the load.
constexpr double kLongTasksSeconds = 20e-3;
// After a stall, one thread for this long, doubled on each further stall up to the maximum.
constexpr auto kFirstBackoff = std::chrono::milliseconds(20), kMaxBackoff = std::chrono::milliseconds(2000);

/// A positive integer from the environment, or 0 where unset; anything else is an error naming it.
int environment_threads(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  // OMP_NUM_THREADS may list one count per nesting level ("4,2"); the first is ours.
  if (end != text && value >= 1 && value <= 4096 && (*end == '\0' || *end == ',')) return static_cast<int>(value);
  throw InputError(fmt::format("{}={}: set it to a number of threads, 1 or more", name, text));
}

/// Cores the affinity mask allows, capped by a cgroup v2 CPU quota (containers).
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
  if (cores <= 0) cores = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  std::ifstream quota("/sys/fs/cgroup/cpu.max");
  std::string limit;
  double period = 0;
  if (quota >> limit >> period && limit != "max" && period > 0) {
    const double allowed = std::ceil(std::strtod(limit.c_str(), nullptr) / period);
    if (allowed >= 1) cores = std::min(cores, static_cast<int>(allowed));
  }
  return cores;
}

/// Processes of this launch on this node (Open MPI, MPICH's Hydra, Slurm), which share its cores.
int local_processes() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}) {
    const char* text = std::getenv(name);
    char* end = nullptr;
    const long value = text != nullptr ? std::strtol(text, &end, 10) : 0;
    if (value >= 1 && end != nullptr && *end == '\0') return static_cast<int>(value);
  }
  return 1;
}

struct Limit {
  int threads = 1, cores = 1;
  int machine_cores = 1;  // every online core, which the kernel's runnable count covers
  std::string source;
};

Limit default_limit() {
  Limit limit;
  limit.cores = usable_cores();
  limit.machine_cores = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  if (const int ember = environment_threads("EMBER_NUM_THREADS"); ember > 0) {
    limit.threads = ember;
    limit.source = "EMBER_NUM_THREADS";
  } else if (const int omp = environment_threads("OMP_NUM_THREADS"); omp > 0) {
    limit.threads = omp;
    limit.source = "OMP_NUM_THREADS";
  } else {
    const int processes = local_processes();
    limit.threads = std::max(1, limit.cores / processes);
    limit.source = processes > 1 ? fmt::format("{} usable cores shared by {} local ranks", limit.cores, processes)
                                 : fmt::format("{} usable cores", limit.cores);
  }
  return limit;
}

const Limit& environment_limit() {
  static const Limit limit = default_limit();
  return limit;
}

std::atomic<int> chosen_threads{0};  // set_num_threads; 0: the default

/// The kernel's count of runnable threads, less this process's awake workers and the caller,
/// averaged over recent samples: how many cores other work is using now.
class LoadMonitor {
 public:
  double others() {
    const auto now = Clock::now().time_since_epoch().count();
    if (now - last_sample_.load(std::memory_order_relaxed) >= Clock::duration(kLoadSamplePeriod).count()) {
      std::unique_lock lock(mutex_, std::try_to_lock);
      if (lock.owns_lock()) {
        last_sample_.store(now, std::memory_order_relaxed);
        const int running = runnable();
        if (running > 0) {
          const double seen = std::max(0, running - 1 - awake_workers());
          const double before = average_.load(std::memory_order_relaxed);
          average_.store(before < 0 ? seen : before * (1 - kLoadSmoothing) + seen * kLoadSmoothing,
                         std::memory_order_relaxed);
        }
      }
    }
    return std::max(0.0, average_.load(std::memory_order_relaxed));
  }

 private:
  /// The fourth field of /proc/loadavg, "running/total": threads runnable right now; 0 where unknown.
  int runnable() {
    if (file_ == -2) file_ = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (file_ < 0) return 0;
    char text[128];
    const ssize_t length = pread(file_, text, sizeof(text) - 1, 0);
    if (length <= 0) return 0;
    text[length] = '\0';
    double ignored[3];
    int running = 0, total = 0;
    return std::sscanf(text, "%lf %lf %lf %d/%d", &ignored[0], &ignored[1], &ignored[2], &running, &total) == 5
               ? running
               : 0;
  }

  std::mutex mutex_;
  int file_ = -2;
  std::atomic<Clock::rep> last_sample_{0};
  std::atomic<double> average_{-1};  // below 0 until the first sample
};

LoadMonitor& load() {
  static LoadMonitor monitor;
  return monitor;
}

// Stall back-off: one thread until backoff_until (steady clock ticks).
std::atomic<Clock::rep> backoff_until{0};
std::atomic<Clock::rep> backoff_length{Clock::duration(kFirstBackoff).count()};

}  // namespace

void report_wait(bool stalled) {
  const Clock::rep length = backoff_length.load(std::memory_order_relaxed);
  if (!stalled) {
    backoff_length.store(Clock::duration(kFirstBackoff).count(), std::memory_order_relaxed);
    return;
  }
  backoff_until.store(Clock::now().time_since_epoch().count() + length, std::memory_order_relaxed);
  backoff_length.store(std::min(length * 2, Clock::rep{Clock::duration(kMaxBackoff).count()}),
                       std::memory_order_relaxed);
}

double single_thread_seconds(double flops, double bytes) {
  return flops / kFlopsPerSecond + bytes / kBytesPerSecond;
}

int chunks_for(double seconds) {
  const int limit = num_threads();
  if (limit <= 1 || seconds < 2 * kSecondsPerThread) return 1;
  return static_cast<int>(std::min<double>(limit, std::floor(seconds / kSecondsPerThread)));
}

int threads_for(double seconds) {
  const int wanted = chunks_for(seconds);
  if (wanted <= 1) return 1;
  if (seconds / wanted >= kLongChunkSeconds) return wanted;
  if (Clock::now().time_since_epoch().count() < backoff_until.load(std::memory_order_relaxed)) return 1;
  // The runnable count covers the whole machine (a container's too), so the cores left free are
  // counted on the machine; a process confined to fewer cores takes at most its own.
  const int free_cores = environment_limit().machine_cores - static_cast<int>(std::lround(load().others()));
  return std::clamp(std::min(free_cores, environment_limit().cores), 1, wanted);
}

int threads_for_tasks(double seconds, std::int64_t tasks) {
  const int wanted = static_cast<int>(std::min<std::int64_t>(chunks_for(seconds), tasks));
  if (wanted <= 1) return 1;
  if (seconds >= kLongTasksSeconds && tasks >= 4 * wanted) return wanted;
  return std::min(wanted, threads_for(seconds / static_cast<double>(tasks) * wanted));
}

}  // namespace threads

int num_threads() {
  const int chosen = threads::chosen_threads.load(std::memory_order_relaxed);
  return chosen > 0 ? chosen : threads::environment_limit().threads;
}

void set_num_threads(int count) {
  if (count < 0)
    throw InputError(fmt::format("set_num_threads({}): use 1 or more threads, or 0 for the default", count));
  threads::chosen_threads.store(count, std::memory_order_relaxed);
}

std::string describe_threads() {
  const threads::Limit& limit = threads::environment_limit();
  const int chosen = threads::chosen_threads.load(std::memory_order_relaxed);
  return fmt::format(
      "threads: up to {} ({}), fewer for small work or while other processes keep the cores busy "
      "(now {:.1f} other runnable)",
      num_threads(), chosen > 0 ? "set_num_threads" : limit.source, threads::load().others());
}

}  // namespace ember
