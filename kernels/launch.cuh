#pragma once
// The one place that launches a kernel. Built by nvcc, it is the triple-chevron launch. Built by the
// host compiler against the CPU emulator's runtime (tests/emulator, which defines
// EMBER_CUDA_EMULATOR), the same kernels run there, so that their logic is tested without a GPU.
#include <cstddef>
#include <utility>

namespace ember::kernels {

/// Launches kernel(args...) on `grid` blocks of `block` threads with `shared_bytes` of dynamic
/// shared memory, on `stream`. The arguments convert to the kernel's parameters, as in <<<...>>>.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "one argument per kernel parameter");
#if defined(EMBER_CUDA_EMULATOR)
  emulator::launch(kernel, grid, block, shared_bytes, stream, static_cast<Params>(std::forward<Args>(args))...);
#else
  // clang-format off
  kernel<<<grid, block, shared_bytes, stream>>>(static_cast<Params>(std::forward<Args>(args))...);
  // clang-format on
#endif
}

}  // namespace ember::kernels
