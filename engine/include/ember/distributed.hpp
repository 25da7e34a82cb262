#pragma once
// Data-parallel training over several processes: each holds the whole model and data, trains on its
// slice of every global batch, and the gradients are summed between the processes after each
// backward pass, so that N processes train as one process with the same global batch would.
//
//   auto world = ember::distributed::world();   // the processes mpirun or srun started
//   model.fit(x, y, {.epochs = 10, .batch_size = 256, .communicator = world});
//
// Without a launcher (or in a build without MPI) world() is a world of one process, and fit trains
// exactly as without a communicator.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ember {

/// How all_reduce combines the ranks' values.
enum class Reduction { sum, min, max };

/// Where a data-parallel step sums the ranks' gradients (FitOptions::gradient_sum).
enum class GradientSum {
  /// nccl where every rank can use it (each on a GPU of its own, NCCL installed, no
  /// deterministic_reduction), else host.
  automatic,
  /// On the GPUs with NCCL, inside the step's CUDA graph, each bucket of layers as soon as backward
  /// has produced it. InputError where a rank cannot. With one process, a communicator of one
  /// rank (what the sums cost, or a test).
  nccl,
  /// Copied to the host, summed in float64 by the Communicator (MPI), copied back: any backend.
  host,
};

/// The processes of one data-parallel run and the collectives fit needs between them. Every rank
/// must make the same calls in the same order. Implement it to train over a transport of your own.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's index, 0 to size() - 1; rank 0 writes the run's files.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// This process's index among those on its machine (its GPU, when each rank has one).
  virtual int local_rank() const = 0;
  /// Combines values element-wise over all ranks, in place; every rank receives the result.
  virtual void all_reduce(std::span<double> values, Reduction reduction) = 0;
  /// Root's values to every rank.
  virtual void broadcast(std::span<float> values, int root) = 0;
  /// Ends every rank of the run at once with exit code (after an error on this one).
  [[noreturn]] virtual void abort(int exit_code) = 0;
  /// "MPI (Open MPI v4.1.4), 2 ranks" or "one process".
  virtual std::string describe() const = 0;
};

namespace distributed {

/// Whether this build can train over MPI.
bool mpi_compiled();
/// The processes the launcher (mpirun, mpiexec, srun) started, MPI initialized on first use and
/// finalized at exit; a process started without a launcher is a world of one. The same object on
/// every call. Throws InputError when a launcher started several processes but this build has no
/// MPI. With several ranks, it gives each its own GPU: CUDA_VISIBLE_DEVICES is narrowed to the
/// local_rank-th GPU visible (modulo their number; left alone where it names one GPU already), so
/// call it before the process first uses CUDA.
std::shared_ptr<Communicator> world();
/// A world of one process: every collective returns its input.
std::shared_ptr<Communicator> single_process();

}  // namespace distributed
}  // namespace ember
