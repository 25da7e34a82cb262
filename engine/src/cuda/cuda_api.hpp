#pragma once
// What the rest of the engine sees of the CUDA backend: plain C++, no CUDA headers. The backend
// lives in its own library, libember_cuda.so (cuda_backend.cpp, cuda_devices.cpp, kernel_bench.cpp,
// plugin.cpp and the kernels, with the CUDA runtime linked in statically), which backend.cpp loads
// at run time: the core library and the CLI have no link-time dependency on any CUDA library.
// The emulated test build (tests/emulator) links the same sources in instead.
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

/// The plugin's interface version: changed whenever this struct or what it passes changes.
inline constexpr int kPluginAbi = 1;

/// The plugin's functions, which the core library reaches through ember_cuda_plugin(). A plugin
/// is used only when abi is kPluginAbi and build is the core library's EMBER_BUILD_ID: both come
/// from one configuration of one source tree, so they agree on every type they pass. abi and build
/// come first in every version, so that any plugin can be asked them.
struct PluginApi {
  int abi;
  const char* build;
  std::string (*unavailable_reason)();
  std::unique_ptr<Backend> (*make_backend)(const BackendOptions&);
  std::string (*describe_devices)();
  std::vector<bench::GemmRow> (*gemm_table)(const bench::KernelTableOptions&,
                                            const std::function<void(const bench::GemmRow&)>&);
  std::vector<bench::BandwidthRow> (*bandwidth_table)(const bench::KernelTableOptions&,
                                                      const std::function<void(const bench::BandwidthRow&)>&);
  std::vector<bench::TuningRow> (*tuning_table)(const bench::KernelTableOptions&,
                                                const std::function<void(const bench::TuningRow&)>&);
};

/// The table of the functions above, as plugin.cpp fills it (the plugin returns it; the emulated
/// build uses it directly).
const PluginApi& plugin_api();

/// The plugin as the core library found it, once per process: api when it can be used, otherwise
/// reason says why not; path is the file tried (empty when the backend is linked in).
struct PluginLookup {
  const PluginApi* api = nullptr;
  std::string reason;
  std::string path;
};
/// plugin_loader.cpp in the library; the emulated build's linked table in tests/emulator.
const PluginLookup& find_plugin();

}  // namespace ember::cuda

/// The plugin's one exported symbol.
extern "C" const ember::cuda::PluginApi* ember_cuda_plugin();
