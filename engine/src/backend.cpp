#include "ember/backend.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <utility>

#include "cpu/cpu_backend.hpp"
#include "cpu/fast_cpu_backend.hpp"
#include "cuda/cuda_api.hpp"
#include "ember/data.hpp"
#include "ember/error.hpp"

namespace ember {

void* Backend::allocate(std::size_t bytes) {
  void* pointer = do_allocate(bytes);
  ++allocation_count_;
  return pointer;
}

void Backend::deallocate(void* pointer) noexcept {
  if (pointer != nullptr) do_deallocate(pointer);
}

std::size_t Backend::memory_bytes() const {
  // Physical memory, capped by a container's cgroup limit (v2, then v1; "max" means none).
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  std::size_t bytes = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  for (const char* limit_file : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream file(limit_file);
    std::size_t limit = 0;
    if (file >> limit && limit > 0 && (bytes == 0 || limit < bytes)) bytes = limit;
  }
  return bytes;
}

void Backend::dense_forward(ConstView x, ConstView weight, ConstView bias, Activation activation, View y,
                            std::optional<View> pre_activation) {
  const View z = pre_activation.value_or(y);
  matmul(Transpose::no, Transpose::yes, 1.0f, x, weight, 0.0f, z);
  bias_add(z, bias);
  if (activation != Activation::linear || z.data != y.data) activation_forward(activation, z, y);
}

void Backend::dense_input_gradient(ConstView dy, ConstView weight, std::optional<ConstView> relu_output, View dx) {
  matmul(Transpose::no, Transpose::no, 1.0f, dy, weight, 0.0f, dx);
  if (relu_output) activation_backward(Activation::relu, dx, {}, *relu_output, dx);
}

void Backend::dense_backward(ConstView dy, ConstView x, ConstView weight, std::optional<ConstView> relu_output,
                             View weight_gradient, View bias_gradient, std::optional<View> dx) {
  matmul(Transpose::yes, Transpose::no, 1.0f, dy, x, 0.0f, weight_gradient);
  this->bias_gradient(dy, bias_gradient);  // the member function, which the parameter's name hides
  if (dx) dense_input_gradient(dy, weight, relu_output, *dx);
}

void Backend::dense_parameter_gradients(ConstView, ConstView, ConstView, View, View) {
  throw Error(fmt::format("dense_parameter_gradients: the {} backend is not row-invariant", name()));
}

void Backend::gather_batch(ConstView x, ConstView y, const std::int32_t* indices, std::int32_t* cursor, View x_batch,
                           View y_batch) {
  gather_rows(x, indices, cursor, x_batch);
  gather_rows(y, indices, cursor, y_batch);
  advance_cursor(cursor, static_cast<std::int32_t>(x_batch.rows));
}

CollectiveSupport Backend::collective_support() {
  CollectiveSupport support;
  support.unavailable_reason = fmt::format("the {} backend has no collectives of its own", name());
  return support;
}

std::vector<std::uint8_t> Backend::new_collective_id() {
  throw Error(collective_support().unavailable_reason);
}

std::unique_ptr<DeviceCollective> Backend::join_collective(const std::vector<std::uint8_t>&, int, int) {
  throw Error(collective_support().unavailable_reason);
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    backend_ = std::exchange(other.backend_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

void Buffer::release() noexcept {
  if (backend_ != nullptr) backend_->deallocate(data_);
  backend_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

bool cuda_compiled() {
#ifdef EMBER_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::string cuda_unavailable_reason() {
  const cuda::PluginLookup& plugin = cuda::find_plugin();
  return plugin.api != nullptr ? plugin.api->unavailable_reason() : plugin.reason;
}

namespace {

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options, std::string* notice) {
  if (options.precision == Precision::tf32 && notice != nullptr)
    *notice =
        fmt::format("{}{}TF32 applies to the GPU; the CPU computes in FP32", *notice, notice->empty() ? "" : "; ");
  if (options.cpu_reference) return std::make_unique<CpuBackend>();
  return std::make_unique<FastCpuBackend>(options.row_invariant);
}

}  // namespace

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options, std::string* notice) {
  if (device == Device::cpu) return make_cpu_backend(options, notice);
  const std::string reason = cuda_unavailable_reason();
  if (reason.empty()) return cuda::find_plugin().api->make_backend(options);
  if (device == Device::cuda)
    throw InputError(fmt::format("no usable GPU for Device::cuda: {}; use Device::cpu or Device::automatic", reason));
  if (notice != nullptr) *notice = fmt::format("no usable GPU ({}); running on the CPU", reason);
  return make_cpu_backend(options, notice);
}

std::string cpu_matmul_library() {
  return FastCpuBackend::matmul_library();
}

std::string describe_devices() {
  std::string text = fmt::format("backends: cpu ({}), cpu-reference", FastCpuBackend::matmul_library());
  text += cuda_compiled() ? ", cuda\n" : "\n";
  text += "cpu: available\n";
  const cuda::PluginLookup& plugin = cuda::find_plugin();
  if (plugin.api == nullptr) return text + "cuda: unavailable: " + plugin.reason + "\n";
  if (!plugin.path.empty()) text += "cuda: plugin " + plugin.path + "\n";
  return text + plugin.api->describe_devices();
}

Device parse_device(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "auto") return Device::automatic;
  if (lower == "cpu") return Device::cpu;
  if (lower == "cuda" || lower == "gpu") return Device::cuda;
  throw InputError(fmt::format("unknown device '{}'; use auto, cpu or cuda", printable(text)));
}

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "tf32") return Precision::tf32;
  throw InputError(fmt::format("BackendOptions::precision {}: use fp32 or tf32", text));
}

std::string to_string(Device device) {
  switch (device) {
    case Device::automatic:
      return "auto";
    case Device::cpu:
      return "cpu";
    case Device::cuda:
      return "cuda";
  }
  return "?";
}

}  // namespace ember
