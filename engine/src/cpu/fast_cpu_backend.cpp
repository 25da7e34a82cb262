#include "cpu/fast_cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdint>

#include "shape_checks.hpp"
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef EMBER_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace ember {
namespace {

// Below this many elements an elementwise op runs on one thread: starting a parallel region
// costs more than the loop. Loops over possibly aliased memory are marked `omp simd`: outputs alias
// inputs only at the same index (in-place ops), which vectorization allows.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;

/// Runs body(begin, end) over [0, count): on the calling thread below kParallelElements, else one
/// contiguous chunk per OpenMP thread. The loops then live in plain functions, where GCC
/// vectorizes them; inside OpenMP's outlined bodies it loses the pointers' restrict qualifiers
/// and runs a scalar alias-check fallback.
template <typename Body>
void for_chunks(std::int64_t count, Body&& body) {
#ifdef _OPENMP
  if (count >= kParallelElements) {
#pragma omp parallel
    {
      const std::int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
      const std::int64_t chunk = (count + threads - 1) / threads;
      const std::int64_t begin = std::min(count, thread * chunk), end = std::min(count, begin + chunk);
      if (begin < end) body(begin, end);
    }
    return;
  }
#endif
  body(0, count);
}

/// y = max(x, 0), as the reference's select (NaN becomes 0); y may be x.
void relu_forward_range(const float* x, float* y, std::int64_t count) {
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    const float value = x[i];
    y[i] = value > 0.0f ? value : 0.0f;
  }
}

/// dx = y > 0 ? dy : 0; dx may be dy. A bitwise select: as a ternary on possibly aliased memory,
/// GCC keeps a branch per element, which mispredicts on half of all random-signed data.
void relu_backward_range(const float* dy, const float* y, float* dx, std::int64_t count) {
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint32_t keep = y[i] > 0.0f ? 0xffffffffu : 0u;
    dx[i] = std::bit_cast<float>(std::bit_cast<std::uint32_t>(dy[i]) & keep);
  }
}

/// SGD's update (optimizers.hpp) over count parameters at rate lr; the regions never overlap (the
/// plan's arena keeps them apart).
void sgd_range(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ b, std::int64_t count,
               const SGD& settings, float lr) {
  const float momentum = settings.momentum, decay = settings.weight_decay;
  if (momentum == 0.0f) {
    for (std::int64_t i = 0; i < count; ++i) w[i] -= lr * (g[i] + decay * w[i]);
  } else if (settings.nesterov) {
    for (std::int64_t i = 0; i < count; ++i) {
      const float step = g[i] + decay * w[i];
      b[i] = momentum * b[i] + step;
      w[i] -= lr * (step + momentum * b[i]);
    }
  } else {
    for (std::int64_t i = 0; i < count; ++i) {
      b[i] = momentum * b[i] + (g[i] + decay * w[i]);
      w[i] -= lr * b[i];
    }
  }
}

/// Adam's update (optimizers.hpp; decoupled: AdamW's) at rate lr with the step's bias corrections.
void adam_range(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m, float* __restrict__ v,
                std::int64_t count, const Adam& settings, bool decoupled, float lr, float correction1,
                float correction2_sqrt) {
  const float beta1 = settings.beta1, beta2 = settings.beta2, eps = settings.eps;
  const float decay = decoupled ? 0.0f : settings.weight_decay,
              shrink = decoupled ? 1.0f - lr * settings.weight_decay : 1.0f;
  const float step_size = lr / correction1;
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    const float weight = w[i] * shrink;
    const float gradient = g[i] + decay * weight;
    m[i] = beta1 * m[i] + (1.0f - beta1) * gradient;
    v[i] = beta2 * v[i] + (1.0f - beta2) * gradient * gradient;
    w[i] = weight - step_size * m[i] / (std::sqrt(v[i]) / correction2_sqrt + eps);
  }
}

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

namespace {

#ifdef EMBER_WITH_OPENBLAS
const char* openblas_threading(int parallel) {
  return parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : parallel == 0 ? "single-threaded" : "unknown";
}
#endif

}  // namespace

std::string FastCpuBackend::matmul_library() {
#ifdef EMBER_WITH_OPENBLAS
  // The installed library finds its own build first (RUNPATH), but a process may already hold
  // another under the same soname (Debian's numpy loads the one the alternatives name). It computes
  // the same products; its threads and Ember's OpenMP ones take turns rather than share a pool.
  const int loaded = openblas_get_parallel();
  if (EMBER_OPENBLAS_PARALLEL >= 0 && loaded != EMBER_OPENBLAS_PARALLEL)
    return fmt::format("matmul by OpenBLAS {} ({} build, loaded in place of the {} build Ember was built with)",
                       EMBER_OPENBLAS_VERSION, openblas_threading(loaded), openblas_threading(EMBER_OPENBLAS_PARALLEL));
  return fmt::format("matmul by OpenBLAS {} ({} build)", EMBER_OPENBLAS_VERSION, openblas_threading(loaded));
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
  for_chunks(x.size(), [&](std::int64_t begin, std::int64_t end) {
    relu_forward_range(x.data + begin, y.data + begin, end - begin);
  });
}

void FastCpuBackend::relu_backward(ConstView dy, ConstView y, View dx) {
  check_same_shape(dy, y, "relu_backward");
  check_same_shape(dy, dx, "relu_backward");
  for_chunks(dy.size(), [&](std::int64_t begin, std::int64_t end) {
    relu_backward_range(dy.data + begin, y.data + begin, dx.data + begin, end - begin);
  });
}

void FastCpuBackend::sgd_update(float* weights, const float* gradients, float* momentum_buffer, std::int64_t count,
                                const SGD& settings, const OptimizerScalars* scalars) {
  check_optimizer(settings);
  const float lr = settings.lr * scalars->lr_scale;
  for_chunks(count, [&](std::int64_t begin, std::int64_t end) {
    sgd_range(weights + begin, gradients + begin, momentum_buffer != nullptr ? momentum_buffer + begin : nullptr,
              end - begin, settings, lr);
  });
}

void FastCpuBackend::adam_update(float* weights, const float* gradients, float* exp_avg, float* exp_avg_sq,
                                 std::int64_t count, const Adam& settings, bool decoupled,
                                 const OptimizerScalars* scalars) {
  check_optimizer(settings);
  if (scalars->step < 1) throw Error(fmt::format("adam_update: step {} is not counted from 1", scalars->step));
  const float lr = settings.lr * scalars->lr_scale;
  const auto step = static_cast<float>(scalars->step);
  const float correction1 = 1.0f - std::pow(settings.beta1, step);
  const float correction2_sqrt = std::sqrt(1.0f - std::pow(settings.beta2, step));
  for_chunks(count, [&](std::int64_t begin, std::int64_t end) {
    adam_range(weights + begin, gradients + begin, exp_avg + begin, exp_avg_sq + begin, end - begin, settings,
               decoupled, lr, correction1, correction2_sqrt);
  });
}

void FastCpuBackend::dense_forward(ConstView x, ConstView weight, ConstView bias, bool relu, View y) {
  const MatmulShape shape = check_matmul(Transpose::no, Transpose::yes, x, weight, y);
  check_bias(y, bias, "dense_forward");
  gemm(false, true, shape, 1.0f, x, weight, 0.0f, y);
  if (!relu) return bias_add(y, bias);
    // Bias and ReLU in one pass over the output, while each row is still in cache.
#pragma omp parallel for schedule(static) if (y.size() >= kParallelElements)
  for (std::int64_t i = 0; i < y.rows; ++i) {
    float* row = y.data + i * y.cols;
#pragma omp simd
    for (std::int64_t j = 0; j < y.cols; ++j) {
      const float value = row[j] + bias.data[j];
      row[j] = value > 0.0f ? value : 0.0f;
    }
  }
}

}  // namespace ember
