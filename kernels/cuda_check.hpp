#pragma once
// Checking for every CUDA call: a failure throws ember::Error naming the call, the file, the line
// and the CUDA error string. Kernel launches are checked with the kernel's name and shapes. No fmt
// here: nvcc's front end cannot compile fmt's compile-time format checks, so messages are built in
// cuda_check.cpp (host compiler) and shapes with std::to_string.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace ember::kernels {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_launch_error(cudaError_t status, const char* kernel, const std::string& shapes);

/// Throws if the last launch failed; describe() names the shapes and is only called on failure.
template <typename Describe>
void check_launch(const char* kernel, Describe describe) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) throw_launch_error(status, kernel, describe());
}

/// "label (rows, cols)" and "count what": built out of line (GCC 12 misreports inline string
/// concatenation under -Werror=restrict).
std::string shape_text(const char* label, long long rows, long long cols);
std::string count_text(long long count, const char* what);
std::string matmul_text(int m, int n, int k, bool transpose_a, bool transpose_b);

/// Whether 16-byte (float4) accesses may start at pointer.
inline bool aligned16(const void* pointer) {
  return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0;
}

inline unsigned grid_for(long long count, unsigned threads, unsigned max_blocks = 65535u * 32u) {
  const long long blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks));
}

}  // namespace ember::kernels

#define EMBER_CUDA_CHECK(call)                                                                                      \
  do {                                                                                                              \
    const cudaError_t ember_status_ = (call);                                                                       \
    if (ember_status_ != cudaSuccess) ::ember::kernels::throw_cuda_error(ember_status_, #call, __FILE__, __LINE__); \
  } while (0)
