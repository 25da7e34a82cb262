// The emulated build links the CUDA backend in instead of loading it as a plugin: its function
// table and the emulator's cuBLAS and NCCL are reached directly (plugin_loader.cpp, cublas_loader.cpp
// and nccl_loader.cpp are what the library uses).
#include "cuda/cublas_util.hpp"
#include "cuda/cuda_api.hpp"
#include "cuda/nccl_util.hpp"

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

const NcclApi& nccl() {
  static const NcclApi api{&ncclGetVersion, &ncclGetUniqueId,          &ncclCommInitRank, &ncclCommDestroy,
                           &ncclAllReduce,  &ncclRedOpCreatePreMulSum, &ncclRedOpDestroy, &ncclGetErrorString};
  return api;
}

std::string nccl_library() {
  return "NCCL 2.28.9 (the emulator's, one rank)";
}

}  // namespace ember::cuda
