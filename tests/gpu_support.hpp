#pragma once
// GPU test helpers: a CUDA backend or a skip with the reason, and host <-> backend matrices.
#include <gtest/gtest.h>

#include <memory>

#include "ember/backend.hpp"
#include "test_support.hpp"

namespace ember::testing {

/// The CUDA backend, or nullptr with the reason no GPU is usable.
inline std::unique_ptr<Backend> cuda_backend_or_reason(std::string& reason, const BackendOptions& options = {}) {
  reason = cuda_unavailable_reason();
  if (!reason.empty()) return nullptr;
  return make_backend(Device::cuda, options);
}

#define EMBER_REQUIRE_GPU(backend_variable, ...)                                                                \
  std::string gpu_skip_reason;                                                                                  \
  auto backend_variable = ::ember::testing::cuda_backend_or_reason(gpu_skip_reason __VA_OPT__(, ) __VA_ARGS__); \
  if (!backend_variable) GTEST_SKIP() << "no usable GPU: " << gpu_skip_reason

/// A matrix living in backend memory.
struct OnBackend {
  OnBackend(Backend& backend, const Matrix& host)
      : backend(&backend),
        buffer(backend, std::max<std::size_t>(4, host.size() * sizeof(float))),
        rows(host.rows()),
        cols(host.cols()) {
    backend.copy_to_device(buffer.data(), host.data(), static_cast<std::size_t>(host.size()) * sizeof(float));
  }
  View view() const { return {static_cast<float*>(buffer.data()), rows, cols}; }
  Matrix download() const {
    Matrix host(rows, cols);
    backend->copy_to_host(host.data(), buffer.data(), static_cast<std::size_t>(host.size()) * sizeof(float));
    return host;
  }
  Backend* backend;
  Buffer buffer;
  std::int64_t rows, cols;
};

}  // namespace ember::testing
