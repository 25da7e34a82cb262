// The communicators of ember/distributed.hpp: a world of one process, and MPI's world in builds
// with MPI (the processes mpirun, mpiexec or srun started).
#include "ember/distributed.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "ember/error.hpp"
#include "gpu_binding.hpp"
#ifdef EMBER_WITH_MPI
#include <mpi.h>
#endif

namespace ember::distributed {
namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void all_reduce(std::span<double>, Reduction) override {}
  void broadcast(std::span<float>, int) override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
  std::string describe() const override { return "one process"; }
};

/// The number of processes a launcher says it started, or 0 when none did.
int launched_processes() {
  // Open MPI's mpirun, MPICH's Hydra and Slurm's PMI2, srun's step (not the job's allocation).
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') return std::atoi(value);
  }
  return std::getenv("PMIX_RANK") != nullptr ? 2 : 0;  // PMIx without a size: let MPI tell
}

#ifdef EMBER_WITH_MPI
class Mpi final : public Communicator {
 public:
  Mpi() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized == 0) {
      int provided = 0;
      // SERIALIZED: fit may run on any thread of the application, one at a time.
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized == 0) MPI_Finalize();
      });
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
    char library[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(library, &length);
    library_ = std::string(library, static_cast<std::size_t>(length));
    if (const auto end = library_.find_first_of(",\n"); end != std::string::npos) library_.resize(end);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  // MPI counts are int: larger buffers go in chunks.
  static constexpr std::size_t kChunk = std::size_t{1} << 28;
  void all_reduce(std::span<double> values, Reduction reduction) override {
    const MPI_Op op = reduction == Reduction::sum ? MPI_SUM : reduction == Reduction::min ? MPI_MIN : MPI_MAX;
    for (std::size_t first = 0; first < values.size(); first += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, values.data() + first, static_cast<int>(std::min(kChunk, values.size() - first)),
                    MPI_DOUBLE, op, MPI_COMM_WORLD);
  }
  void broadcast(std::span<float> values, int root) override {
    for (std::size_t first = 0; first < values.size(); first += kChunk)
      MPI_Bcast(values.data() + first, static_cast<int>(std::min(kChunk, values.size() - first)), MPI_FLOAT, root,
                MPI_COMM_WORLD);
  }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
  }
  std::string describe() const override {
    return fmt::format("MPI ({}), {} rank{}", library_, size_, size_ == 1 ? "" : "s");
  }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string library_;
};
#endif

}  // namespace

std::optional<std::string> visible_gpu_for(int local_rank, const char* visible, int gpus) {
  std::vector<std::string> listed;
  if (visible != nullptr) {
    std::stringstream entries(visible);
    for (std::string entry; std::getline(entries, entry, ',');)
      if (!entry.empty()) listed.push_back(entry);
    if (listed.size() <= 1) return std::nullopt;  // bound already (or no GPU allowed)
  } else {
    for (int gpu = 0; gpu < gpus; ++gpu) listed.push_back(std::to_string(gpu));
    if (listed.size() <= 1) return std::nullopt;  // device 0 is the only choice anyway
  }
  return listed[static_cast<std::size_t>(local_rank) % listed.size()];
}

int driver_gpu_count() {
  std::error_code error;
  int count = 0;
  for (std::filesystem::directory_iterator entry("/proc/driver/nvidia/gpus", error), end; !error && entry != end;
       entry.increment(error))
    ++count;
  return count;
}

bool mpi_compiled() {
#ifdef EMBER_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Communicator> single_process() {
  return std::make_shared<SingleProcess>();
}

std::shared_ptr<Communicator> world() {
  static std::mutex mutex;
  static std::shared_ptr<Communicator> world;
  const std::lock_guard lock(mutex);
  if (world) return world;
  const int launched = launched_processes();
  if (launched <= 1) return world = single_process();
#ifdef EMBER_WITH_MPI
  world = std::make_shared<Mpi>();
  if (const std::optional<std::string> gpu =
          visible_gpu_for(world->local_rank(), std::getenv("CUDA_VISIBLE_DEVICES"), driver_gpu_count()))
    setenv("CUDA_VISIBLE_DEVICES", gpu->c_str(), 1);
  return world;
#else
  throw InputError(fmt::format(
      "a launcher started {} processes, but this build of Ember has no MPI: install Open MPI (libopenmpi-dev) and "
      "rebuild, or run one process",
      launched));
#endif
}

}  // namespace ember::distributed
