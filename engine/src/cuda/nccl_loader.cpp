// NCCL loaded at run time, by the CUDA plugin: only data-parallel runs on several GPUs use it, and
// a build with nccl.h must still run where libnccl is not installed (those ranks sum on the host).
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "cuda/nccl_util.hpp"
#include "ember/error.hpp"

namespace ember::cuda {

#ifdef EMBER_WITH_NCCL
namespace {

// NCCL 2's ABI; ncclRedOpCreatePreMulSum with a device scalar came in 2.11.
const std::string kLibrary = "libnccl.so." + std::to_string(NCCL_MAJOR);
constexpr int kOldest = NCCL_VERSION(2, 11, 0);

struct Loaded {
  NcclApi api{};
  std::string description;
};

template <typename Function>
void bind_symbol(void* library, const std::string& name, const char* symbol, Function& function) {
  function = reinterpret_cast<Function>(dlsym(library, symbol));
  if (function == nullptr)
    throw InputError(fmt::format("{} has no {}: it is not an NCCL {} library", name, symbol, NCCL_MAJOR));
}

Loaded load() {
  // EMBER_NCCL_LIBRARY names a file; otherwise the loader's paths, then where the build found NCCL.
  std::string name = kLibrary;
  if (const char* chosen = std::getenv("EMBER_NCCL_LIBRARY"); chosen != nullptr && *chosen != '\0') name = chosen;
  void* library = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef EMBER_NCCL_LIBRARY_DIR
  if (library == nullptr && name == kLibrary && std::string(EMBER_NCCL_LIBRARY_DIR) != "") {
    const std::string beside = std::string(EMBER_NCCL_LIBRARY_DIR) + "/" + kLibrary;
    if ((library = dlopen(beside.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) name = beside;
  }
#endif
  if (library == nullptr && name != kLibrary)
    throw InputError(
        fmt::format("NCCL could not be loaded from EMBER_NCCL_LIBRARY ({}); point it at a "
                    "libnccl.so.{} or unset it",
                    dlerror(), NCCL_MAJOR));
  if (library == nullptr)
    throw InputError(
        fmt::format("NCCL could not be loaded ({}); install NCCL {} (libnccl2) or set "
                    "EMBER_NCCL_LIBRARY to its file",
                    dlerror(), NCCL_MAJOR));
  Loaded loaded;
  NcclApi& api = loaded.api;
  bind_symbol(library, name, "ncclGetVersion", api.get_version);
  bind_symbol(library, name, "ncclGetUniqueId", api.get_unique_id);
  bind_symbol(library, name, "ncclCommInitRank", api.comm_init_rank);
  bind_symbol(library, name, "ncclCommDestroy", api.comm_destroy);
  bind_symbol(library, name, "ncclAllReduce", api.all_reduce);
  bind_symbol(library, name, "ncclRedOpCreatePreMulSum", api.red_op_create_pre_mul_sum);
  bind_symbol(library, name, "ncclRedOpDestroy", api.red_op_destroy);
  bind_symbol(library, name, "ncclGetErrorString", api.get_error_string);
  int version = 0;
  api.get_version(&version);
  const int major = version / 10000, minor = version / 100 % 100, patch = version % 100;
  if (version < kOldest)
    throw InputError(fmt::format("{} is NCCL {}.{}.{}; Ember needs 2.11 or newer", name, major, minor, patch));
  loaded.description = fmt::format("NCCL {}.{}.{} ({})", major, minor, patch, name);
  return loaded;  // the library stays loaded for the life of the process
}

const Loaded& loaded() {
  static const Loaded nccl = load();  // a failed load throws, and the next call tries again
  return nccl;
}

}  // namespace

const NcclApi& nccl() {
  return loaded().api;
}

std::string nccl_library() {
  return loaded().description;
}
#else
std::string nccl_library() {
  throw InputError(
      "this build of Ember has no NCCL (configured without nccl.h): GPU ranks sum through MPI on the host");
}
#endif

}  // namespace ember::cuda
