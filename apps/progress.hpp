#pragma once
// Keras-like progress: on a terminal "Epoch 3/200" and a live bar; otherwise one line per epoch.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ember/distributed.hpp"
#include "ember/model.hpp"

namespace ember::cli {

/// bar: "Epoch 3/200" and a bar redrawn in place (carriage returns); lines: one line per epoch
/// (logs, pipes, mpirun's output); none: nothing.
enum class ProgressMode { bar, lines, none };
/// The --progress value: auto is bar where standard output is a terminal and one process runs
/// (mpirun gives its ranks a terminal even when its own output goes to a file), else lines.
ProgressMode parse_progress(const std::string& text, const Communicator& world);

class Progress {
 public:
  Progress(std::int64_t first_epoch, std::int64_t epochs, ProgressMode mode);
  void on_batch(std::int64_t batch, std::int64_t batches);
  void on_epoch_end(const EpochRecord& record);
  /// Counts epochs epochs from first_epoch (the next network of an ensemble, or a linear model).
  void restart(std::int64_t first_epoch, std::int64_t epochs);

 private:
  std::int64_t first_epoch_;
  std::int64_t epochs_;
  ProgressMode mode_;
  std::int64_t current_epoch_;
  bool epoch_started_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
  std::int64_t batches_ = 0;
};

}  // namespace ember::cli
