#pragma once
// The CPU's row-invariant kernels (BackendOptions::row_invariant): each row of a product from its
// own row alone, and float64 sums over rows in row order, with no fused multiply-add (the engine
// compiles with -ffp-contract=off). Each is compiled for the baseline x86-64 target, AVX2 and
// AVX-512 (wider vectors, larger tiles) and gives the same bits from each; the CPU picks the widest
// it runs, a plain check rather than an ifunc, which sanitizers' runtimes start after.
#include <cstdint>

#include "ember/tensor.hpp"

namespace ember::row_kernels {

/// The vector instructions of a kernel's compiled form.
enum class Vectors { baseline, avx2, avx512 };
/// The widest form this CPU runs.
Vectors widest();

/// c (rows, n) = a (rows, k) @ bt (k, n): every entry the sum over p in order of a(i, p) bt(p, j),
/// each product rounded, then added to a sum from zero. lda, ldc: a's and c's row strides.
void products(const float* a, std::int64_t lda, const float* bt, std::int64_t n, std::int64_t k, float* c,
              std::int64_t ldc, std::int64_t rows, Vectors vectors = widest());

/// sums (outputs begin to end, x.cols + 1 each: the weight's, then the bias's; zeros on entry) =
/// the sums over the rows r of dy (rows, out) in order of w_r dy(r, o) x(r, :) and of w_r dy(r, o),
/// each float64 product rounded, then added: Backend::dense_parameter_gradients before its division.
void weighted_sums(ConstView dy, ConstView x, const float* weights, std::int64_t begin, std::int64_t end, double* sums,
                   Vectors vectors = widest());

}  // namespace ember::row_kernels
