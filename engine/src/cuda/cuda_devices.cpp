// GPU discovery: whether a GPU can be used and, if not, why; the device report of `ember info`.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "cuda/cuda_api.hpp"
#include "cuda/nccl_util.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::cuda {
namespace {

std::string version_text(int version) {
  return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

}  // namespace

std::string unavailable_reason() {
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  if (driver == 0) return "no NVIDIA driver is installed";
  if (driver < runtime)
    return fmt::format("the NVIDIA driver supports CUDA {} but Ember was built with CUDA {}; update the driver",
                       version_text(driver), version_text(runtime));
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("no CUDA device ({})", cudaGetErrorString(status));
  }
  if (count == 0) return "no CUDA device found";
  return kernels::kernel_image_problem();
}

std::string describe_devices() {
  int driver = 0, runtime = 0, count = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::string text = fmt::format("cuda: runtime {}, driver {}\n", version_text(runtime),
                                 driver == 0 ? std::string("not installed") : version_text(driver));
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    text += fmt::format("cuda:{}: {}, compute capability {}.{}, {:.1f} GiB, {} SMs\n", d, p.name, p.major, p.minor,
                        p.totalGlobalMem / 1073741824.0, p.multiProcessorCount);
  }
  // What GPU ranks of a data-parallel run sum their gradients with.
  try {
    text += "nccl: " + nccl_library() + "\n";
  } catch (const InputError& error) {
    text += std::string("nccl: unavailable: ") + error.what() + "\n";
  }
  const std::string reason = unavailable_reason();
  if (!reason.empty()) return text + "cuda: unavailable: " + reason + "\n";
  // The TF32 matmul (--precision tf32) on cuda:0, the device Ember uses.
  EMBER_CUDA_CHECK(cudaSetDevice(0));
  const char* tf32 = !kernels::tf32_matmul_available() ? "unavailable (compute capability 8.0 or newer needed)"
                     : kernels::wgmma_matmul_ready()   ? "wgmma and mma.sync tensor-core kernels"
                                                       : "mma.sync tensor-core kernels";
  return text + "cuda: available; TF32 matmul: " + tf32 + "\n";
}

}  // namespace ember::cuda
