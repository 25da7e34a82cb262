#pragma once
// The backend interface, for those who write or test a backend (users need ember/device.hpp): memory
// and the op set. The CPU backend is the reference every other backend is tested against. All ops are enqueued in order
// on the backend's one stream; host memory is only valid to read after synchronize() (or a copy_to_host, which
// synchronizes).
//
// Shapes are given in comments as (rows, cols). Unless said otherwise, outputs are overwritten
// and never read, so an output poisoned with NaN before the op must come back fully written.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/activation.hpp"
#include "ember/device.hpp"
#include "ember/layer_op.hpp"
#include "ember/optimizers.hpp"
#include "ember/tensor.hpp"

namespace ember {

enum class Transpose { no, yes };

/// Sums buffers in backend memory over the ranks of a data-parallel run (NCCL on the GPU), in
/// order with the backend's ops so that a recorded step (Backend::run_step) holds it. Every rank
/// makes the same calls in the same order.
class DeviceCollective {
 public:
  virtual ~DeviceCollective() = default;
  /// After the ops enqueued so far: values (count floats) times *factor summed over the ranks, in
  /// place. factor is backend memory, read when the sum runs. The sum may run beside the ops
  /// enqueued next, which must not touch values until finish().
  virtual void start_scaled_sum(float* values, std::int64_t count, const float* factor) = 0;
  /// The ops enqueued next run after every sum started.
  virtual void finish() = 0;
};

/// Whether a backend can sum over the ranks in its own memory (Backend::collective_support).
struct CollectiveSupport {
  std::string unavailable_reason;  // empty when it can
  std::string library;             // "NCCL 2.28.9"
  /// Names the device this rank uses (the GPU's UUID): ranks sharing one cannot use the
  /// collective and sum on the host instead.
  std::string device;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  /// "cpu" or "cuda:0 (NVIDIA H200)".
  virtual std::string name() const = 0;
  virtual Device device() const = 0;

  // ---- memory --------------------------------------------------------------------------------
  /// Allocates bytes of backend memory (aligned to 256 bytes); never returns null, throws Error.
  void* allocate(std::size_t bytes);
  void deallocate(void* pointer) noexcept;
  /// The backend's memory in bytes (the GPU's; the host's, capped by a container's limit), so that
  /// a model too large for it is refused before anything is allocated; 0 where unknown.
  virtual std::size_t memory_bytes() const;
  /// How many allocations were made so far; a training step must not change it.
  std::size_t allocation_count() const { return allocation_count_.load(); }
  virtual void copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) = 0;
  /// Waits for all queued work, then copies.
  virtual void copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) = 0;
  virtual void synchronize() {}

  // ---- ops -------------------------------------------------------------------------------------
  /// c = alpha * op(a) @ op(b) + beta * c; op(a) is (m, k), op(b) is (k, n), c is (m, n).
  /// With beta == 0, c is not read.
  virtual void matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b, float beta,
                      View c) = 0;
  /// y += bias broadcast over rows, in place. y is (rows, cols), bias is (1, cols).
  virtual void bias_add(View y, ConstView bias) = 0;
  /// bias_gradient = column sums of dy. dy is (rows, cols), bias_gradient is (1, cols).
  virtual void bias_gradient(ConstView dy, View bias_gradient) = 0;
  /// y = f(x) for the activation kind (ember/activation.hpp; the formulas are the parts of
  /// kernels/activation_math.hpp). x and y are (rows, cols) and may be the same memory.
  virtual void activation_forward(Activation kind, ConstView x, View y) = 0;
  /// dx = dy * f'(x): y is the forward output and x its input, the pre-activation, which only the
  /// kinds that need it read (activations::needs_input; for the others x may be an empty view).
  /// dy, x, y, dx are (rows, cols); dx may alias dy.
  virtual void activation_backward(Activation kind, ConstView dy, ConstView x, ConstView y, View dx) = 0;
  /// values *= min(1, max_norm / (norm + 1e-6)), norm the L2 norm of all count values (backend
  /// memory), as torch.nn.utils.clip_grad_norm_: the norm summed in an order fixed by count alone
  /// (the same bits run after run), the factor read by the scaling where it was computed (a
  /// recorded step stays valid). max_norm > 0.
  virtual void clip_by_norm(float* values, std::int64_t count, float max_norm) = 0;
  /// One step of the optimizer (its formula, optimizers.hpp) over count parameters in one flat
  /// buffer, at the learning rate lr * scalars->lr_scale and, for Adam and AdamW, the step count
  /// scalars->step (>= 1: advance it first). state holds the optimizer's state buffers
  /// (optimizer_state_names order), count floats each, region floats apart. No buffer overlaps another.
  virtual void optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                                std::int64_t region, std::int64_t count, const OptimizerScalars* scalars) = 0;
  /// A layer's or a loss's own op (ember/layer_op.hpp): op.check, then the backend's form of it.
  void layer_op(const LayerOp& op, const OpArgs& args) {
    op.check(args);
    run_layer_op(op, args);
  }
  // ---- fused layer ops (defaults compose the ops above; backends override them to fuse) -----------
  /// One Dense layer's forward: y = f(x @ weight^T + bias) for the activation f. When
  /// pre_activation is given (training, for a kind whose backward reads its input), it receives
  /// x @ weight^T + bias. x (rows, in), weight (out, in), bias (1, out), y and pre_activation (rows, out).
  virtual void dense_forward(ConstView x, ConstView weight, ConstView bias, Activation activation, View y,
                             std::optional<View> pre_activation = std::nullopt);
  /// The input gradient of a Dense layer: dx = dy @ weight; when relu_output is given (the forward
  /// output of the ReLU layer below), dx is zeroed where relu_output <= 0 (that layer's ReLU
  /// backward, folded in). dy (rows, out), weight (out, in), relu_output and dx (rows, in).
  virtual void dense_input_gradient(ConstView dy, ConstView weight, std::optional<ConstView> relu_output, View dx);
  /// One Dense layer's backward from dy (rows, out), the gradient at the layer's output (already
  /// through its own ReLU): weight_gradient (out, in) = dy^T @ x, bias_gradient (1, out) = the
  /// column sums of dy and, when dx is given, dense_input_gradient(dy, weight, relu_output, *dx).
  /// x (rows, in) is the layer's input. The GPU computes the parameter gradients (one kernel for
  /// narrow layers) alongside the input gradient, on a second stream joined before returning.
  virtual void dense_backward(ConstView dy, ConstView x, ConstView weight, std::optional<ConstView> relu_output,
                              View weight_gradient, View bias_gradient, std::optional<View> dx);

  // ---- row-invariant training ------------------------------------------------------------------
  /// Whether every row of a layer's output and input gradient comes from its own row alone, in an
  /// order fixed by the shapes, and dense_parameter_gradients is available: the CPU backends (the
  /// reference always, the fast path with BackendOptions::row_invariant). A plan on such a backend
  /// weighs the rows inside the parameter gradients' float64 sums (Plan::sums_rows_exactly), so
  /// that a step does not depend on its rows' order and a row of weight k gives the step of k copies.
  virtual bool row_invariant() const { return false; }
  /// A Dense layer's parameter gradients as the weighted mean over the rows: weight_gradient (out,
  /// in) = sum_r w_r dy_r^T x_r / sum_r w_r and bias_gradient (1, out) = sum_r w_r dy_r / sum_r w_r
  /// (zeros where the weights sum to 0), for w = row_weights (rows, 1), each entry summed in row
  /// order in float64 from the exact products w_r dy_r (for whole weights) and rounded once.
  /// dy (rows, out), x (rows, in). The default (a backend that is not row_invariant()) throws Error.
  virtual void dense_parameter_gradients(ConstView dy, ConstView x, ConstView row_weights, View weight_gradient,
                                         View bias_gradient);

  /// Every element of y = value.
  virtual void fill(View y, float value) = 0;
  /// destination = source, both (rows, cols).
  virtual void copy(ConstView source, View destination) = 0;
  /// destination row r = source row indices[*cursor + r] for r < destination.rows. The cursor is
  /// one int32 of backend memory so that a recorded step reads the batch position at run time.
  /// source is (n, cols), indices has n entries, destination is (batch, cols).
  virtual void gather_rows(ConstView source, const std::int32_t* indices, const std::int32_t* cursor,
                           View destination) = 0;
  /// values(r, c) *= scales(r, 0) for every row r of values, the float product rounded once (every
  /// backend gives the same bits): per-row weights on a loss gradient. scales is (values.rows, 1).
  virtual void scale_rows(ConstView scales, View values) = 0;
  /// cursor[0] += amount (a gather cursor, or OptimizerScalars::step).
  virtual void advance_cursor(std::int32_t* cursor, std::int32_t amount) = 0;
  /// A training step's batch: gather_rows of x into x_batch and of y into y_batch at the same
  /// cursor, then advance_cursor by x_batch.rows (the GPU does all three in one kernel).
  virtual void gather_batch(ConstView x, ConstView y, const std::int32_t* indices, std::int32_t* cursor, View x_batch,
                            View y_batch);

  // ---- scheduling ------------------------------------------------------------------------------
  /// Runs step, which enqueues ops only and whose arguments depend only on (owner, shape_key). A
  /// backend may record it the first time and replay the recording after (a CUDA graph on the GPU).
  virtual void run_step(std::uint64_t owner, std::uint64_t shape_key, const std::function<void()>& step) {
    (void)owner;
    (void)shape_key;
    step();
  }
  /// Drops the recordings of owner (its buffers are about to be freed).
  virtual void forget_steps(std::uint64_t owner) noexcept { (void)owner; }

  // ---- data-parallel collectives ---------------------------------------------------------------
  /// Whether this backend sums over the ranks in its own memory (the CUDA backend with NCCL).
  virtual CollectiveSupport collective_support();
  /// Rank 0's identity of a new collective (NCCL's unique id), which every rank passes to
  /// join_collective. Throws Error where collective_support says none.
  virtual std::vector<std::uint8_t> new_collective_id();
  /// This rank's member of the collective of ranks ranks that id names; every rank calls it
  /// together. Throws Error when it cannot join; the other ranks may then wait for it forever, so
  /// the run must end (the CLI aborts every rank).
  virtual std::unique_ptr<DeviceCollective> join_collective(const std::vector<std::uint8_t>& id, int rank, int ranks);

 protected:
  /// The CPU backends run op.reference or op.fast; the CUDA backend its registered launch.
  virtual void run_layer_op(const LayerOp& op, const OpArgs& args) = 0;
  virtual void* do_allocate(std::size_t bytes) = 0;
  virtual void do_deallocate(void* pointer) noexcept = 0;

 private:
  std::atomic<std::size_t> allocation_count_ = 0;  // allocations may come from several threads
};

/// Owning handle on one backend allocation.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend& backend, std::size_t bytes) : backend_(&backend), bytes_(bytes), data_(backend.allocate(bytes)) {}
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void release() noexcept;
  Backend* backend_ = nullptr;
  std::size_t bytes_ = 0;
  void* data_ = nullptr;
};

/// Creates a backend. Device::automatic picks the first usable GPU, else the CPU (and reports the
/// reason through notice, when given). Device::cuda without a usable GPU throws InputError.
std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options = {}, std::string* notice = nullptr);

}  // namespace ember
