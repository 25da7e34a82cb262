// The fast CPU path (float32, BLAS matmul, fused Dense ops) against the float64 reference.
#include <gtest/gtest.h>

#include <tuple>

#include "backend_conformance.hpp"
#include "cpu/fast_cpu_backend.hpp"
#include "cpu/row_kernels.hpp"

namespace ember {
namespace {

using namespace testing;

// The shapes sized for GPU tiling cost the float64 reference seconds each: left to the GPU tests.
constexpr std::int64_t kCpuMaxWork = 100'000'000;

TEST(FastCpu, IsTheDefaultCpuBackendAndTheReferenceIsSelectable) {
  std::string notice;
  EXPECT_EQ(make_backend(Device::cpu, {}, &notice)->name(), "cpu");
  EXPECT_EQ(notice, "");
  EXPECT_EQ(make_backend(Device::cpu, BackendOptions{.cpu_reference = true})->name(), "cpu (reference)");
  // TF32 is a GPU mode: on the CPU it is reported, not silently dropped.
  EXPECT_EQ(make_backend(Device::cpu, BackendOptions{.precision = Precision::tf32}, &notice)->name(), "cpu");
  EXPECT_EQ(notice, "TF32 applies to the GPU; the CPU computes in FP32");
}

TEST(FastCpu, FiftyTrainingStepsMatchReference) {
  const TrainingRun reference = train_fifty_steps(Device::cpu, {.cpu_reference = true});
  const TrainingRun fast = train_fifty_steps(Device::cpu);
  EXPECT_LT(relative_error(fast.parameters.data(), reference.parameters.data(),
                           static_cast<std::int64_t>(reference.parameters.size())),
            kTrainingTolerance);
  EXPECT_NEAR(fast.history.epochs[0].loss, reference.history.epochs[0].loss,
              kTrainingTolerance * reference.history.epochs[0].loss);
}

TEST(FastCpu, FiftyTrainingStepsMatchReferenceWithEveryActivation) {
  activations::for_each_part([](auto part) {
    const Activation kind = decltype(part)::kind;
    const TrainingRun reference = train_fifty_steps(Device::cpu, {.cpu_reference = true}, kNesterov, kind);
    const TrainingRun fast = train_fifty_steps(Device::cpu, {}, kNesterov, kind);
    EXPECT_LT(relative_error(fast.parameters.data(), reference.parameters.data(),
                             static_cast<std::int64_t>(reference.parameters.size())),
              kTrainingTolerance)
        << to_string(kind);
  });
}

TEST(FastCpu, MatmulAllShapesAndModes) {
  FastCpuBackend fast;
  expect_matmul_matches_reference(fast, kFloat32Tolerance, kCpuMaxWork);
}

TEST(FastCpu, DenseFusedOpsMatchReference) {
  FastCpuBackend fast;
  expect_dense_ops_match_reference(fast, kFloat32Tolerance, kCpuMaxWork);
}

TEST(FastCpu, RowInvariantOpsMatchReference) {
  FastCpuBackend row_invariant(true);
  EXPECT_EQ(make_backend(Device::cpu, BackendOptions{.row_invariant = true})->name(), "cpu (row-invariant)");
  expect_matmul_matches_reference(row_invariant, kFloat32Tolerance, kCpuMaxWork);
  expect_dense_ops_match_reference(row_invariant, kFloat32Tolerance, kCpuMaxWork);
}

// Every entry of the row-invariant product is the sum over k in order of rounded products, the same
// bits whichever of its loops the CPU runs (AVX-512, AVX2 or neither) and wherever the entry falls
// in its tiles (4, 6 or 8 rows by 16 or 32 columns, the rows and columns left over).
TEST(FastCpu, RowInvariantProductIsTheInOrderSumOfRoundedProducts) {
  FastCpuBackend row_invariant(true);
  std::uint64_t seed = 90;
  for (const auto& [m, k, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 1, 1},
                                {7, 5, 31},
                                {17, 33, 65},
                                {41, 64, 96},
                                {53, 19, 130}}) {
    const Matrix a = random_matrix(m, k, ++seed), b = random_matrix(n, k, ++seed);
    Matrix c = poisoned(m, n);
    row_invariant.matmul(Transpose::no, Transpose::yes, 1.0f, a.view(), b.view(), 0.0f, c.view());
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        float sum = 0.0f;
        for (std::int64_t p = 0; p < k; ++p) {
          volatile float product = a(i, p) * b(j, p);  // rounded, never fused into the addition
          sum += product;
        }
        ASSERT_EQ(c(i, j), sum) << m << "x" << k << "x" << n << " entry " << i << ", " << j;
      }
  }
}

// Each compiled form of the row-invariant kernels that this CPU runs (baseline, AVX2, AVX-512) gives
// the baseline's bits, over shapes around every form's tiles.
TEST(FastCpu, RowKernelsGiveTheSameBitsFromEveryVectorWidth) {
  using row_kernels::Vectors;
  std::vector<Vectors> forms{Vectors::baseline};
  if (row_kernels::widest() != Vectors::baseline) forms.push_back(Vectors::avx2);
  if (row_kernels::widest() == Vectors::avx512) forms.push_back(Vectors::avx512);
  std::uint64_t seed = 370;
  for (const auto& [rows, k, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 1, 1},
                                   {5, 7, 9},
                                   {13, 17, 33},
                                   {150, 40, 65},
                                   {9, 64, 100}}) {
    const Matrix a = random_matrix(rows, k, ++seed), bt = random_matrix(k, n, ++seed);
    const Matrix dy = random_matrix(rows, n, ++seed), weights = random_matrix(rows, 1, ++seed);
    std::vector<std::vector<float>> products;
    std::vector<std::vector<double>> sums;
    for (const Vectors form : forms) {
      Matrix c = poisoned(rows, n);
      row_kernels::products(a.data(), k, bt.data(), n, k, c.data(), n, rows, form);
      products.emplace_back(c.data(), c.data() + c.size());
      // Outputs 1 to n - 1: a block that starts inside a tile.
      std::vector<double> block(static_cast<std::size_t>((n - 1) * (k + 1)), 0.0);
      if (n > 1) row_kernels::weighted_sums(dy.view(), a.view(), weights.data(), 1, n, block.data(), form);
      sums.push_back(block);
    }
    for (std::size_t f = 1; f < forms.size(); ++f) {
      EXPECT_EQ(products[f], products[0]) << rows << "x" << k << "x" << n << " form " << f;
      EXPECT_EQ(sums[f], sums[0]) << rows << "x" << k << "x" << n << " form " << f;
    }
  }
}

// Each row of a Dense layer's output the same bits whatever rows are computed with it: the rows
// alone, in blocks of every size from 1 to 9 and whole, for widths around the tiles.
TEST(FastCpu, RowInvariantForwardDoesNotDependOnTheOtherRows) {
  FastCpuBackend row_invariant(true);
  std::uint64_t seed = 70;
  for (const auto& [in, out] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 16}, {17, 33}, {64, 64}, {300, 47}}) {
    const std::int64_t rows = 41;
    const Matrix x = random_matrix(rows, in, ++seed), weight = random_matrix(out, in, ++seed),
                 bias = random_matrix(1, out, ++seed);
    for (const Activation kind : {Activation::relu, Activation::tanh}) {
      Matrix whole = poisoned(rows, out);
      row_invariant.dense_forward(x.view(), weight.view(), bias.view(), kind, whole.view(), std::nullopt);
      for (std::int64_t block = 1; block <= 9; ++block)
        for (std::int64_t first = 0; first < rows; first += block) {
          const std::int64_t count = std::min(block, rows - first);
          Matrix part = poisoned(count, out);
          row_invariant.dense_forward(x.view().row_range(first, count), weight.view(), bias.view(), kind, part.view(),
                                      std::nullopt);
          for (std::int64_t r = 0; r < count; ++r)
            for (std::int64_t c = 0; c < out; ++c)
              ASSERT_EQ(part(r, c), whole(first + r, c))
                  << in << "->" << out << " " << to_string(kind) << " block " << block << " row " << first + r;
        }
    }
  }
}

// The input gradient dy @ weight too (the backward of a row-invariant training step), with and
// without the ReLU below folded in.
TEST(FastCpu, RowInvariantInputGradientDoesNotDependOnTheOtherRows) {
  FastCpuBackend row_invariant(true);
  std::uint64_t seed = 170;
  for (const auto& [in, out] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 16}, {33, 17}, {64, 64}, {47, 300}}) {
    const std::int64_t rows = 23;
    const Matrix dy = random_matrix(rows, out, ++seed), weight = random_matrix(out, in, ++seed),
                 below = random_matrix(rows, in, ++seed);  // about half of it <= 0
    for (const bool fold : {false, true}) {
      const auto relu = [&](std::int64_t first, std::int64_t count) {
        return fold ? std::optional<ConstView>(below.view().row_range(first, count)) : std::nullopt;
      };
      Matrix whole = poisoned(rows, in);
      row_invariant.dense_input_gradient(dy.view(), weight.view(), relu(0, rows), whole.view());
      CpuBackend reference;
      Matrix expected = poisoned(rows, in);
      reference.dense_input_gradient(dy.view(), weight.view(), relu(0, rows), expected.view());
      EXPECT_LT(relative_error(whole.data(), expected.data(), whole.size()), kFloat32Tolerance);
      for (std::int64_t first = 0; first < rows; first += 5) {
        const std::int64_t count = std::min<std::int64_t>(5, rows - first);
        Matrix part = poisoned(count, in);
        row_invariant.dense_input_gradient(dy.view().row_range(first, count), weight.view(), relu(first, count),
                                           part.view());
        for (std::int64_t r = 0; r < count; ++r)
          for (std::int64_t c = 0; c < in; ++c)
            ASSERT_EQ(part(r, c), whole(first + r, c)) << in << "<-" << out << " fold " << fold << " row " << first + r;
      }
    }
  }
}

// The weighted means over rows of a Dense layer's parameter gradients: the reference's bits on the
// fast path; a whole weight the bits of as many copies of the row, in another order; zero weights
// the bits without those rows; weights summing to 0 give zeros.
TEST(FastCpu, WeightedParameterGradientsAreTheReferencesAndCountWholeWeightsAsCopies) {
  FastCpuBackend fast(true);
  CpuBackend reference;
  EXPECT_TRUE(fast.row_invariant());
  EXPECT_TRUE(reference.row_invariant());
  EXPECT_FALSE(FastCpuBackend().row_invariant());
  std::uint64_t seed = 270;
  const auto values = [](const Matrix& m) { return std::vector<float>(m.data(), m.data() + m.size()); };
  for (const auto& [rows, in, out] :
       {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 1, 1}, {7, 5, 3}, {29, 33, 17}, {61, 64, 40}}) {
    const Matrix dy = random_matrix(rows, out, ++seed), x = random_matrix(rows, in, ++seed);
    Matrix weights(rows, 1);
    std::vector<std::int64_t> copies;  // each row as many times as its whole weight, last row first
    for (std::int64_t r = rows; r-- > 0;) {
      weights(r, 0) = static_cast<float>((r * 3 + 1) % 4);  // 0 to 3, the first row 1
      for (int k = 0; k < static_cast<int>(weights(r, 0)); ++k) copies.push_back(r);
    }
    const auto gradients = [&](Backend& backend, const Matrix& d, const Matrix& inputs, const Matrix& w) {
      std::pair<Matrix, Matrix> out_pair{poisoned(out, in), poisoned(1, out)};
      backend.dense_parameter_gradients(d.view(), inputs.view(), w.view(), out_pair.first.view(),
                                        out_pair.second.view());
      return out_pair;
    };
    const auto [fast_w, fast_b] = gradients(fast, dy, x, weights);
    const auto [ref_w, ref_b] = gradients(reference, dy, x, weights);
    const std::string shape = std::to_string(rows) + "x" + std::to_string(in) + "->" + std::to_string(out);
    EXPECT_EQ(values(fast_w), values(ref_w)) << shape;
    EXPECT_EQ(values(fast_b), values(ref_b)) << shape;
    // The formula, in float64: sum_r w_r dy[r][o] x[r][i] / sum_r w_r.
    double total = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) total += weights(r, 0);
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t i = 0; i < in; ++i) {
        double sum = 0.0;
        for (std::int64_t r = 0; r < rows; ++r) sum += static_cast<double>(weights(r, 0)) * dy(r, o) * x(r, i);
        ASSERT_NEAR(ref_w(o, i), sum / total, 1e-6 * (1.0 + std::abs(sum / total))) << shape;
      }
    const Matrix ones(static_cast<std::int64_t>(copies.size()), 1, 1.0f);
    const auto [copy_w, copy_b] = gradients(fast, Matrix::take_rows(dy, copies), Matrix::take_rows(x, copies), ones);
    EXPECT_EQ(values(copy_w), values(fast_w)) << shape;
    EXPECT_EQ(values(copy_b), values(fast_b)) << shape;
    const Matrix none(rows, 1, 0.0f);
    for (Backend* backend : {static_cast<Backend*>(&fast), static_cast<Backend*>(&reference)}) {
      const auto [zero_w, zero_b] = gradients(*backend, dy, x, none);
      for (std::int64_t e = 0; e < zero_w.size(); ++e) ASSERT_EQ(zero_w.data()[e], 0.0f);
      for (std::int64_t e = 0; e < zero_b.size(); ++e) ASSERT_EQ(zero_b.data()[e], 0.0f);
    }
  }
  Matrix wrong = poisoned(2, 3), bias = poisoned(1, 2);
  EXPECT_THROW(fast.dense_parameter_gradients(random_matrix(4, 2, 1).view(), random_matrix(4, 3, 2).view(),
                                              random_matrix(3, 1, 3).view(), wrong.view(), bias.view()),
               Error);
  EXPECT_THROW(
      FastCpuBackend().Backend::dense_parameter_gradients(random_matrix(4, 2, 1).view(), random_matrix(4, 3, 2).view(),
                                                          random_matrix(4, 1, 3).view(), wrong.view(), bias.view()),
      Error);
}

TEST(FastCpu, ReferenceDenseOpsComposeTheSeparateOps) {
  CpuBackend reference;
  expect_dense_ops_match_reference(reference, kFloat32Tolerance, kCpuMaxWork);
}

TEST(FastCpu, BiasAndEveryActivationMatchReference) {
  FastCpuBackend fast;
  expect_pointwise_ops_match_reference(fast);
}

TEST(FastCpu, EmbeddingMatchesReference) {
  FastCpuBackend fast;
  expect_embedding_matches_reference(fast);
}

TEST(FastCpu, EveryLayerMatchesReference) {
  FastCpuBackend fast;
  expect_every_layer_matches_reference(fast);
}

TEST(FastCpu, LayerNormMatchesReference) {
  FastCpuBackend fast;
  expect_layer_norm_matches_reference(fast);
}

TEST(FastCpu, BatchNormMatchesReference) {
  FastCpuBackend fast;
  expect_batch_norm_matches_reference(fast);
}

// No loss test here: the losses' ops bring no float32 loops, so the fast path runs their float64
// reference (a comparison would compare it with itself); the loss kinds' tests and the finite
// differences check those, and the GPU's run expect_losses_match_reference.

TEST(FastCpu, OptimizersMatchReference) {
  FastCpuBackend fast;
  expect_optimizers_match_reference(fast);
}

TEST(FastCpu, GatherFillCopy) {
  FastCpuBackend fast;
  expect_gather_fill_copy_work(fast);
}

}  // namespace
}  // namespace ember
