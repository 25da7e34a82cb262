// Finds, loads and checks the CUDA plugin (cuda_api.hpp). Part of the core library in every build:
// it names no CUDA library, so a machine without them runs Ember on the CPU and says why the GPU is
// unusable. A CPU-only build has no plugin to look for.
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cuda/cuda_api.hpp"

namespace ember::cuda {
#ifdef EMBER_WITH_CUDA
#if !defined(EMBER_BUILD_ID) || !defined(EMBER_CUDA_PLUGIN_FILE)
#error "EMBER_BUILD_ID and EMBER_CUDA_PLUGIN_FILE come from engine/CMakeLists.txt"
#endif
namespace {

/// The plugin beside the core library: the directory libember was loaded from.
std::string default_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&find_plugin), &info) == 0 || info.dli_fname == nullptr)
    return EMBER_CUDA_PLUGIN_FILE;
  return (std::filesystem::path(info.dli_fname).parent_path() / EMBER_CUDA_PLUGIN_FILE).lexically_normal().string();
}

PluginLookup load() {
  PluginLookup found;
  const char* variable = std::getenv("EMBER_CUDA_PLUGIN");
  const bool from_variable = variable != nullptr && *variable != '\0';
  found.path = from_variable ? variable : default_path();
  void* library = dlopen(found.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    // dlerror names the file, or the library it needs that is missing.
    found.reason = fmt::format("the CUDA plugin could not be loaded: {}{}", dlerror(),
                               from_variable ? " (the file EMBER_CUDA_PLUGIN names)"
                                             : "; install " EMBER_CUDA_PLUGIN_FILE
                                               " beside libember or set EMBER_CUDA_PLUGIN to its path");
    return found;
  }
  using Entry = const PluginApi* (*)();
  const auto entry = reinterpret_cast<Entry>(dlsym(library, "ember_cuda_plugin"));
  const PluginApi* api = entry != nullptr ? entry() : nullptr;
  if (api == nullptr) {
    found.reason = fmt::format("{} is not an Ember CUDA plugin (it has no ember_cuda_plugin)", found.path);
  } else if (api->abi != kPluginAbi || std::strcmp(api->build, EMBER_BUILD_ID) != 0) {
    found.reason = fmt::format(
        "the CUDA plugin {} comes from another build of Ember (build {}, interface {}; this library is build {}, "
        "interface {}): install the plugin built with this library",
        found.path, api->build, api->abi, EMBER_BUILD_ID, kPluginAbi);
  } else {
    found.api = api;
    return found;  // loaded for the life of the process
  }
  dlclose(library);
  return found;
}

}  // namespace

const PluginLookup& find_plugin() {
  static const PluginLookup found = load();
  return found;
}
#else
const PluginLookup& find_plugin() {
  static const PluginLookup found{
      nullptr, "this build of Ember has no CUDA backend (configured with EMBER_CUDA=OFF or without nvcc)", ""};
  return found;
}
#endif

}  // namespace ember::cuda
