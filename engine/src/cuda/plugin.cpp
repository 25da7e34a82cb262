// The CUDA plugin's entry point (cuda_api.hpp): its functions, and the build they come from.
#include "cuda/cuda_api.hpp"

#ifndef EMBER_BUILD_ID
#error "EMBER_BUILD_ID names the configuration the plugin and the core library come from"
#endif

namespace ember::cuda {

const PluginApi& plugin_api() {
  static const PluginApi api{kPluginAbi,        EMBER_BUILD_ID, &unavailable_reason, &make_backend,
                             &describe_devices, &gemm_table,    &bandwidth_table,    &tuning_table};
  return api;
}

}  // namespace ember::cuda

extern "C" __attribute__((visibility("default"))) const ember::cuda::PluginApi* ember_cuda_plugin() {
  return &ember::cuda::plugin_api();
}
