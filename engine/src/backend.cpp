#include "ember/backend.hpp"

#include <fmt/format.h>

#include <utility>

#include "cpu/cpu_backend.hpp"
#include "ember/error.hpp"
#ifdef EMBER_WITH_CUDA
#include "cuda/cuda_api.hpp"
#endif

namespace ember {

void* Backend::allocate(std::size_t bytes) {
  void* pointer = do_allocate(bytes);
  ++allocation_count_;
  return pointer;
}

void Backend::deallocate(void* pointer) noexcept {
  if (pointer != nullptr) do_deallocate(pointer);
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
#ifdef EMBER_WITH_CUDA
  return cuda::unavailable_reason();
#else
  return "this build of Ember has no CUDA backend (configured with EMBER_CUDA=OFF or without nvcc)";
#endif
}

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options, std::string* notice) {
  if (device == Device::cpu) return std::make_unique<CpuBackend>();
  const std::string reason = cuda_unavailable_reason();
  if (reason.empty()) {
#ifdef EMBER_WITH_CUDA
    return cuda::make_backend(options);
#endif
  }
  if (device == Device::cuda)
    throw InputError(fmt::format("--device cuda: no usable GPU: {}; use --device cpu or --device auto", reason));
  if (notice != nullptr) *notice = fmt::format("no usable GPU ({}); running on the CPU", reason);
  (void)options;
  return std::make_unique<CpuBackend>();
}

std::string describe_devices() {
  std::string text = "backends: cpu (reference)";
  text += cuda_compiled() ? ", cuda\n" : "\n";
  text += "cpu: available\n";
#ifdef EMBER_WITH_CUDA
  text += cuda::describe_devices();
#else
  text += "cuda: " + cuda_unavailable_reason() + "\n";
#endif
  return text;
}

Device parse_device(const std::string& text) {
  if (text == "auto") return Device::automatic;
  if (text == "cpu") return Device::cpu;
  if (text == "cuda" || text == "gpu") return Device::cuda;
  throw InputError(fmt::format("unknown device '{}'; use auto, cpu or cuda", text));
}

std::string to_string(Device device) {
  switch (device) {
    case Device::automatic: return "auto";
    case Device::cpu: return "cpu";
    case Device::cuda: return "cuda";
  }
  return "?";
}

}  // namespace ember
