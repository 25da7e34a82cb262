// cuBLAS loaded at run time, by the CUDA plugin: only `BackendOptions::matmul cublas` and the
// benchmarks' yardstick use it, and a run on Ember's own kernels should not pay for mapping it.
#include <dlfcn.h>

#include <string>

#include "cuda/cublas_util.hpp"

namespace ember::cuda {
namespace {

// The library of the toolkit Ember was built with: another major version has another ABI.
const std::string kLibrary = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);

template <typename Function>
void bind(void* library, const char* symbol, Function& function) {
  function = reinterpret_cast<Function>(dlsym(library, symbol));
  if (function == nullptr)
    throw InputError(
        fmt::format("{} has no {}: it is not the cuBLAS {} Ember was built with", kLibrary, symbol, CUBLAS_VER_MAJOR));
}

CublasApi load() {
  void* library = dlopen(kLibrary.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr)
    throw InputError(
        fmt::format("cuBLAS could not be loaded ({}); it is needed only for BackendOptions::matmul "
                    "cublas and the benchmarks: install the CUDA {} libraries or use Ember's kernels",
                    dlerror(), CUBLAS_VER_MAJOR));
  // The exported names: cublas_v2.h's macros map cublasCreate to cublasCreate_v2 and so on.
  CublasApi api{};
  bind(library, "cublasCreate_v2", api.create);
  bind(library, "cublasDestroy_v2", api.destroy);
  bind(library, "cublasSetStream_v2", api.set_stream);
  bind(library, "cublasSetMathMode", api.set_math_mode);
  bind(library, "cublasSetWorkspace_v2", api.set_workspace);
  bind(library, "cublasSgemm_v2", api.sgemm);
  bind(library, "cublasGetStatusString", api.get_status_string);
  return api;  // the library stays loaded for the life of the process
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();  // a failed load throws, and the next call tries again
  return api;
}

}  // namespace ember::cuda
