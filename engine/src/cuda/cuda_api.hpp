#pragma once
// What the rest of the engine sees of the CUDA backend: plain C++, no CUDA headers. Implemented in
// cuda_backend.cu, compiled only when the build has CUDA.
#include <memory>
#include <string>

#include "ember/backend.hpp"

namespace ember::cuda {

/// Empty when a GPU can be used; otherwise why not (no device, driver too old, ...).
std::string unavailable_reason();
/// Throws InputError when no GPU can be used.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);
/// One line per GPU: name, compute capability, memory; then driver and runtime versions.
std::string describe_devices();

}  // namespace ember::cuda
