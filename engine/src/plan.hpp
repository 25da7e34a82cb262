#pragma once
// A model compiled for one backend and one batch size: every tensor has a place in one arena
// allocated once, and a training step is a fixed schedule of backend ops with no allocation.
//
// Arena layout (floats, each region aligned to 64 floats = 256 bytes):
//   parameters | velocity | gradients     regions with identical layout, so the SGD update is one
//   | snapshot (parameters, velocity)      call over all parameters; the snapshot keeps the state
//                                          of the last good epoch (one copy each way)
//   x batch (B, in) | y batch (B, out)     the step's gathered inputs and targets
//   activation l (B, units_l) per layer    forward outputs, kept for backward
//   gradient ping, pong (B, max units)     activation gradients: layer l writes the buffer layer
//                                          l + 1 no longer needs
//   error sums: training (2, out) and validation (2, out) | cursor (int32)
#include <array>
#include <cstdint>
#include <vector>

#include "ember/backend.hpp"
#include "ember/model.hpp"

namespace ember {

/// A matrix uploaded to backend memory.
struct BackendMatrix {
  BackendMatrix() = default;
  BackendMatrix(Backend& backend, const Matrix& host);
  Buffer buffer;
  ConstView view;
};

class Plan {
 public:
  Plan(Backend& backend, const std::vector<Dense>& layers, std::int64_t input_width, std::int64_t batch_size);
  ~Plan() { backend_.forget_steps(id_); }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  std::int64_t batch_size() const { return batch_size_; }
  std::int64_t parameter_count() const { return parameter_count_; }
  std::size_t arena_bytes() const { return arena_.bytes(); }

  void upload_parameters(const std::vector<float>& parameters, const std::vector<float>& velocity);
  void download_parameters(std::vector<float>& parameters, std::vector<float>& velocity);
  /// Copies the parameters and optimizer state aside (on the backend), and back: fit keeps the
  /// state of the last completed epoch there, to return to when an epoch fails.
  void snapshot_state();
  void restore_state();
  /// The gradients of the last step (same layout as the parameters), for gradient checks.
  std::vector<float> download_gradients();

  // ---- training --------------------------------------------------------------------------------
  /// The training set the steps gather from: x (n, in), y (n, out), indices n int32, all backend memory.
  void bind_training_set(ConstView x, ConstView y, const std::int32_t* indices);
  /// Sets the gather cursor to 0 and zeroes the error sums (start of an epoch).
  void reset_epoch();
  /// One step on the next rows (<= batch size) of the index list: forward, loss, backward, update.
  void train_step(std::int64_t rows, const SgdParams& sgd);

  // ---- inference -------------------------------------------------------------------------------
  /// Runs the layers on input (rows <= batch size, in); returns the output activation view.
  ConstView forward(ConstView input);
  /// Adds the errors of prediction vs target into the validation sums.
  void accumulate_validation(ConstView prediction, ConstView target);

  /// The epoch's per-column error sums (Backend::mse_loss_and_gradient) of the training steps and of
  /// validation, 2 * outputs floats each: squared errors, then absolute errors. One device read.
  struct ErrorSums {
    std::vector<float> train, validation;
  };
  ErrorSums read_error_sums();

 private:
  struct LayerSlots {
    std::int64_t in = 0, out = 0;
    Activation activation = Activation::linear;
    float* weight = nullptr;  // (out, in)
    float* bias = nullptr;    // (1, out)
    float* weight_gradient = nullptr;
    float* bias_gradient = nullptr;
    float* output = nullptr;  // (B, out)
  };
  void enqueue_train_step(std::int64_t rows, const SgdParams& sgd);

  Backend& backend_;
  std::uint64_t id_;  // names this plan's recorded steps in the backend
  std::int64_t batch_size_;
  std::int64_t input_width_;
  std::int64_t parameter_count_ = 0;
  Buffer arena_;
  std::vector<LayerSlots> layers_;
  float* parameters_ = nullptr;
  float* gradients_ = nullptr;
  float* velocity_ = nullptr;
  float* snapshot_ = nullptr;
  std::int64_t region_floats_ = 0;  // each region's size, aligned
  float* x_batch_ = nullptr;
  float* y_batch_ = nullptr;
  std::array<float*, 2> gradient_buffers_{};
  float* error_sums_ = nullptr;  // training (2, out), then validation (2, out)
  std::int32_t* cursor_ = nullptr;
  ConstView train_x_{}, train_y_{};
  const std::int32_t* train_indices_ = nullptr;
};

}  // namespace ember
