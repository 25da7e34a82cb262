// Ember's own row-invariant kernels (row_kernels.hpp): each a template body compiled for the
// baseline x86-64 target, AVX2 and AVX-512, the same bits from each.
#include "cpu/row_kernels.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace ember::row_kernels {
namespace {

using Floats8 = float __attribute__((vector_size(32)));
using Floats16 = float __attribute__((vector_size(64)));

/// c (rows, n) = a (rows, k) @ bt (k, n): every entry the sum over p in order of a(i, p) bt(p, j),
/// each product rounded, then added to a sum from zero (no fused multiply-add: the engine compiles
/// with -ffp-contract=off, and the default x86-64 target has none). Tiles of Rows rows by two
/// vectors of columns keep their sums in registers, the rows left over a tile of one row each; the
/// columns left over are the same sums one entry at a time, so an entry's bits depend neither on
/// its tile nor on the vector width.
template <typename Vector, int Rows>
[[gnu::always_inline]] inline void row_invariant_rows_body(const float* a, std::int64_t lda, const float* bt,
                                                           std::int64_t n, std::int64_t k, float* c, std::int64_t ldc,
                                                           std::int64_t rows) {
  constexpr std::int64_t kLanes = sizeof(Vector) / sizeof(float), kColumns = 2 * kLanes;
  const auto entry = [&](std::int64_t i, std::int64_t j) {
    float sum = 0.0f;
    for (std::int64_t p = 0; p < k; ++p) sum += a[i * lda + p] * bt[p * n + j];
    c[i * ldc + j] = sum;
  };
  std::int64_t i = 0;
  for (; i + Rows <= rows; i += Rows) {
    std::int64_t j = 0;
    for (; j + kColumns <= n; j += kColumns) {
      Vector sums[Rows][2] = {};
      for (std::int64_t p = 0; p < k; ++p) {
        Vector low, high;
        std::memcpy(&low, bt + p * n + j, sizeof(low));
        std::memcpy(&high, bt + p * n + j + kLanes, sizeof(high));
        for (int r = 0; r < Rows; ++r) {
          const float value = a[(i + r) * lda + p];
          sums[r][0] += value * low;
          sums[r][1] += value * high;
        }
      }
      for (int r = 0; r < Rows; ++r) std::memcpy(c + (i + r) * ldc + j, sums[r], sizeof(sums[r]));
    }
    for (; j < n; ++j)
      for (int r = 0; r < Rows; ++r) entry(i + r, j);
  }
  // The rows left over, one vector row at a time.
  if constexpr (Rows > 1)
    if (i < rows) row_invariant_rows_body<Vector, 1>(a + i * lda, lda, bt, n, k, c + i * ldc, ldc, rows - i);
}

// The body compiled for AVX2 and for AVX-512 (wider vectors and more rows per tile, the same
// bits), chosen at run time by the CPU; a plain check rather than an ifunc, which sanitizers'
// runtimes start after. One thread, 4096 x 256 x 256: 44 GFLOP/s as the 4-row AVX2 tile, 57 as 6
// rows, 88 as AVX-512's 8 (an Xeon with AVX-512 at 2.1 GHz).
[[gnu::target("avx2")]] void row_invariant_rows_avx2(const float* a, std::int64_t lda, const float* bt, std::int64_t n,
                                                     std::int64_t k, float* c, std::int64_t ldc, std::int64_t rows) {
  row_invariant_rows_body<Floats8, 6>(a, lda, bt, n, k, c, ldc, rows);
}

[[gnu::target("avx512f")]] void row_invariant_rows_avx512(const float* a, std::int64_t lda, const float* bt,
                                                          std::int64_t n, std::int64_t k, float* c, std::int64_t ldc,
                                                          std::int64_t rows) {
  row_invariant_rows_body<Floats16, 8>(a, lda, bt, n, k, c, ldc, rows);
}

using Doubles2 = double __attribute__((vector_size(16)));
using Doubles4 = double __attribute__((vector_size(32)));
using Doubles8 = double __attribute__((vector_size(64)));
using Floats2 = float __attribute__((vector_size(8)));
using Floats4 = float __attribute__((vector_size(16)));

/// One tile: the columns i to i + two vectors of sums, over rows first to last; the inputs of row r
/// at columns (r - first) * stride + i of inputs (x itself, or the block's tail).
template <typename Doubles, typename Floats, int Outputs>
[[gnu::always_inline]] inline void weighted_row_tile(ConstView dy, const float* inputs, std::int64_t stride,
                                                     const float* weights, std::int64_t o, std::int64_t i,
                                                     std::int64_t first, std::int64_t last, std::int64_t width,
                                                     double* sums) {
  constexpr std::int64_t kLanes = sizeof(Doubles) / sizeof(double), kColumns = 2 * kLanes;
  const auto count = static_cast<std::size_t>(std::min(kColumns, width - i));
  Doubles tile[Outputs][2] = {};
  for (int k = 0; k < Outputs; ++k) std::memcpy(tile[k], sums + k * width + i, count * sizeof(double));
  for (std::int64_t r = first; r < last; ++r) {
    Floats low, high;
    std::memcpy(&low, inputs + (r - first) * stride, sizeof(low));
    std::memcpy(&high, inputs + (r - first) * stride + kLanes, sizeof(high));
    const Doubles x_low = __builtin_convertvector(low, Doubles), x_high = __builtin_convertvector(high, Doubles);
    for (int k = 0; k < Outputs; ++k) {
      const double weighted = static_cast<double>(weights[r]) * dy.data[r * dy.cols + o + k];
      tile[k][0] += weighted * x_low;
      tile[k][1] += weighted * x_high;
    }
  }
  for (int k = 0; k < Outputs; ++k) std::memcpy(sums + k * width + i, tile[k], count * sizeof(double));
}

template <typename Doubles, typename Floats, int Outputs>
[[gnu::always_inline]] inline void weighted_row_tiles(ConstView dy, ConstView x, const float* tail,
                                                      const float* weights, std::int64_t o, std::int64_t first,
                                                      std::int64_t last, double* sums) {
  constexpr std::int64_t kColumns = 2 * sizeof(Doubles) / sizeof(double);
  const std::int64_t tiled = x.cols - x.cols % kColumns;
  for (std::int64_t i = 0; i < tiled; i += kColumns)
    weighted_row_tile<Doubles, Floats, Outputs>(dy, x.data + first * x.cols + i, x.cols, weights, o, i, first, last,
                                                x.cols + 1, sums);
  weighted_row_tile<Doubles, Floats, Outputs>(dy, tail, kColumns, weights, o, tiled, first, last, x.cols + 1, sums);
}

/// sums (outputs begin to end, x.cols + 1 each: the weight's, then the bias's) = the sums over the
/// rows r in order of w_r dy(r, o) x(r, :) and of w_r dy(r, o), each float64 product rounded, then
/// added (no fused multiply-add), as the reference. A tile of Outputs outputs by two vectors of
/// columns keeps its sums in registers over a block of rows; the last tile of a row of sums takes the
/// inputs left over, the bias as an input of 1 (w_r dy(r, o) times 1 is itself) and zeros, so an
/// entry's bits depend neither on its tile nor on the vector width.
template <typename Doubles, typename Floats, int Outputs>
[[gnu::always_inline]] inline void weighted_row_sums_body(ConstView dy, ConstView x, const float* weights,
                                                          std::int64_t begin, std::int64_t end, double* sums) {
  constexpr std::int64_t kColumns = 2 * sizeof(Doubles) / sizeof(double);
  const std::int64_t in = x.cols, width = in + 1, tiled = in - in % kColumns;
  // Blocks of rows whose inputs stay in cache while every tile passes over them; the sums (zeros at
  // first) go on from one block to the next. The block's tail: each row's inputs left over, 1 for
  // the bias, zeros.
  constexpr std::int64_t kRowBlock = 128;
  float tail[kRowBlock * kColumns];
  for (std::int64_t first = 0; first < dy.rows; first += kRowBlock) {
    const std::int64_t last = std::min(dy.rows, first + kRowBlock);
    std::fill(std::begin(tail), std::end(tail), 0.0f);
    for (std::int64_t r = first; r < last; ++r) {
      float* row = tail + (r - first) * kColumns;
      std::copy(x.data + r * in + tiled, x.data + (r + 1) * in, row);
      row[in - tiled] = 1.0f;
    }
    std::int64_t o = begin;
    for (; o + Outputs <= end; o += Outputs)
      weighted_row_tiles<Doubles, Floats, Outputs>(dy, x, tail, weights, o, first, last, sums + (o - begin) * width);
    for (; o < end; ++o)
      weighted_row_tiles<Doubles, Floats, 1>(dy, x, tail, weights, o, first, last, sums + (o - begin) * width);
  }
}

// Compiled for AVX2 and AVX-512 too (4 and 8 doubles a vector, the same bits), chosen by the CPU.
[[gnu::target("avx2")]] void weighted_row_sums_avx2(ConstView dy, ConstView x, const float* weights, std::int64_t begin,
                                                    std::int64_t end, double* sums) {
  weighted_row_sums_body<Doubles4, Floats4, 4>(dy, x, weights, begin, end, sums);
}

[[gnu::target("avx512f")]] void weighted_row_sums_avx512(ConstView dy, ConstView x, const float* weights,
                                                         std::int64_t begin, std::int64_t end, double* sums) {
  weighted_row_sums_body<Doubles8, Floats8, 8>(dy, x, weights, begin, end, sums);
}

}  // namespace

Vectors widest() {
  static const Vectors vectors = __builtin_cpu_supports("avx512f") ? Vectors::avx512
                                 : __builtin_cpu_supports("avx2")  ? Vectors::avx2
                                                                   : Vectors::baseline;
  return vectors;
}

void products(const float* a, std::int64_t lda, const float* bt, std::int64_t n, std::int64_t k, float* c,
              std::int64_t ldc, std::int64_t rows, Vectors vectors) {
  switch (vectors) {
    case Vectors::avx512:
      return row_invariant_rows_avx512(a, lda, bt, n, k, c, ldc, rows);
    case Vectors::avx2:
      return row_invariant_rows_avx2(a, lda, bt, n, k, c, ldc, rows);
    case Vectors::baseline:
      return row_invariant_rows_body<Floats8, 4>(a, lda, bt, n, k, c, ldc, rows);
  }
}

void weighted_sums(ConstView dy, ConstView x, const float* weights, std::int64_t begin, std::int64_t end, double* sums,
                   Vectors vectors) {
  switch (vectors) {
    case Vectors::avx512:
      return weighted_row_sums_avx512(dy, x, weights, begin, end, sums);
    case Vectors::avx2:
      return weighted_row_sums_avx2(dy, x, weights, begin, end, sums);
    case Vectors::baseline:
      return weighted_row_sums_body<Doubles2, Floats2, 4>(dy, x, weights, begin, end, sums);
  }
}

}  // namespace ember::row_kernels
