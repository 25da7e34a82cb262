// What the CPU emulator does not run: CUB's reduction (the yardstick of `ember bench`'s MSE row),
// which is a plain loop here.
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {
namespace {

__global__ void plain_sum_kernel(const float* x, long long count, float* sum) {
  double total = 0;
  for (long long i = 0; i < count; ++i) total += x[i];
  *sum = static_cast<float>(total);
}

}  // namespace

std::size_t cub_sum_scratch_bytes(std::int64_t) {
  return 256;
}

void launch_cub_sum(const float* x, std::int64_t count, float* sum, void*, std::size_t, cudaStream_t stream) {
  launch(plain_sum_kernel, 1, 1, 0, stream, x, count, sum);
}

}  // namespace ember::kernels
