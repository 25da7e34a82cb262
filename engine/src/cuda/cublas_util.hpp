#pragma once
// cuBLAS for the CUDA backend and the benchmarks: its functions, loaded only when first used (a
// training run on Ember's own kernels never maps libcublas), status checking, and row-major SGEMM.
#include <cublas_v2.h>
#include <fmt/format.h>

#include "ember/error.hpp"

namespace ember::cuda {

/// The cuBLAS functions Ember calls. cublas_v2.h names them through macros (cublasCreate is
/// cublasCreate_v2), so the types come from the names Ember writes.
struct CublasApi {
  decltype(&cublasCreate) create;
  decltype(&cublasDestroy) destroy;
  decltype(&cublasSetStream) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSetWorkspace) set_workspace;
  decltype(&cublasSgemm) sgemm;
  decltype(&cublasGetStatusString) get_status_string;
};

/// cuBLAS, loaded on the first call (cublas_loader.cpp); throws InputError naming the library and
/// why it could not be loaded.
const CublasApi& cublas();

}  // namespace ember::cuda

#define EMBER_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                    \
    const cublasStatus_t ember_status_ = (call);                                                          \
    if (ember_status_ != CUBLAS_STATUS_SUCCESS)                                                           \
      throw ::ember::Error(fmt::format("cuBLAS error at {}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                       ::ember::cuda::cublas().get_status_string(ember_status_)));        \
  } while (0)

namespace ember::cuda {

/// A cuBLAS handle on stream, in FP32 (pedantic: no tensor cores, the yardstick) or TF32
/// tensor-core math.
class CublasHandle {
 public:
  CublasHandle(cudaStream_t stream, bool tf32) {
    EMBER_CUBLAS_CHECK(cublas().create(&handle_));
    EMBER_CUBLAS_CHECK(cublas().set_stream(handle_, stream));
    EMBER_CUBLAS_CHECK(cublas().set_math_mode(handle_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  }
  ~CublasHandle() { cublas().destroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

/// Row-major c (m, n) = alpha op(a) op(b) + beta c. cuBLAS is column-major, and a row-major c is
/// a column-major c^T = op(b)^T op(a)^T: the operands swap. Leading dimensions are at least 1, as
/// cuBLAS requires even of an empty (k = 0) operand; with k = 0, c = beta c.
inline void cublas_sgemm_row_major(cublasHandle_t handle, bool ta, bool tb, int m, int n, int k, float alpha,
                                   const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  const auto at_least_1 = [](int ld) { return ld < 1 ? 1 : ld; };
  EMBER_CUBLAS_CHECK(cublas().sgemm(handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                    &alpha, b, at_least_1(ldb), a, at_least_1(lda), &beta, c, at_least_1(ldc)));
}

}  // namespace ember::cuda
