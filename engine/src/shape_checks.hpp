#pragma once
// Shape checks every backend runs before an op, so a wrong call fails the same way everywhere.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <optional>

#include "ember/backend.hpp"
#include "ember/error.hpp"

namespace ember {

struct MatmulShape {
  std::int64_t m, n, k;
};

inline MatmulShape check_matmul(Transpose transpose_a, Transpose transpose_b, ConstView a, ConstView b, View c) {
  const bool ta = transpose_a == Transpose::yes;
  const bool tb = transpose_b == Transpose::yes;
  const std::int64_t m = ta ? a.cols : a.rows;
  const std::int64_t k = ta ? a.rows : a.cols;
  const std::int64_t k_b = tb ? b.cols : b.rows;
  const std::int64_t n = tb ? b.rows : b.cols;
  if (k != k_b || c.rows != m || c.cols != n)
    throw Error(fmt::format("matmul shapes do not agree: op(a) is ({}, {}), op(b) is ({}, {}), c is ({}, {})", m, k,
                            k_b, n, c.rows, c.cols));
  constexpr std::int64_t largest = std::numeric_limits<std::int32_t>::max();  // BLAS and the kernels take int
  if (std::max({a.rows, a.cols, b.rows, b.cols, c.rows, c.cols}) > largest)
    throw InputError(
        fmt::format("matmul ({} x {} x {}): a dimension exceeds {}; use smaller batches", m, n, k, largest));
  return {m, n, k};
}

template <typename A, typename B>
void check_same_shape(BasicView<A> x, BasicView<B> y, const char* op) {
  if (x.rows != y.rows || x.cols != y.cols)
    throw Error(fmt::format("{}: shapes ({}, {}) and ({}, {}) differ", op, x.rows, x.cols, y.rows, y.cols));
}

/// A normalization op's arguments (LayerNorm's, BatchNorm's): views of x's shape, (1, cols) vectors, a positive finite
/// epsilon.
inline void check_layer_norm(const char* op, ConstView x, std::initializer_list<ConstView> like_x,
                             std::initializer_list<ConstView> per_column, float epsilon) {
  for (const ConstView& view : like_x) check_same_shape(x, view, op);
  for (const ConstView& view : per_column)
    if (view.rows != 1 || view.cols != x.cols)
      throw Error(fmt::format("{}: a per-column vector is ({}, {}), not (1, {})", op, view.rows, view.cols, x.cols));
  if (!(epsilon > 0.0f && std::isfinite(epsilon)))
    throw Error(fmt::format("{}: epsilon {} is not positive and finite", op, epsilon));
}

/// clip_by_norm's arguments: a count of 0 or more, a positive finite max_norm.
inline void check_clip(std::int64_t count, float max_norm) {
  if (count < 0 || !(max_norm > 0.0f && std::isfinite(max_norm)))
    throw Error(fmt::format("clip_by_norm: count {} and max_norm {} (a positive number)", count, max_norm));
}

template <typename A, typename B>
void check_bias(BasicView<A> y, BasicView<B> bias, const char* op) {
  if (bias.rows != 1 || bias.cols != y.cols)
    throw Error(fmt::format("{}: bias ({}, {}) does not match ({}, {}); it must be (1, {})", op, bias.rows, bias.cols,
                            y.rows, y.cols, y.cols));
}

inline void check_scale_rows(ConstView scales, View values) {
  if (scales.cols != 1 || scales.rows != values.rows)
    throw Error(fmt::format("scale_rows: scales ({}, {}) for values ({}, {}); they must be ({}, 1)", scales.rows,
                            scales.cols, values.rows, values.cols, values.rows));
}

/// dense_parameter_gradients: dy (rows, out), x (rows, in), row weights (rows, 1), gradients (out, in) and (1, out).
inline void check_parameter_gradients(ConstView dy, ConstView x, ConstView row_weights, View weight_gradient,
                                      View bias_gradient) {
  if (x.rows != dy.rows || row_weights.rows != dy.rows || row_weights.cols != 1 || weight_gradient.rows != dy.cols ||
      weight_gradient.cols != x.cols || bias_gradient.rows != 1 || bias_gradient.cols != dy.cols)
    throw Error(
        fmt::format("dense_parameter_gradients: dy ({}, {}), x ({}, {}), row weights ({}, {}), gradients "
                    "({}, {}) and ({}, {}); they must be (rows, out), (rows, in), (rows, 1), (out, in), (1, out)",
                    dy.rows, dy.cols, x.rows, x.cols, row_weights.rows, row_weights.cols, weight_gradient.rows,
                    weight_gradient.cols, bias_gradient.rows, bias_gradient.cols));
}

inline void check_gather(ConstView source, View destination) {
  if (source.cols != destination.cols)
    throw Error(fmt::format("gather_rows: source has {} columns, destination {}", source.cols, destination.cols));
}

/// gather_batch: x and y index the same rows, and both batches have the same row count.
inline void check_batch(ConstView x, ConstView y, View x_batch, View y_batch) {
  if (x.rows != y.rows || x_batch.rows != y_batch.rows)
    throw Error(fmt::format("gather_batch: x ({} rows) and y ({} rows), x batch ({} rows) and y batch ({} rows) differ",
                            x.rows, y.rows, x_batch.rows, y_batch.rows));
}

}  // namespace ember
