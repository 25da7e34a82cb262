// GPU discovery: whether a GPU can be used and, if not, why; the device report of `ember info`.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "cuda/cuda_api.hpp"
#include "kernels.hpp"

namespace ember::cuda {
namespace {

std::string version_text(int version) { return fmt::format("{}.{}", version / 1000, (version % 1000) / 10); }

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
  const std::string reason = unavailable_reason();
  text += reason.empty() ? "cuda: available\n" : "cuda: unavailable: " + reason + "\n";
  return text;
}

}  // namespace ember::cuda
