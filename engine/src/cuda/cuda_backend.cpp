// The CUDA backend (host code, built by the C++ compiler): Ember's kernels (or cuBLAS for matmul) on one stream, memory
// from cudaMalloc, and each training step captured once per shape as a CUDA graph and replayed.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <map>
#include <optional>
#include <utility>

#include "activation_math.hpp"
#include "cuda/cublas_util.hpp"
#include "cuda/cuda_api.hpp"
#include "cuda/nccl_util.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "layer_ops.hpp"
#include "shape_checks.hpp"

namespace ember::cuda {
namespace {

constexpr std::size_t kCublasWorkspaceBytes = 32u << 20;  // preset, so cuBLAS never allocates during capture

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& options)
      : options_(options),
        precision_(options.precision == Precision::tf32 ? kernels::MatmulPrecision::tf32
                                                        : kernels::MatmulPrecision::fp32) {
    EMBER_CUDA_CHECK(cudaSetDevice(0));
    // The kernels' device queries, cached now so that none happens inside a graph capture.
    kernels::multiprocessor_count();
    const bool tf32_available = kernels::tf32_matmul_available();
    if (precision_ == kernels::MatmulPrecision::tf32 && !tf32_available)
      throw InputError(
          "BackendOptions::precision tf32 needs a GPU of compute capability 8.0 or newer; use "
          "BackendOptions::precision fp32");
    cudaDeviceProp properties{};
    EMBER_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
    name_ = fmt::format("cuda:0 ({})", properties.name);
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    if (options_.matmul == MatmulProvider::cublas) {
      // Only now is cuBLAS loaded; created here, never during a graph capture.
      cublas_.emplace(stream_, precision_ == kernels::MatmulPrecision::tf32);
      EMBER_CUDA_CHECK(cudaMalloc(&cublas_workspace_, kCublasWorkspaceBytes));
      EMBER_CUBLAS_CHECK(cublas().set_workspace(cublas_->get(), cublas_workspace_, kCublasWorkspaceBytes));
    }
    EMBER_CUDA_CHECK(
        cudaMalloc(reinterpret_cast<void**>(&reduction_scratch_), kernels::kReductionScratchFloats * sizeof(float)));
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking));
    EMBER_CUDA_CHECK(
        cudaMalloc(reinterpret_cast<void**>(&side_scratch_), kernels::kReductionScratchFloats * sizeof(float)));
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&gather_done_), sizeof(unsigned)));
    EMBER_CUDA_CHECK(cudaMemsetAsync(gather_done_, 0, sizeof(unsigned), stream_));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ~CudaBackend() override {
    // Destructors must not throw: release what exists, ignoring errors (a failed GPU is reported elsewhere).
    for (auto& [key, graph] : graphs_) cudaGraphExecDestroy(graph);
    cublas_.reset();
    if (cublas_workspace_ != nullptr) cudaFree(cublas_workspace_);
    if (reduction_scratch_ != nullptr) cudaFree(reduction_scratch_);
    if (side_scratch_ != nullptr) cudaFree(side_scratch_);
    if (gather_done_ != nullptr) cudaFree(gather_done_);
    if (fork_ != nullptr) cudaEventDestroy(fork_);
    if (join_ != nullptr) cudaEventDestroy(join_);
    if (side_stream_ != nullptr) cudaStreamDestroy(side_stream_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }
  Device device() const override { return Device::cuda; }

  void copy_to_device(void* destination, const void* source, std::size_t bytes) override {
    if (bytes == 0) return;
    EMBER_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyHostToDevice, stream_));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host buffer may be reused when this returns
  }
  void copy_to_host(void* destination, const void* source, std::size_t bytes) override {
    if (bytes == 0) return;
    EMBER_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToHost, stream_));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void synchronize() override { EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  void matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b, float beta,
              View c) override {
    const MatmulShape shape = check_matmul(transpose_a, transpose_b, a, b, c);
    const bool ta = transpose_a == Transpose::yes, tb = transpose_b == Transpose::yes;
    if (shape.m == 0 || shape.n == 0) return;
    if (options_.matmul == MatmulProvider::cublas) {
      cublas_sgemm_row_major(cublas_->get(), ta, tb, static_cast<int>(shape.m), static_cast<int>(shape.n),
                             static_cast<int>(shape.k), alpha, a.data, static_cast<int>(a.cols), b.data,
                             static_cast<int>(b.cols), beta, c.data, static_cast<int>(c.cols));
      return;
    }
    launch_ember_matmul(ta, tb, shape, a, b, c, {.kind = kernels::EpilogueKind::linear, .alpha = alpha, .beta = beta});
  }
  void dense_forward(ConstView x, ConstView weight, ConstView bias, Activation activation, View y,
                     std::optional<View> pre_activation) override {
    if (options_.matmul == MatmulProvider::cublas)
      return Backend::dense_forward(x, weight, bias, activation, y, pre_activation);
    const MatmulShape shape = check_matmul(Transpose::no, Transpose::yes, x, weight, y);
    check_bias(y, bias, "dense_forward");
    if (pre_activation) check_same_shape(y, *pre_activation, "dense_forward");
    // ReLU (whose backward reads only y) fuses into the matmul's epilogue; another activation
    // follows as an elementwise kernel, from the pre-activation where backward keeps it.
    const bool fused = activation == Activation::relu && !pre_activation;
    const View z = pre_activation.value_or(y);
    launch_ember_matmul(
        false, true, shape, x, weight, z,
        {.kind = fused ? kernels::EpilogueKind::bias_relu : kernels::EpilogueKind::bias, .bias = bias.data});
    if (!fused && (activation != Activation::linear || z.data != y.data))
      kernels::launch_activation_forward(activation, z.data, y.data, y.size(), stream_);
  }
  void dense_input_gradient(ConstView dy, ConstView weight, std::optional<ConstView> relu_output, View dx) override {
    if (options_.matmul == MatmulProvider::cublas || !relu_output)
      return Backend::dense_input_gradient(dy, weight, relu_output, dx);
    const MatmulShape shape = check_matmul(Transpose::no, Transpose::no, dy, weight, dx);
    check_same_shape(*relu_output, dx, "dense_input_gradient");
    launch_ember_matmul(false, false, shape, dy, weight, dx,
                        {.kind = kernels::EpilogueKind::relu_mask, .mask = relu_output->data});
  }
  void dense_backward(ConstView dy, ConstView x, ConstView weight, std::optional<ConstView> relu_output,
                      View weight_gradient, View bias_gradient, std::optional<View> dx) override {
    if (options_.matmul == MatmulProvider::cublas)
      return Backend::dense_backward(dy, x, weight, relu_output, weight_gradient, bias_gradient, dx);
    const MatmulShape shape = check_matmul(Transpose::yes, Transpose::no, dy, x, weight_gradient);
    check_bias(dy, bias_gradient, "dense_backward");
    if (dx) {  // checked before the fork, so that no error leaves the side stream unjoined
      check_matmul(Transpose::no, Transpose::no, dy, weight, *dx);
      if (relu_output) check_same_shape(*relu_output, *dx, "dense_backward");
    }
    // With an input gradient to compute as well, the parameter gradients fork onto the side stream
    // (its own scratch) and join back before returning: two branches of a captured graph.
    cudaStream_t parameter_stream = stream_;
    float* parameter_scratch = reduction_scratch_;
    if (dx) {
      EMBER_CUDA_CHECK(cudaEventRecord(fork_, stream_));
      EMBER_CUDA_CHECK(cudaStreamWaitEvent(side_stream_, fork_, 0));
      parameter_stream = side_stream_;
      parameter_scratch = side_scratch_;
    }
    launch_ember_matmul(true, false, shape, dy, x, weight_gradient,
                        {.kind = kernels::EpilogueKind::linear, .row_sums = bias_gradient.data}, parameter_stream,
                        parameter_scratch);
    if (!dx) return;
    dense_input_gradient(dy, weight, relu_output, *dx);
    EMBER_CUDA_CHECK(cudaEventRecord(join_, side_stream_));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(stream_, join_, 0));
  }
  void bias_add(View y, ConstView bias) override {
    check_bias(y, bias, "bias_add");
    kernels::launch_bias_add(y.data, bias.data, y.rows, y.cols, stream_);
  }
  void bias_gradient(ConstView dy, View bias_gradient) override {
    check_bias(dy, bias_gradient, "bias_gradient");
    kernels::launch_bias_gradient(dy.data, bias_gradient.data, dy.rows, dy.cols, reduction_scratch_, stream_);
  }
  void activation_forward(Activation kind, ConstView x, View y) override {
    check_same_shape(x, y, "activation_forward");
    kernels::launch_activation_forward(kind, x.data, y.data, x.size(), stream_);
  }
  void activation_backward(Activation kind, ConstView dy, ConstView x, ConstView y, View dx) override {
    check_same_shape(dy, y, "activation_backward");
    check_same_shape(dy, dx, "activation_backward");
    const bool needs_input = activations::needs_input(kind);
    if (needs_input) check_same_shape(dy, x, "activation_backward");
    kernels::launch_activation_backward(kind, dy.data, needs_input ? x.data : nullptr, y.data, dx.data, dy.size(),
                                        stream_);
  }
  void clip_by_norm(float* values, std::int64_t count, float max_norm) override {
    check_clip(count, max_norm);
    kernels::launch_clip_by_norm(values, count, max_norm, reduction_scratch_, stream_);
  }
  void optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                        std::int64_t region, std::int64_t count, const OptimizerScalars* scalars) override {
    check_optimizer(optimizer);
    kernels::launch_optimizer_update(optimizer, weights, gradients, state, region, count, scalars, stream_);
  }
  void fill(View y, float value) override { kernels::launch_fill(y.data, y.size(), value, stream_); }
  void copy(ConstView source, View destination) override {
    check_same_shape(source, destination, "copy");
    if (source.size() == 0) return;
    EMBER_CUDA_CHECK(cudaMemcpyAsync(destination.data, source.data,
                                     static_cast<std::size_t>(source.size()) * sizeof(float), cudaMemcpyDeviceToDevice,
                                     stream_));
  }
  void gather_rows(ConstView source, const std::int32_t* indices, const std::int32_t* cursor,
                   View destination) override {
    check_gather(source, destination);
    kernels::launch_gather_rows(source.data, source.rows, source.cols, indices, cursor, destination.data,
                                destination.rows, stream_);
  }
  void scale_rows(ConstView scales, View values) override {
    check_scale_rows(scales, values);
    kernels::launch_scale_rows(scales.data, values.data, values.rows, values.cols, stream_);
  }
  void advance_cursor(std::int32_t* cursor, std::int32_t amount) override {
    kernels::launch_advance_cursor(cursor, amount, stream_);
  }
  void gather_batch(ConstView x, ConstView y, const std::int32_t* indices, std::int32_t* cursor, View x_batch,
                    View y_batch) override {
    check_gather(x, x_batch);
    check_gather(y, y_batch);
    check_batch(x, y, x_batch, y_batch);
    kernels::launch_gather_batch(x.data, y.data, x.rows, x.cols, y.cols, indices, cursor, x_batch.data, y_batch.data,
                                 x_batch.rows, gather_done_, stream_);
  }

  void run_step(std::uint64_t owner, std::uint64_t shape_key, const std::function<void()>& step) override {
    if (!options_.cuda_graph) {
      step();
      return;
    }
    const auto key = std::make_pair(owner, shape_key);
    auto found = graphs_.find(key);
    if (found == graphs_.end()) {
      cudaGraph_t graph = nullptr;
      EMBER_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      try {
        step();
      } catch (...) {
        cudaStreamEndCapture(stream_, &graph);  // leave the stream usable, then report the first error
        if (graph != nullptr) cudaGraphDestroy(graph);
        throw;
      }
      EMBER_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      EMBER_CUDA_CHECK(status);
      found = graphs_.emplace(key, exec).first;
    }
    EMBER_CUDA_CHECK(cudaGraphLaunch(found->second, stream_));
  }

  void forget_steps(std::uint64_t owner) noexcept override {
    for (auto it = graphs_.begin(); it != graphs_.end();) {
      if (it->first.first == owner) {
        cudaGraphExecDestroy(it->second);
        it = graphs_.erase(it);
      } else {
        ++it;
      }
    }
  }

  CollectiveSupport collective_support() override {
    CollectiveSupport support;
    try {
      support.library = nccl_library();
    } catch (const InputError& error) {
      support.unavailable_reason = error.what();
    }
    cudaDeviceProp properties{};
    EMBER_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
    for (const char byte : properties.uuid.bytes)
      support.device += fmt::format("{:02x}", static_cast<unsigned char>(byte));
    return support;
  }
  std::size_t memory_bytes() const override {
    std::size_t free_bytes = 0, total_bytes = 0;
    return cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess ? total_bytes : 0;
  }
  std::vector<std::uint8_t> new_collective_id() override { return new_nccl_id(); }
  std::unique_ptr<DeviceCollective> join_collective(const std::vector<std::uint8_t>& id, int rank, int ranks) override {
    return join_nccl(id, rank, ranks, stream_);
  }

 protected:
  void run_layer_op(const LayerOp& op, const OpArgs& args) override {
    const kernels::LayerOpLaunch launch = kernels::find_layer_op(op.name);
    if (launch == nullptr)
      throw Error(
          fmt::format("the CUDA backend has no kernel for the op {} (kernels/layers/ registers none)", op.name));
    OpArgs with_scratch = args;
    with_scratch.scratch = reduction_scratch_;
    launch(with_scratch, stream_);
  }
  void* do_allocate(std::size_t bytes) override {
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, bytes == 0 ? 256 : bytes);
    if (status != cudaSuccess) {
      cudaGetLastError();
      std::size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      throw Error(
          fmt::format("out of GPU memory allocating {:.1f} MiB ({:.1f} of {:.1f} MiB free): {}; use a smaller "
                      "batch size or model",
                      bytes / 1048576.0, free_bytes / 1048576.0, total_bytes / 1048576.0, cudaGetErrorString(status)));
    }
    return pointer;
  }
  void do_deallocate(void* pointer) noexcept override {
    cudaStreamSynchronize(stream_);  // work queued on this memory must finish first
    cudaFree(pointer);
  }

 private:
  /// Ember's matmul on the given stream and scratch (by default the backend's own).
  void launch_ember_matmul(bool ta, bool tb, const MatmulShape& shape, ConstView a, ConstView b, View c,
                           const kernels::MatmulEpilogue& epilogue, cudaStream_t stream = nullptr,
                           float* scratch = nullptr) {
    kernels::launch_matmul(ta, tb, static_cast<int>(shape.m), static_cast<int>(shape.n), static_cast<int>(shape.k),
                           a.data, static_cast<int>(a.cols), b.data, static_cast<int>(b.cols), c.data,
                           static_cast<int>(c.cols), epilogue, stream != nullptr ? stream : stream_, precision_,
                           scratch != nullptr ? scratch : reduction_scratch_);
  }

  BackendOptions options_;
  kernels::MatmulPrecision precision_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::optional<CublasHandle> cublas_;  // with BackendOptions::matmul cublas only
  void* cublas_workspace_ = nullptr;
  float* reduction_scratch_ = nullptr;  // the reductions' partial sums (losses, bias gradients, split k)
  // dense_backward's second branch: the parameter gradients run there beside the input gradient.
  cudaStream_t side_stream_ = nullptr;
  float* side_scratch_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  unsigned* gather_done_ = nullptr;  // gather_batch's block count, zero between launches
  std::map<std::pair<std::uint64_t, std::uint64_t>, cudaGraphExec_t> graphs_;
};

}  // namespace

std::unique_ptr<Backend> make_backend(const BackendOptions& options) {
  const std::string reason = unavailable_reason();
  if (!reason.empty()) throw InputError(fmt::format("Device::cuda: no usable GPU: {}; use Device::cpu", reason));
  return std::make_unique<CudaBackend>(options);
}

}  // namespace ember::cuda
