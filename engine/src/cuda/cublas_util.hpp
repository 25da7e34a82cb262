#pragma once
// cuBLAS for the CUDA backend and the benchmarks: status checking, and row-major SGEMM.
#include <cublas_v2.h>
#include <fmt/format.h>

#include "ember/error.hpp"

#define EMBER_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                    \
    const cublasStatus_t ember_status_ = (call);                                                          \
    if (ember_status_ != CUBLAS_STATUS_SUCCESS)                                                           \
      throw ::ember::Error(fmt::format("cuBLAS error at {}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                       cublasGetStatusString(ember_status_)));                            \
  } while (0)

namespace ember::cuda {

/// Row-major c (m, n) = alpha op(a) op(b) + beta c. cuBLAS is column-major, and a row-major c is
/// a column-major c^T = op(b)^T op(a)^T: the operands swap. Leading dimensions are at least 1, as
/// cuBLAS requires even of an empty (k = 0) operand; with k = 0, c = beta c.
inline void cublas_sgemm_row_major(cublasHandle_t handle, bool ta, bool tb, int m, int n, int k, float alpha,
                                   const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  const auto at_least_1 = [](int ld) { return ld < 1 ? 1 : ld; };
  EMBER_CUBLAS_CHECK(cublasSgemm(handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                 &alpha, b, at_least_1(ldb), a, at_least_1(lda), &beta, c, at_least_1(ldc)));
}

}  // namespace ember::cuda
