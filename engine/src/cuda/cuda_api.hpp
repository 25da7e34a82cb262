#pragma once
// What the rest of the engine sees of the CUDA backend: plain C++, no CUDA headers. Implemented in
// cuda_backend.cpp, cuda_devices.cpp and kernel_bench.cpp, compiled only when the build has CUDA.
#include <memory>
#include <string>

#include "ember/backend.hpp"
#include "ember/bench.hpp"

namespace ember::cuda {

/// Empty when a GPU can be used; otherwise why not (no device, driver too old, ...).
std::string unavailable_reason();
/// Throws InputError when no GPU can be used.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);
/// One line per GPU: name, compute capability, memory; then driver and runtime versions.
std::string describe_devices();
/// The kernel tables of `ember bench` (kernel_bench.cpp).
std::vector<bench::GemmRow> gemm_table(const bench::KernelTableOptions& options,
                                       const std::function<void(const bench::GemmRow&)>& on_row);
std::vector<bench::BandwidthRow> bandwidth_table(const bench::KernelTableOptions& options,
                                                 const std::function<void(const bench::BandwidthRow&)>& on_row);
std::vector<bench::TuningRow> tuning_table(const bench::KernelTableOptions& options,
                                           const std::function<void(const bench::TuningRow&)>& on_row);

}  // namespace ember::cuda
