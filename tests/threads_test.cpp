// Ember's CPU threads: the pool runs every chunk once, from any number of callers, through
// exceptions and fork(); the fast path's results do not depend on how many threads ran them; the
// thread limit follows set_num_threads and the environment.
#include "ember/threads.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backend_conformance.hpp"
#include "cli_support.hpp"
#include "cpu/fast_cpu_backend.hpp"
#include "cpu/thread_pool.hpp"

namespace ember {
namespace {

using namespace testing;

/// set_num_threads for one test, restored after it.
class ThreadLimit {
 public:
  explicit ThreadLimit(int threads) { set_num_threads(threads); }
  ~ThreadLimit() { set_num_threads(0); }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;
};

/// Runs chunks on threads and checks that each ran exactly once.
void expect_each_chunk_once(std::int64_t chunks, int threads) {
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(chunks));
  threads::run_chunks(chunks, threads, [&](std::int64_t chunk) { runs[static_cast<std::size_t>(chunk)]++; });
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk)
    ASSERT_EQ(runs[static_cast<std::size_t>(chunk)].load(), 1) << chunk << " of " << chunks << " on " << threads;
}

TEST(Threads, EveryChunkRunsOnceWhateverTheThreads) {
  for (const std::int64_t chunks : {0, 1, 2, 3, 7, 64, 1000})
    for (const int threads : {1, 2, 3, 8}) expect_each_chunk_once(chunks, threads);
}

TEST(Threads, ManyOperationsInARowAndFromSeveralCallersAtOnce) {
  // Workers that wake late for one operation must not disturb the next; a caller that finds the
  // pool busy runs its chunks itself.
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int caller = 0; caller < 3; ++caller)
    callers.emplace_back([&, caller] {
      for (int operation = 0; operation < 2000; ++operation) {
        const std::int64_t chunks = 1 + (operation * 7 + caller) % 9;
        std::vector<std::atomic<int>> runs(static_cast<std::size_t>(chunks));
        threads::run_chunks(chunks, 4, [&](std::int64_t chunk) { runs[static_cast<std::size_t>(chunk)]++; });
        for (auto& run : runs)
          if (run.load() != 1) wrong++;
      }
    });
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Threads, AChunkInsideAChunkRunsOnItsCaller) {
  std::atomic<int> inner{0};
  threads::run_chunks(4, 4, [&](std::int64_t) {
    const std::thread::id outer = std::this_thread::get_id();
    threads::run_chunks(3, 4, [&](std::int64_t) {
      if (std::this_thread::get_id() == outer) inner++;
    });
  });
  EXPECT_EQ(inner.load(), 12);
}

TEST(Threads, AnExceptionInAChunkReachesTheCallerAndThePoolGoesOn) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    EXPECT_THROW(threads::run_chunks(16, 4,
                                     [&](std::int64_t chunk) {
                                       if (chunk == attempt % 16) throw std::runtime_error("chunk failed");
                                     }),
                 std::runtime_error);
    expect_each_chunk_once(16, 4);
  }
}

TEST(Threads, AChildOfForkRunsItsOwnPool) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer does not support starting threads in the child of a multi-threaded fork";
#endif
  expect_each_chunk_once(8, 4);  // the parent's pool has workers
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::vector<std::atomic<int>> runs(64);
    threads::run_chunks(64, 4, [&](std::int64_t chunk) { runs[static_cast<std::size_t>(chunk)]++; });
    for (auto& run : runs)
      if (run.load() != 1) _exit(1);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(Threads, SetNumThreadsOverridesTheDefaultAndZeroRestoresIt) {
  const int initial = num_threads();
  EXPECT_GE(initial, 1);
  {
    const ThreadLimit limit(3);
    EXPECT_EQ(num_threads(), 3);
    EXPECT_NE(describe_threads().find("up to 3 (set_num_threads)"), std::string::npos) << describe_threads();
  }
  EXPECT_EQ(num_threads(), initial);
  EXPECT_THROW(set_num_threads(-1), InputError);
}

TEST(Threads, SmallWorkStaysOnOneThreadAndLargeWorkIsSplitUpToTheLimit) {
  const ThreadLimit limit(4);
  EXPECT_EQ(threads::chunks_for(threads::single_thread_seconds(2.0 * 32 * 64 * 64, 0)), 1);  // width 64, batch 32
  EXPECT_EQ(threads::chunks_for(threads::single_thread_seconds(2.0 * 1024 * 1024 * 1024, 0)), 4);
  set_num_threads(1);
  EXPECT_EQ(threads::chunks_for(threads::single_thread_seconds(2.0 * 1024 * 1024 * 1024, 0)), 1);
}

// Odd thread limits split products into uneven blocks of rows or columns; each block must still be
// the right piece of the product.
TEST(Threads, SplitMatmulsAndElementwiseOpsMatchTheReference) {
#if defined(__SANITIZE_THREAD__)
  constexpr std::int64_t kMaxWork = 2'000'000;  // ThreadSanitizer looks for races, which small shapes show
#else
  constexpr std::int64_t kMaxWork = 100'000'000;
#endif
  for (const int threads : {3, 5}) {
    const ThreadLimit limit(threads);
    FastCpuBackend fast;
    expect_matmul_matches_reference(fast, kFloat32Tolerance, kMaxWork);
    expect_pointwise_ops_match_reference(fast);
    expect_layer_norm_matches_reference(fast);
    expect_batch_norm_matches_reference(fast);
    expect_embedding_matches_reference(fast);
    expect_dense_ops_match_reference(fast, kFloat32Tolerance, kMaxWork);
    expect_optimizers_match_reference(fast);
  }
}

TEST(Threads, ResultsAreTheSameBitsOnThePoolAndOnOneThread) {
  // A product split into blocks gives the same bits whether the blocks run on the pool or one
  // after another on the caller (as when the machine is busy, or another caller holds the pool).
  const ThreadLimit limit(4);
  const Matrix a = random_matrix(700, 300, 1), b = random_matrix(300, 500, 2);
  FastCpuBackend fast;
  const auto product = [&] {
    Matrix c = poisoned(700, 500);
    fast.matmul(Transpose::no, Transpose::no, 1.0f, a.view(), b.view(), 0.0f, c.view());
    return c;
  };
  const Matrix pooled = product();
  Matrix inline_product;
  threads::run_chunks(2, 2, [&](std::int64_t chunk) {  // inside a chunk, every operation runs on its caller
    if (chunk == 0) inline_product = product();
  });
  EXPECT_EQ(pooled, inline_product);
}

TEST(Threads, PredictRunsWholeBatchesOnThreadsWithTheBitsOfOneThread) {
  // Threads take whole batches of predict, each with a plan of its own; inside a task (as here in
  // the second run) the batches run one after another on the caller. Both give the same bits.
  const ThreadLimit limit(3);
  Sequential model{Dense(200, Activation::relu), Dense(200, Activation::relu), Dense(3)};
  model.compile({.optimizer = SGD{}, .loss = MeanSquaredError{}, .device = Device::cpu});
  model.build(37);
  const Matrix x = random_matrix(5000, 37, 9);
  const Matrix threaded = model.predict(x.view(), 256);
  Matrix serial;
  threads::run_chunks(2, 2, [&](std::int64_t chunk) {
    if (chunk == 0) serial = model.predict(x.view(), 256);
  });
  ASSERT_EQ(threaded.rows(), 5000);
  EXPECT_EQ(threaded, serial);
  EXPECT_EQ(model.predict(x.view(), 256), threaded);
}

TEST(Threads, InfoNamesTheLimitAndWhereItCameFrom) {
  const CliRun ember = run_ember_with_environment("EMBER_NUM_THREADS=3 OMP_NUM_THREADS=2", "info");
  EXPECT_EQ(ember.exit_code, 0) << ember.err;
  EXPECT_NE(ember.out.find("threads: up to 3 (EMBER_NUM_THREADS)"), std::string::npos) << ember.out;
  const CliRun omp = run_ember_with_environment("-u EMBER_NUM_THREADS OMP_NUM_THREADS=1", "info");
  EXPECT_NE(omp.out.find("threads: up to 1 (OMP_NUM_THREADS)"), std::string::npos) << omp.out;
  const CliRun ranks =
      run_ember_with_environment("-u EMBER_NUM_THREADS -u OMP_NUM_THREADS OMPI_COMM_WORLD_LOCAL_SIZE=64", "info");
  EXPECT_NE(ranks.out.find("threads: up to 1 ("), std::string::npos) << ranks.out;
  EXPECT_NE(ranks.out.find("shared by 64 local ranks"), std::string::npos) << ranks.out;
  const CliRun bad = run_ember_with_environment("EMBER_NUM_THREADS=many", "info");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.err.find("error: EMBER_NUM_THREADS=many: set it to a number of threads, 1 or more"), std::string::npos)
      << bad.err;
}

}  // namespace
}  // namespace ember
