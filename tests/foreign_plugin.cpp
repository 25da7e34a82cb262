// A CUDA plugin of another build of Ember: the entry point and the interface version are right, the
// build identity is not, so the library must refuse it (plugin_test.cpp).
#include "cuda/cuda_api.hpp"

extern "C" __attribute__((visibility("default"))) const ember::cuda::PluginApi* ember_cuda_plugin() {
  static const ember::cuda::PluginApi api{
      ember::cuda::kPluginAbi, "another-build", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  return &api;
}
