// What the CPU emulator does not run: the wgmma kernel (sm_90a asynchronous warpgroup MMA, its
// operands read from shared memory by descriptor) and CUB's reduction. wgmma is reported absent,
// so TF32 products take the mma.sync kernel, which is emulated; CUB's sum, the yardstick of
// `ember bench`, is a plain loop here.
#include <stdexcept>

#include "matmul_tiles.cuh"

namespace ember::kernels {
namespace {

__global__ void plain_sum_kernel(const float* x, long long count, float* sum) {
  double total = 0;
  for (long long i = 0; i < count; ++i) total += x[i];
  *sum = static_cast<float>(total);
}

}  // namespace

bool wgmma_matmul_ready() { return false; }

template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_matmul_wgmma(const MatmulArgs&, cudaStream_t, bool) {
  throw std::logic_error("the CUDA emulator has no wgmma kernel (wgmma_matmul_ready() is false)");
}

template const char* launch_matmul_wgmma<false, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<true, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<true, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, true, EpilogueKind::bias>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, true, EpilogueKind::bias_relu>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, false, EpilogueKind::relu_mask>(const MatmulArgs&, cudaStream_t, bool);

std::size_t cub_sum_scratch_bytes(std::int64_t) { return 256; }

void launch_cub_sum(const float* x, std::int64_t count, float* sum, void*, std::size_t, cudaStream_t stream) {
  launch(plain_sum_kernel, 1, 1, 0, stream, x, count, sum);
}

}  // namespace ember::kernels
