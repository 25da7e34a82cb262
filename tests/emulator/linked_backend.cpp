// The emulated build links the CUDA backend in instead of loading it as a plugin: its function
// table and the emulator's cuBLAS are reached directly (plugin_loader.cpp and cublas_loader.cpp are
// what the library uses).
#include "cuda/cublas_util.hpp"
#include "cuda/cuda_api.hpp"

namespace ember::cuda {

const PluginLookup& find_plugin() {
  static const PluginLookup found{&plugin_api(), "", ""};
  return found;
}

const CublasApi& cublas() {
  static const CublasApi api{&cublasCreate,       &cublasDestroy, &cublasSetStream,      &cublasSetMathMode,
                             &cublasSetWorkspace, &cublasSgemm,   &cublasGetStatusString};
  return api;
}

}  // namespace ember::cuda
