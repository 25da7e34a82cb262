#include "cpu/fast_cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "activation_math.hpp"
#include "cpu/openblas_kernels.hpp"
#include "cpu/row_kernels.hpp"
#include "cpu/thread_pool.hpp"
#include "optimizer_part.hpp"
#include "shape_checks.hpp"
#ifdef EMBER_WITH_OPENBLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace ember {
namespace {

// Elementwise loops over possibly aliased memory are marked `omp simd` (vectorization only, no
// OpenMP threads): outputs alias inputs only at the same index (in-place ops), which
// vectorization allows. Threads come from Ember's pool (thread_pool.hpp), one chunk of contiguous
// elements each; the loops live in plain functions, where GCC vectorizes them.

/// Runs body(begin, end) over [0, count) in chunks, for a loop reading and writing `bytes_per_element`.
template <typename Body>
void for_chunks(std::int64_t count, double bytes_per_element, Body&& body) {
  const double seconds = threads::single_thread_seconds(0, bytes_per_element * static_cast<double>(count));
  threads::for_ranges(count, seconds, 16, body);  // 16 floats: one 64-byte cache line per boundary
}

/// Runs body(row) for every row of a (rows, cols) float matrix, rows split among threads.
template <typename Body>
void for_rows(std::int64_t rows, std::int64_t cols, double bytes_per_element, Body&& body) {
  const double seconds = threads::single_thread_seconds(0, bytes_per_element * static_cast<double>(rows * cols));
  threads::for_ranges(rows, seconds, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) body(i);
  });
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

/// y = f(x) for an activation part; y may be x.
template <typename Part>
void activation_forward_range(Part, const float* x, float* y, std::int64_t count) {
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) y[i] = Part::forward(x[i]);
}

/// dx = dy * f'(x) for an activation part (x null where the part reads only y); dx may be dy.
template <typename Part>
void activation_backward_range(Part, const float* dy, const float* x, const float* y, float* dx, std::int64_t count) {
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) dx[i] = Part::backward(dy[i], Part::needs_input ? x[i] : 0.0f, y[i]);
}

/// An optimizer part's step over count elements of each buffer, with as many state buffers as the
/// settings use (States), so that a loop reads and writes no buffer it does not need.
template <int States, typename Step>
void update_range(const Step& step, float* __restrict__ w, const float* __restrict__ g, float* __restrict__ s0,
                  float* __restrict__ s1, std::int64_t count) {
  float none0 = 0.0f, none1 = 0.0f;
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    if constexpr (States == 0)
      step(w[i], g[i], none0, none1);
    else if constexpr (States == 1)
      step(w[i], g[i], s0[i], none1);
    else
      step(w[i], g[i], s0[i], s1[i]);
  }
}

#ifdef EMBER_WITH_OPENBLAS
const char* openblas_threading(int parallel) {
  return parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : parallel == 0 ? "single-threaded" : "unknown";
}

/// Whether the loaded OpenBLAS is the build Ember was built with. Then each call runs on one thread
/// and Ember splits products among its own threads; another build already loaded in the process
/// (Debian's numpy loads the pthreads one) keeps its own threading, which its other users rely on.
bool own_openblas() {
  static const bool own = [] {
    if (openblas_get_parallel() != EMBER_OPENBLAS_PARALLEL) return false;
    // The pthreads build has one process-wide count; the OpenMP build follows each calling
    // thread's OpenMP count, set per call below.
    if (EMBER_OPENBLAS_PARALLEL == 1) openblas_set_num_threads(1);
    return true;
  }();
  return own;
}

/// For one call: the calling thread's OpenMP thread count at 1, which makes the OpenMP build of
/// OpenBLAS compute on the caller alone (its idle OpenMP threads would otherwise spin on the cores
/// Ember's threads use), restored after it: the count is the caller's own business.
class OneOpenBlasThread {
#if defined(_OPENMP) && EMBER_OPENBLAS_PARALLEL == 2
 public:
  OneOpenBlasThread() : saved_(omp_get_max_threads()) {
    omp_set_num_threads(1);
  }
  ~OneOpenBlasThread() {
    omp_set_num_threads(saved_);
  }
  OneOpenBlasThread(const OneOpenBlasThread&) = delete;
  OneOpenBlasThread& operator=(const OneOpenBlasThread&) = delete;

 private:
  int saved_;
#endif
};
#else
// c = alpha op(a) op(b) + beta c in float32 without BLAS: row i of c accumulates a(i, p) * row p of
// op(b) when op(b)'s rows are contiguous, else each entry is a dot product of contiguous rows.
void matmul_loops(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                  std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
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

/// One block of c = alpha op(a) op(b) + beta c on the calling thread; leading dimensions as stored.
void gemm_block(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
#ifdef EMBER_WITH_OPENBLAS
  if (k == 0) {  // an empty sum: c = beta c, stated outright rather than left to the BLAS
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  // BLAS requires leading dimensions >= 1 even for single-column matrices.
  [[maybe_unused]] const std::optional<OneOpenBlasThread> one_thread =
      own_openblas() ? std::optional<OneOpenBlasThread>(std::in_place) : std::nullopt;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(std::max<std::int64_t>(lda, 1)), b,
              static_cast<int>(std::max<std::int64_t>(ldb, 1)), beta, c,
              static_cast<int>(std::max<std::int64_t>(ldc, 1)));
#else
  matmul_loops(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

/// c = alpha op(a) op(b) + beta c, split into blocks of c's rows or columns that run on the pool.
/// Each block packs the whole of the other operand, so the split runs along the dimension whose
/// other operand is smaller. The blocks depend on the shape and num_threads() only: the result is
/// the same however many threads the load allows.
void gemm(bool ta, bool tb, const MatmulShape& shape, float alpha, ConstView a, ConstView b, float beta, View c) {
  const auto [m, n, k] = shape;
  if (m == 0 || n == 0) return;
  const std::int64_t lda = a.cols, ldb = b.cols, ldc = c.cols;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const double bytes = 4.0 * static_cast<double>(m * k + k * n + 2 * m * n);
#ifdef EMBER_WITH_OPENBLAS
  const double seconds = own_openblas() ? threads::single_thread_seconds(flops, bytes) : 0.0;
#else
  const double seconds = threads::single_thread_seconds(flops * 8, bytes);  // plain loops: ~1/8 of BLAS's rate
#endif
  // Blocks of 16 rows or columns: whole micro-kernel tiles.
  if (n <= m) {
    threads::for_ranges(m, seconds, 16, [&](std::int64_t begin, std::int64_t end) {
      gemm_block(ta, tb, end - begin, n, k, alpha, a.data + (ta ? begin : begin * lda), lda, b.data, ldb, beta,
                 c.data + begin * ldc, ldc);
    });
  } else {
    threads::for_ranges(n, seconds, 16, [&](std::int64_t begin, std::int64_t end) {
      gemm_block(ta, tb, m, end - begin, k, alpha, a.data, lda, b.data + (tb ? begin * ldb : begin), ldb, beta,
                 c.data + begin, ldc);
    });
  }
}

/// c (m, n) = a (m, k) @ op(b) with each row of c from the same row of a alone, in the same order
/// whatever m is: b (n, k) transposed once where transposed_b (else b is (k, n) already), then
/// row_kernels::products on blocks of rows among threads.
void gemm_row_invariant(const MatmulShape& shape, ConstView a, ConstView b, bool transposed_b, View c) {
  const auto [m, n, k] = shape;
  std::vector<float> transposed;
  if (transposed_b) {
    transposed.resize(static_cast<std::size_t>(k * n));
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t p = 0; p < k; ++p) transposed[static_cast<std::size_t>(p * n + j)] = b.data[j * b.cols + p];
  }
  const float* bt = transposed_b ? transposed.data() : b.data;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const double seconds = threads::single_thread_seconds(flops * 3, 4.0 * static_cast<double>(m * k + 2 * m * n));
  threads::for_ranges(m, seconds, 16, [&](std::int64_t begin, std::int64_t end) {
    row_kernels::products(a.data + begin * a.cols, a.cols, bt, n, k, c.data + begin * c.cols, c.cols, end - begin);
  });
}

}  // namespace

std::string FastCpuBackend::matmul_library() {
#ifdef EMBER_WITH_OPENBLAS
  // The installed library finds its own build first (RUNPATH), but a process may already hold
  // another under the same soname (Debian's numpy loads the one the alternatives name). It computes
  // the same products; its threads and Ember's OpenMP ones take turns rather than share a pool.
  const int loaded = openblas_get_parallel();
  const std::string kernels = openblas::describe_kernels();
  const std::string with_kernels = kernels.empty() ? "" : "; " + kernels;
  if (EMBER_OPENBLAS_PARALLEL >= 0 && loaded != EMBER_OPENBLAS_PARALLEL)
    return fmt::format("matmul by OpenBLAS {} ({} build, loaded in place of the {} build Ember was built with{})",
                       EMBER_OPENBLAS_VERSION, openblas_threading(loaded), openblas_threading(EMBER_OPENBLAS_PARALLEL),
                       with_kernels);
  return fmt::format("matmul by OpenBLAS {} ({} build{})", EMBER_OPENBLAS_VERSION, openblas_threading(loaded),
                     with_kernels);
#else
  return "matmul by built-in loops: this build has no OpenBLAS";
#endif
}

void FastCpuBackend::matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b,
                            float beta, View c) {
  const MatmulShape shape = check_matmul(transpose_a, transpose_b, a, b, c);
  // A Dense layer's forward product (its other activations' dense_forward comes here) and its
  // input gradient, dy @ weight, whose b is already the transposed operand.
  if (row_invariant_ && transpose_a == Transpose::no && alpha == 1.0f && beta == 0.0f && shape.m > 0 && shape.n > 0)
    return gemm_row_invariant(shape, a, b, transpose_b == Transpose::yes, c);
  gemm(transpose_a == Transpose::yes, transpose_b == Transpose::yes, shape, alpha, a, b, beta, c);
}

void FastCpuBackend::bias_add(View y, ConstView bias) {
  check_bias(y, bias, "bias_add");
  for_rows(y.rows, y.cols, 8, [&](std::int64_t i) {
    float* row = y.data + i * y.cols;
#pragma omp simd
    for (std::int64_t j = 0; j < y.cols; ++j) row[j] += bias.data[j];
  });
}

void FastCpuBackend::bias_gradient(ConstView dy, View bias_gradient) {
  check_bias(dy, bias_gradient, "bias_gradient");
  // Rows outer so that dy is read in order; threads take disjoint blocks of columns, so every
  // column is summed in row order whatever the split.
  const double seconds = threads::single_thread_seconds(0, 4.0 * static_cast<double>(dy.size()));
  threads::for_ranges(dy.cols, seconds, 64, [&](std::int64_t begin, std::int64_t end) {
    float* sum = bias_gradient.data;
    for (std::int64_t j = begin; j < end; ++j) sum[j] = 0.0f;
    for (std::int64_t i = 0; i < dy.rows; ++i) {
      const float* row = dy.data + i * dy.cols;
#pragma omp simd
      for (std::int64_t j = begin; j < end; ++j) sum[j] += row[j];
    }
  });
}

void FastCpuBackend::activation_forward(Activation kind, ConstView x, View y) {
  check_same_shape(x, y, "activation_forward");
  if (kind == Activation::relu)
    return for_chunks(x.size(), 8, [&](std::int64_t begin, std::int64_t end) {
      relu_forward_range(x.data + begin, y.data + begin, end - begin);
    });
  activations::visit(kind, [&](auto part) {
    for_chunks(x.size(), 30, [&](std::int64_t begin, std::int64_t end) {
      activation_forward_range(part, x.data + begin, y.data + begin, end - begin);
    });
  });
}

void FastCpuBackend::activation_backward(Activation kind, ConstView dy, ConstView x, ConstView y, View dx) {
  check_same_shape(dy, y, "activation_backward");
  check_same_shape(dy, dx, "activation_backward");
  if (kind == Activation::relu)
    return for_chunks(dy.size(), 12, [&](std::int64_t begin, std::int64_t end) {
      relu_backward_range(dy.data + begin, y.data + begin, dx.data + begin, end - begin);
    });
  if (activations::needs_input(kind)) check_same_shape(dy, x, "activation_backward");
  activations::visit(kind, [&](auto part) {
    for_chunks(dy.size(), 40, [&](std::int64_t begin, std::int64_t end) {
      activation_backward_range(part, dy.data + begin, decltype(part)::needs_input ? x.data + begin : nullptr,
                                y.data + begin, dx.data + begin, end - begin);
    });
  });
}

void FastCpuBackend::optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                                      std::int64_t region, std::int64_t count, const OptimizerScalars* scalars) {
  optimizer_part::with_step<float>(optimizer, *scalars, [&](const auto& step, int states, int flops) {
    for_chunks(count, flops, [&](std::int64_t begin, std::int64_t end) {
      float* s0 = states > 0 ? state + begin : nullptr;
      float* s1 = states > 1 ? state + region + begin : nullptr;
      if (states == 0)
        update_range<0>(step, weights + begin, gradients + begin, nullptr, nullptr, end - begin);
      else if (states == 1)
        update_range<1>(step, weights + begin, gradients + begin, s0, nullptr, end - begin);
      else
        update_range<2>(step, weights + begin, gradients + begin, s0, s1, end - begin);
    });
  });
}

void FastCpuBackend::dense_forward(ConstView x, ConstView weight, ConstView bias, Activation activation, View y,
                                   std::optional<View> pre_activation) {
  if (activation != Activation::relu || pre_activation)
    return Backend::dense_forward(x, weight, bias, activation, y, pre_activation);
  const MatmulShape shape = check_matmul(Transpose::no, Transpose::yes, x, weight, y);
  check_bias(y, bias, "dense_forward");
  if (row_invariant_)
    gemm_row_invariant(shape, x, weight, true, y);
  else
    gemm(false, true, shape, 1.0f, x, weight, 0.0f, y);
  // Bias and ReLU in one pass over the output.
  for_rows(y.rows, y.cols, 8, [&](std::int64_t i) {
    float* row = y.data + i * y.cols;
#pragma omp simd
    for (std::int64_t j = 0; j < y.cols; ++j) {
      const float value = row[j] + bias.data[j];
      row[j] = value > 0.0f ? value : 0.0f;
    }
  });
}

// The reference's sums (the same bits) by row_kernels::weighted_sums, the threads taking blocks of
// outputs (whole tiles), each with float64 sums (out, in + 1) of its own.
void FastCpuBackend::dense_parameter_gradients(ConstView dy, ConstView x, ConstView row_weights, View weight_gradient,
                                               View bias_gradient) {
  check_parameter_gradients(dy, x, row_weights, weight_gradient, bias_gradient);
  double total = 0.0;
  for (std::int64_t r = 0; r < dy.rows; ++r) total += row_weights.data[r];
  const std::int64_t in = x.cols, width = in + 1;
  const double flops = 2.0 * static_cast<double>(dy.rows) * static_cast<double>(dy.cols * width);
  const double seconds = threads::single_thread_seconds(flops * 2, 4.0 * static_cast<double>(dy.size() + x.size()));
  threads::for_ranges(dy.cols, seconds, 8, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> sums(static_cast<std::size_t>((end - begin) * width), 0.0);
    row_kernels::weighted_sums(dy, x, row_weights.data, begin, end, sums.data());
    for (std::int64_t o = begin; o < end; ++o) {
      const double* sum = sums.data() + (o - begin) * width;
      for (std::int64_t i = 0; i < in; ++i)
        weight_gradient.data[o * in + i] = total > 0.0 ? static_cast<float>(sum[i] / total) : 0.0f;
      bias_gradient.data[o] = total > 0.0 ? static_cast<float>(sum[in] / total) : 0.0f;
    }
  });
}

}  // namespace ember
