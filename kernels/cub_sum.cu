// The yardstick of the MSE reduction in `ember bench`: CUB's DeviceReduce::Sum over the same bytes.
// Kept in its own file: CUB's headers are the slowest to compile of the build.
#include <cub/device/device_reduce.cuh>

#include "cuda_check.hpp"
#include "kernels.hpp"

namespace ember::kernels {

std::size_t cub_sum_scratch_bytes(std::int64_t count) {
  std::size_t bytes = 0;
  EMBER_CUDA_CHECK(
      cub::DeviceReduce::Sum(nullptr, bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr), count));
  return bytes;
}

void launch_cub_sum(const float* x, std::int64_t count, float* sum, void* scratch, std::size_t scratch_bytes,
                    cudaStream_t stream) {
  EMBER_CUDA_CHECK(cub::DeviceReduce::Sum(scratch, scratch_bytes, x, sum, count, stream));
}

}  // namespace ember::kernels
