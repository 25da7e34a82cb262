// The second pass of the deterministic column sums (ordered_sum.hpp): one thread per column adds
// the chunks' partial sums in chunk order.
#include "cuda_check.hpp"
#include "launch.cuh"
#include "ordered_sum.hpp"

namespace ember::kernels {
namespace {

__global__ void sum_chunks_kernel(const float* __restrict__ partials, long long chunks, long long width,
                                  float* __restrict__ out, bool accumulate) {
  for (long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; j < width;
       j += static_cast<long long>(gridDim.x) * blockDim.x) {
    float total = 0.0f;
    for (long long c = 0; c < chunks; ++c) total += partials[c * width + j];
    out[j] = accumulate ? out[j] + total : total;
  }
}

}  // namespace

void launch_sum_chunks(const float* partials, std::int64_t chunks, std::int64_t width, float* out, bool accumulate,
                       const char* what, cudaStream_t stream) {
  if (width == 0) return;
  launch(sum_chunks_kernel, grid_for(width, 256), 256, 0, stream, partials, static_cast<long long>(chunks),
         static_cast<long long>(width), out, accumulate);
  check_launch("sum_chunks_kernel", [&] { return count_text(width, what); });
}

}  // namespace ember::kernels
