#pragma once
// Keras-like progress: on a terminal "Epoch 3/200" and a live bar; otherwise one line per epoch.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ember/model.hpp"

namespace ember::cli {

/// The figures an epoch record holds, named as Keras names them, in a fixed order: loss, then the
/// task's metrics (mae, r2 or accuracy), then the same for validation.
std::vector<std::pair<std::string, double>> epoch_figures(const EpochRecord& record);

class Progress {
 public:
  Progress(std::int64_t first_epoch, std::int64_t epochs, bool quiet);
  void on_batch(std::int64_t batch, std::int64_t batches);
  void on_epoch_end(const EpochRecord& record);

 private:
  std::int64_t first_epoch_;
  std::int64_t epochs_;
  bool quiet_;
  bool terminal_;
  std::int64_t current_epoch_;
  bool epoch_started_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
  std::int64_t batches_ = 0;
};

}  // namespace ember::cli
