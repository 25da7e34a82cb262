#include "cpu/fast_cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "shape_checks.hpp"
#ifdef EMBER_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace ember {
namespace {

// Below this many elements an elementwise op runs on one thread: starting a parallel region
// costs more than the loop. Every loop is also marked `omp simd`: outputs alias inputs only at the
// same index (in-place ops), which vectorization allows, and GCC otherwise keeps the ReLU selects
// as branches, which mispredict on half of all random-signed data.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;

#ifndef EMBER_WITH_OPENBLAS
// c = alpha op(a) op(b) + beta c in float32 without BLAS: row i of c accumulates a(i, p) * row p of
// op(b) when op(b)'s rows are contiguous, else each entry is a dot product of contiguous rows.
void matmul_loops(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                  std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
#pragma omp parallel for schedule(static) if (m * n * k >= kParallelElements * 16)
  for (std::int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (!tb) {
      for (std::int64_t j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
      for (std::int64_t p = 0; p < k; ++p) {
        const float a_ip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
        const float* b_row = b + p * ldb;
        for (std::int64_t j = 0; j < n; ++j) row[j] += a_ip * b_row[j];
      }
    } else {
      for (std::int64_t j = 0; j < n; ++j) {
        const float* b_row = b + j * ldb;
        float sum = 0.0f;
        for (std::int64_t p = 0; p < k; ++p) sum += (ta ? a[p * lda + i] : a[i * lda + p]) * b_row[p];
        row[j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * row[j]);
      }
    }
  }
}
#endif

void gemm(bool ta, bool tb, const MatmulShape& shape, float alpha, ConstView a, ConstView b, float beta, View c) {
  if (shape.m == 0 || shape.n == 0) return;
#ifdef EMBER_WITH_OPENBLAS
  if (shape.k == 0) {  // an empty sum: c = beta c, stated outright rather than left to the BLAS
    for (std::int64_t i = 0; i < c.size(); ++i) c.data[i] = beta == 0.0f ? 0.0f : beta * c.data[i];
    return;
  }
  // BLAS requires leading dimensions >= 1 even for single-column matrices.
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(shape.m),
              static_cast<int>(shape.n), static_cast<int>(shape.k), alpha, a.data,
              static_cast<int>(std::max<std::int64_t>(a.cols, 1)), b.data,
              static_cast<int>(std::max<std::int64_t>(b.cols, 1)), beta, c.data,
              static_cast<int>(std::max<std::int64_t>(c.cols, 1)));
#else
  matmul_loops(ta, tb, shape.m, shape.n, shape.k, alpha, a.data, a.cols, b.data, b.cols, beta, c.data, c.cols);
#endif
}

}  // namespace

std::string FastCpuBackend::matmul_library() {
#ifdef EMBER_WITH_OPENBLAS
  return fmt::format("matmul by OpenBLAS {}", EMBER_OPENBLAS_VERSION);
#else
  return "matmul by built-in loops: this build has no OpenBLAS";
#endif
}

void FastCpuBackend::matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b,
                            float beta, View c) {
  const MatmulShape shape = check_matmul(transpose_a, transpose_b, a, b, c);
  gemm(transpose_a == Transpose::yes, transpose_b == Transpose::yes, shape, alpha, a, b, beta, c);
}

void FastCpuBackend::bias_add(View y, ConstView bias) {
  check_bias(y, bias, "bias_add");
#pragma omp parallel for schedule(static) if (y.size() >= kParallelElements)
  for (std::int64_t i = 0; i < y.rows; ++i) {
    float* row = y.data + i * y.cols;
#pragma omp simd
    for (std::int64_t j = 0; j < y.cols; ++j) row[j] += bias.data[j];
  }
}

void FastCpuBackend::bias_gradient(ConstView dy, View bias_gradient) {
  check_bias(dy, bias_gradient, "bias_gradient");
  // Rows outer so that dy is read in order; threads take disjoint column blocks.
  constexpr std::int64_t kBlock = 256;
  const std::int64_t blocks = (dy.cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (dy.size() >= kParallelElements && blocks > 1)
  for (std::int64_t block = 0; block < blocks; ++block) {
    const std::int64_t begin = block * kBlock, end = std::min(dy.cols, begin + kBlock);
    float* sum = bias_gradient.data;
    for (std::int64_t j = begin; j < end; ++j) sum[j] = 0.0f;
    for (std::int64_t i = 0; i < dy.rows; ++i) {
      const float* row = dy.data + i * dy.cols;
#pragma omp simd
      for (std::int64_t j = begin; j < end; ++j) sum[j] += row[j];
    }
  }
}

void FastCpuBackend::relu_forward(ConstView x, View y) {
  check_same_shape(x, y, "relu_forward");
#pragma omp parallel for simd schedule(static) if (x.size() >= kParallelElements)
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const float value = x.data[i];
    y.data[i] = value > 0.0f ? value : 0.0f;  // the reference's select: NaN becomes 0 there too
  }
}

void FastCpuBackend::relu_backward(ConstView dy, ConstView y, View dx) {
  check_same_shape(dy, y, "relu_backward");
  check_same_shape(dy, dx, "relu_backward");
  // Both values are loaded unconditionally, so that the select vectorizes (a conditional load is
  // control flow to the vectorizer).
#pragma omp parallel for simd schedule(static) if (dy.size() >= kParallelElements)
  for (std::int64_t i = 0; i < dy.size(); ++i) {
    const float gradient = dy.data[i], output = y.data[i];
    dx.data[i] = output > 0.0f ? gradient : 0.0f;
  }
}

void FastCpuBackend::sgd_update(float* weights, const float* gradients, float* velocity, std::int64_t count,
                                const SgdParams& params) {
  check_sgd(params);
  const float lr = params.lr, momentum = params.momentum, decay = params.weight_decay;
  if (momentum == 0.0f) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
    for (std::int64_t i = 0; i < count; ++i) weights[i] -= lr * (gradients[i] + decay * weights[i]);
    return;
  }
  const bool nesterov = params.nesterov;
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
  for (std::int64_t i = 0; i < count; ++i) {
    const float g = gradients[i] + decay * weights[i];
    const float v = momentum * velocity[i] + g;
    velocity[i] = v;
    weights[i] -= lr * (nesterov ? g + momentum * v : v);
  }
}

void FastCpuBackend::dense_forward(ConstView x, ConstView weight, ConstView bias, bool relu, View y) {
  const MatmulShape shape = check_matmul(Transpose::no, Transpose::yes, x, weight, y);
  check_bias(y, bias, "dense_forward");
  gemm(false, true, shape, 1.0f, x, weight, 0.0f, y);
  // Bias and ReLU in one pass over the output, while each row is still in cache.
#pragma omp parallel for schedule(static) if (y.size() >= kParallelElements)
  for (std::int64_t i = 0; i < y.rows; ++i) {
    float* row = y.data + i * y.cols;
    if (relu) {
#pragma omp simd
      for (std::int64_t j = 0; j < y.cols; ++j) {
        const float value = row[j] + bias.data[j];
        row[j] = value > 0.0f ? value : 0.0f;
      }
    } else {
#pragma omp simd
      for (std::int64_t j = 0; j < y.cols; ++j) row[j] += bias.data[j];
    }
  }
}

void FastCpuBackend::dense_input_gradient(ConstView dy, ConstView weight, std::optional<ConstView> relu_output,
                                          View dx) {
  const MatmulShape shape = check_matmul(Transpose::no, Transpose::no, dy, weight, dx);
  if (relu_output) check_same_shape(*relu_output, dx, "dense_input_gradient");
  gemm(false, false, shape, 1.0f, dy, weight, 0.0f, dx);
  if (relu_output) relu_backward(dx, *relu_output, dx);
}

}  // namespace ember
