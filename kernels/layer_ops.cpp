#include "layer_ops.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace ember::kernels {
namespace {

// Filled by static initializers before any backend exists, read-only after: no lock.
std::map<std::string, LayerOpLaunch, std::less<>>& registry() {
  static std::map<std::string, LayerOpLaunch, std::less<>> launches;
  return launches;
}

}  // namespace

bool register_layer_op(const char* name, LayerOpLaunch launch) {
  if (!registry().emplace(name, launch).second) {
    std::fprintf(stderr, "ember: two CUDA kernels register the layer op %s\n", name);
    std::abort();
  }
  return true;
}

LayerOpLaunch find_layer_op(std::string_view name) {
  const auto found = registry().find(name);
  return found == registry().end() ? nullptr : found->second;
}

}  // namespace ember::kernels
