#include "cuda_check.hpp"

#include <fmt/format.h>

#include "ember/error.hpp"

namespace ember::kernels {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("CUDA error at {}:{}: {} failed: {} ({})", file, line, call, cudaGetErrorString(status),
                          cudaGetErrorName(status)));
}

std::string shape_text(const char* label, long long rows, long long cols) {
  return fmt::format("{} ({}, {})", label, rows, cols);
}

std::string count_text(long long count, const char* what) { return fmt::format("{} {}", count, what); }

std::string matmul_text(int m, int n, int k, bool transpose_a, bool transpose_b) {
  return fmt::format("m {} n {} k {}{}{}", m, n, k, transpose_a ? " a^T" : "", transpose_b ? " b^T" : "");
}

void throw_launch_error(cudaError_t status, const char* kernel, const std::string& shapes) {
  throw Error(fmt::format("CUDA kernel {} ({}) failed: {}", kernel, shapes, cudaGetErrorString(status)));
}

}  // namespace ember::kernels
