#include "cpu/cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "activation_math.hpp"
#include "cpu/thread_pool.hpp"
#include "ember/error.hpp"
#include "host_device.hpp"
#include "optimizer_part.hpp"
#include "shape_checks.hpp"

namespace ember {
namespace {

// The reference's plain float64 loops run about 1e9 operations a second on one core.
constexpr double kSecondsPerOperation = 1e-9;

/// Runs body(i) for every i in [0, count), split among threads where the work (operations per i)
/// pays for them. Each i is computed the same way whichever thread runs it.
template <typename Body>
void for_each_index(std::int64_t count, double operations_per_index, Body&& body) {
  const double seconds = static_cast<double>(count) * operations_per_index * kSecondsPerOperation;
  threads::for_ranges(count, seconds, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) body(i);
  });
}

}  // namespace

void* CpuBackend::do_allocate(std::size_t bytes) {
  const std::size_t rounded = (bytes + 255) / 256 * 256;
  void* pointer = std::aligned_alloc(256, rounded == 0 ? 256 : rounded);
  if (pointer == nullptr) throw Error(fmt::format("out of host memory allocating {} bytes", bytes));
  return pointer;
}

void CpuBackend::do_deallocate(void* pointer) noexcept {
  std::free(pointer);
}

void CpuBackend::copy_to_device(void* destination, const void* source, std::size_t bytes) {
  if (bytes > 0) std::memcpy(destination, source, bytes);
}

void CpuBackend::copy_to_host(void* destination, const void* source, std::size_t bytes) {
  if (bytes > 0) std::memcpy(destination, source, bytes);
}

void CpuBackend::matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b, float beta,
                        View c) {
  const MatmulShape shape = check_matmul(transpose_a, transpose_b, a, b, c);
  const bool ta = transpose_a == Transpose::yes;
  const bool tb = transpose_b == Transpose::yes;
  // op(a)[i][p] is a[p][i] when transposed; likewise for b.
  for_each_index(shape.m, 2.0 * static_cast<double>(shape.n * shape.k), [&](std::int64_t i) {
    for (std::int64_t j = 0; j < shape.n; ++j) {
      double sum = 0.0;
      for (std::int64_t p = 0; p < shape.k; ++p) {
        const float a_ip = ta ? a.data[p * a.cols + i] : a.data[i * a.cols + p];
        const float b_pj = tb ? b.data[j * b.cols + p] : b.data[p * b.cols + j];
        sum += static_cast<double>(a_ip) * static_cast<double>(b_pj);
      }
      float& out = c.data[i * c.cols + j];
      const double previous = beta == 0.0f ? 0.0 : static_cast<double>(beta) * out;  // beta == 0: c is not read
      out = static_cast<float>(static_cast<double>(alpha) * sum + previous);
    }
  });
}

void CpuBackend::bias_add(View y, ConstView bias) {
  check_bias(y, bias, "bias_add");
  for_each_index(y.rows, static_cast<double>(y.cols), [&](std::int64_t i) {
    for (std::int64_t j = 0; j < y.cols; ++j) y.data[i * y.cols + j] += bias.data[j];
  });
}

void CpuBackend::bias_gradient(ConstView dy, View bias_gradient) {
  check_bias(dy, bias_gradient, "bias_gradient");
  for_each_index(dy.cols, static_cast<double>(dy.rows), [&](std::int64_t j) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < dy.rows; ++i) sum += dy.data[i * dy.cols + j];
    bias_gradient.data[j] = static_cast<float>(sum);
  });
}

// Entry by entry, over the rows in order. The fast path gives the same bits (its own loop order,
// the same sums).
void CpuBackend::dense_parameter_gradients(ConstView dy, ConstView x, ConstView row_weights, View weight_gradient,
                                           View bias_gradient) {
  check_parameter_gradients(dy, x, row_weights, weight_gradient, bias_gradient);
  double total = 0.0;
  for (std::int64_t r = 0; r < dy.rows; ++r) total += row_weights.data[r];
  for_each_index(dy.cols, 2.0 * static_cast<double>(dy.rows * (x.cols + 1)), [&](std::int64_t o) {
    for (std::int64_t i = 0; i <= x.cols; ++i) {  // i == x.cols: the bias
      double sum = 0.0;
      for (std::int64_t r = 0; r < dy.rows; ++r) {
        const double weighted = static_cast<double>(row_weights.data[r]) * dy.data[r * dy.cols + o];
        sum += i < x.cols ? weighted * x.data[r * x.cols + i] : weighted;
      }
      float& out = i < x.cols ? weight_gradient.data[o * x.cols + i] : bias_gradient.data[o];
      out = total > 0.0 ? static_cast<float>(sum / total) : 0.0f;
    }
  });
}

// In float64, each part's formula evaluated in double and rounded once.
void CpuBackend::activation_forward(Activation kind, ConstView x, View y) {
  check_same_shape(x, y, "activation_forward");
  activations::visit(kind, [&](auto part) {
    using Part = decltype(part);
    for_each_index(x.size(), 20, [&](std::int64_t i) {
      y.data[i] = static_cast<float>(Part::forward(static_cast<double>(x.data[i])));
    });
  });
}

void CpuBackend::activation_backward(Activation kind, ConstView dy, ConstView x, ConstView y, View dx) {
  check_same_shape(dy, y, "activation_backward");
  check_same_shape(dy, dx, "activation_backward");
  if (activations::needs_input(kind)) check_same_shape(dy, x, "activation_backward");
  activations::visit(kind, [&](auto part) {
    using Part = decltype(part);
    for_each_index(dy.size(), 20, [&](std::int64_t i) {
      const double input = Part::needs_input ? static_cast<double>(x.data[i]) : 0.0;
      dx.data[i] =
          static_cast<float>(Part::backward(static_cast<double>(dy.data[i]), input, static_cast<double>(y.data[i])));
    });
  });
}

// One float product per element, as every backend rounds it; the fast path inherits it (a gradient
// of the outputs' width).
void CpuBackend::scale_rows(ConstView scales, View values) {
  check_scale_rows(scales, values);
  for (std::int64_t r = 0; r < values.rows; ++r)
    for (std::int64_t c = 0; c < values.cols; ++c) values(r, c) *= scales(r, 0);
}

// The norm in float64, in order; the factor applied in float64 and rounded once. The fast path
// inherits it (one pass of count reads, as the optimizer's update makes).
void CpuBackend::clip_by_norm(float* values, std::int64_t count, float max_norm) {
  check_clip(count, max_norm);
  double squares = 0.0;
  for (std::int64_t i = 0; i < count; ++i) squares += static_cast<double>(values[i]) * values[i];
  const double factor = clip_factor(std::sqrt(squares), static_cast<double>(max_norm));
  if (factor >= 1.0) return;
  for_each_index(count, 2, [&](std::int64_t i) { values[i] = static_cast<float>(values[i] * factor); });
}

void CpuBackend::optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                                  std::int64_t region, std::int64_t count, const OptimizerScalars* scalars) {
  // The part's step in double: each element's arithmetic rounded once, to float, at the end.
  optimizer_part::with_step<double>(optimizer, *scalars, [&](const auto& step, int states, int flops) {
    for_each_index(count, flops, [&](std::int64_t i) {
      double w = weights[i], s0 = states > 0 ? state[i] : 0.0, s1 = states > 1 ? state[region + i] : 0.0;
      step(w, static_cast<double>(gradients[i]), s0, s1);
      weights[i] = static_cast<float>(w);
      if (states > 0) state[i] = static_cast<float>(s0);
      if (states > 1) state[region + i] = static_cast<float>(s1);
    });
  });
}

void CpuBackend::fill(View y, float value) {
  for (std::int64_t i = 0; i < y.size(); ++i) y.data[i] = value;
}

void CpuBackend::copy(ConstView source, View destination) {
  check_same_shape(source, destination, "copy");
  if (source.size() > 0)
    std::memmove(destination.data, source.data, static_cast<std::size_t>(source.size()) * sizeof(float));
}

void CpuBackend::gather_rows(ConstView source, const std::int32_t* indices, const std::int32_t* cursor,
                             View destination) {
  check_gather(source, destination);
  const std::int32_t* batch = indices + *cursor;
  for (std::int64_t r = 0; r < destination.rows; ++r) {
    const std::int64_t row = batch[r];
    if (row < 0 || row >= source.rows)
      throw Error(fmt::format("gather_rows: index {} outside the {} source rows", row, source.rows));
    std::memcpy(destination.data + r * destination.cols, source.data + row * source.cols,
                static_cast<std::size_t>(source.cols) * sizeof(float));
  }
}

void CpuBackend::advance_cursor(std::int32_t* cursor, std::int32_t amount) {
  *cursor += amount;
}

}  // namespace ember
