#pragma once
// The conformance checks every fast backend passes against the CPU reference (CpuBackend): each op
// on fresh random inputs over a sweep of odd shapes, outputs poisoned with NaN before each run,
// compared by relative error. Used by the fast CPU path's tests and the GPU tests.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "activation_math.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/fast_cpu_backend.hpp"
#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "gpu_support.hpp"
#include "layer_part.hpp"
#include "layers/batch_norm.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/layer_norm.hpp"
#include "loss_part.hpp"
#include "optimizer_math.hpp"
#include "optimizer_part.hpp"

namespace ember::testing {

struct MatmulCase {
  std::int64_t m, n, k;
};
// (1540, 1548, 260), (1543, 1549, 67) and 1024^3 reach the GPU's 128 x 128 kernel (enough tiles to
// fill an H200), with float4 loads (strides multiple of 4, edges not multiples of the tile) and
// without (odd strides); (33, 65, 4099) and (64, 64, 8192) are split over k there. k = 0 is the
// empty sum: c = beta c.
inline const MatmulCase kShapes[] = {{1, 1, 1},         {5, 7, 0},        {1, 257, 1},       {1, 513, 33},
                                     {33, 1, 17},       {17, 33, 65},     {127, 1, 255},     {64, 64, 64},
                                     {130, 131, 67},    {513, 257, 129},  {33, 65, 4099},    {64, 64, 8192},
                                     {1540, 1548, 260}, {1543, 1549, 67}, {1024, 1024, 1024}};

inline Matrix transposed_if(bool transpose, const Matrix& m) {
  if (!transpose) return m;
  Matrix t(m.cols(), m.rows());
  for (std::int64_t r = 0; r < m.rows(); ++r)
    for (std::int64_t c = 0; c < m.cols(); ++c) t(c, r) = m(r, c);
  return t;
}

/// No limit on the multiply-adds of a case (the limits skip what is too slow for the reference
/// on a CPU-only test run, or under compute-sanitizer).
inline constexpr std::int64_t kAnyShape = INT64_MAX;

/// Every transpose mode, alpha/beta with and without reading c, over the kShapes of at most
/// max_work multiply-adds.
inline void expect_matmul_matches_reference(Backend& backend, double tolerance, std::int64_t max_work = kAnyShape) {
  CpuBackend cpu;
  std::uint64_t seed = 100;
  for (const MatmulCase& shape : kShapes)
    if (shape.m * shape.n * shape.k <= max_work)
      for (int mode = 0; mode < 4; ++mode)
        for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.5f, -2.0f}}) {
          const bool ta = mode & 1, tb = mode & 2;
          const Matrix a = transposed_if(ta, random_matrix(shape.m, shape.k, ++seed));
          const Matrix b = transposed_if(tb, random_matrix(shape.k, shape.n, ++seed));
          const Matrix c0 = beta == 0.0f ? poisoned(shape.m, shape.n) : random_matrix(shape.m, shape.n, ++seed);
          Matrix expected = c0;
          const Transpose op_a = ta ? Transpose::yes : Transpose::no, op_b = tb ? Transpose::yes : Transpose::no;
          cpu.matmul(op_a, op_b, alpha, a.view(), b.view(), beta, expected.view());
          OnBackend da(backend, a), db(backend, b), dc(backend, c0);
          backend.matmul(op_a, op_b, alpha, da.view(), db.view(), beta, dc.view());
          EXPECT_LT(relative_error(dc.download(), expected), tolerance)
              << "m " << shape.m << " n " << shape.n << " k " << shape.k << " ta " << ta << " tb " << tb << " beta "
              << beta;
        }
}

// (4096, 256) and (1024, 1027) split the GPU's bias gradient into row chunks, with and without float4.
inline const std::pair<std::int64_t, std::int64_t> kElementwiseShapes[] = {
    {1, 1}, {1, 17}, {17, 33}, {127, 1}, {513, 257}, {1024, 1027}, {4096, 256}};

/// Dropout's op, as its layer part runs it: y = x's kept elements scaled, keyed by seed and counters
/// (two int32 of on's memory).
inline void run_dropout(Backend& on, ConstView x, View y, float rate, std::uint64_t seed,
                        const std::int32_t* counters) {
  on.layer_op(layer_part::Part<Dropout>::kOp, {{&x, 1}, {&y, 1}, {&rate, 1}, {seed, counters}});
}

/// Bias add, bias gradient, every activation part (forward, backward, in place), dropout and row
/// scaling against the float64 reference, over odd shapes.
inline void expect_pointwise_ops_match_reference(Backend& backend) {
  CpuBackend cpu;
  std::uint64_t seed = 500;
  for (const auto& [rows, cols] : kElementwiseShapes) {
    const Matrix x = random_matrix(rows, cols, ++seed), bias = random_matrix(1, cols, ++seed);
    const Matrix dy = random_matrix(rows, cols, ++seed);
    Matrix y = x;
    cpu.bias_add(y.view(), bias.view());
    OnBackend gy(backend, x), gbias(backend, bias);
    backend.bias_add(gy.view(), gbias.view());
    EXPECT_LT(relative_error(gy.download(), y), kFloat32Tolerance) << rows << "x" << cols;

    Matrix db = poisoned(1, cols);
    cpu.bias_gradient(dy.view(), db.view());
    OnBackend gdy(backend, dy), gdb(backend, poisoned(1, cols));
    backend.bias_gradient(gdy.view(), gdb.view());
    EXPECT_LT(relative_error(gdb.download(), db), kFloat32Tolerance) << rows << "x" << cols;

    // Every activation part, forward and backward. ReLU's select is exact; the others compute in
    // float32 (the reference in float64): within float tolerance. Inputs scaled by 4 reach the
    // saturating ranges.
    Matrix z = y;
    for (std::int64_t i = 0; i < z.size(); ++i) z.data()[i] *= 4.0f;
    OnBackend gz(backend, z);
    activations::for_each_part([&](auto part) {
      const Activation kind = decltype(part)::kind;
      const std::string what = to_string(kind) + " " + std::to_string(rows) + "x" + std::to_string(cols);
      Matrix out = poisoned(rows, cols);
      cpu.activation_forward(kind, z.view(), out.view());
      OnBackend gout(backend, poisoned(rows, cols));
      backend.activation_forward(kind, gz.view(), gout.view());
      Matrix dx = poisoned(rows, cols);
      cpu.activation_backward(kind, dy.view(), z.view(), out.view(), dx.view());
      OnBackend gdx(backend, poisoned(rows, cols));
      backend.activation_backward(kind, gdy.view(), gz.view(), gout.view(), gdx.view());
      if (kind == Activation::relu || kind == Activation::linear) {
        EXPECT_EQ(gout.download(), out) << what;
        EXPECT_EQ(gdx.download(), dx) << what;
      } else {
        EXPECT_LT(relative_error(gout.download(), out), kActivationTolerance) << what;
        EXPECT_LT(relative_error(gdx.download(), dx), kActivationTolerance) << what;
      }
      // In place, as the plan runs a forward whose input it does not keep.
      OnBackend inplace(backend, z);
      backend.activation_forward(kind, inplace.view(), inplace.view());
      EXPECT_EQ(inplace.download(), gout.download()) << what << " in place";
    });

    // Dropout: the same mask and products on every backend, bit for bit (one float product per
    // kept element), with the counters read from backend memory; in place as backward runs it.
    const std::int32_t counters[2] = {static_cast<std::int32_t>(rows * 7 + 1), 3};
    Buffer gcounters(backend, sizeof(counters));
    backend.copy_to_device(gcounters.data(), counters, sizeof(counters));
    for (const float rate : {0.0f, 0.1f, 0.5f, 0.93f}) {
      const std::string what = fmt::format("dropout {} {}x{}", rate, rows, cols);
      Matrix out = poisoned(rows, cols);
      run_dropout(cpu, x.view(), out.view(), rate, seed * 31, counters);
      OnBackend gout(backend, poisoned(rows, cols)), gx(backend, x);
      run_dropout(backend, gx.view(), gout.view(), rate, seed * 31, static_cast<const std::int32_t*>(gcounters.data()));
      EXPECT_EQ(gout.download(), out) << what;
      run_dropout(backend, gx.view(), gx.view(), rate, seed * 31, static_cast<const std::int32_t*>(gcounters.data()));
      EXPECT_EQ(gx.download(), out) << what << " in place";
    }

    // Row scaling (sample weights on a loss gradient): one float product per element, zero weights
    // included, the same bits everywhere.
    Matrix scales = random_matrix(rows, 1, ++seed);
    for (std::int64_t r = 0; r < rows; r += 3) scales(r, 0) = 0.0f;
    Matrix scaled = x;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) scaled(r, c) = x(r, c) * scales(r, 0);
    Matrix reference = x;
    cpu.scale_rows(scales.view(), reference.view());
    EXPECT_EQ(reference, scaled) << "scale_rows " << rows << "x" << cols;
    OnBackend gscaled(backend, x), gscales(backend, scales);
    backend.scale_rows(gscales.view(), gscaled.view());
    EXPECT_EQ(gscaled.download(), scaled) << "scale_rows " << rows << "x" << cols;
  }
}

/// One layer of every kind (one_layer_of_each_kind, so a kind that is added is covered) through its
/// part, on backend and on the reference: forward in training and predicting, the state it moves,
/// and backward's parameter gradients and input gradient, over rows and widths narrower and wider
/// than a block of threads, random parameters.
inline void expect_every_layer_matches_reference(Backend& backend) {
  CpuBackend cpu;
  std::uint64_t seed = 1900;
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 3}, {17, 33}, {130, 300}, {3, 1030}};
  for (const Layer& layer : one_layer_of_each_kind()) {
    for (const auto& [rows, in] : shapes) {
      const std::string what = fmt::format("{} on {}x{}", describe(layer), rows, in);
      const std::int64_t out = layer_part::output_width(layer, in);
      // Its tensors as initialized, the trained ones moved off their start (a scale of one).
      std::vector<float> values;
      layer_part::initialize(layer, in, ++seed, values);
      std::vector<float> trained, state;
      std::size_t at = 0;
      Random random(++seed);
      for (const layer_part::ParameterShape& tensor : layer_part::parameters(layer, in)) {
        std::int64_t count = 1;
        for (const std::int64_t d : tensor.shape) count *= d;
        for (std::int64_t i = 0; i < count; ++i, ++at)
          (tensor.state ? state : trained)
              .push_back(tensor.state ? values[at] : values[at] + 0.5f * static_cast<float>(random.normal()));
      }
      const auto matrix = [](const std::vector<float>& v) {
        Matrix m(1, std::max<std::int64_t>(1, static_cast<std::int64_t>(v.size())), 0.0f);
        std::copy(v.begin(), v.end(), m.data());
        return m;
      };
      const Matrix x = random_input({layer}, rows, in, ++seed), dy = random_matrix(rows, out, ++seed);
      const Matrix counters_host(1, 2, 0.0f);  // two int32: the cursor 0, the epoch 0
      struct Run {
        Matrix output, inference, state, gradients, dx;
      };
      const auto run = [&](Backend& b) {
        OnBackend parameters(b, matrix(trained)),
            gradients(b, poisoned(1, std::max<std::int64_t>(1, std::ssize(trained)))), moving(b, matrix(state)),
            input(b, x), output(b, poisoned(rows, out)), extra(b, poisoned(rows, out)), gradient(b, dy),
            dx(b, poisoned(rows, in)), counters(b, counters_host);
        const layer_part::Buffers buffers = layer_part::buffers(layer, true);
        layer_part::Slots slots{.in = in,
                                .out = out,
                                .parameters = parameters.view().data,
                                .gradients = gradients.view().data,
                                .state = moving.view().data,
                                .output = buffers.output ? output.view().data : nullptr,
                                .extra = buffers.extra ? extra.view().data : nullptr,
                                .seed = 77};
        const auto* step = reinterpret_cast<const std::int32_t*>(counters.view().data);
        const layer_part::Pass training{.backend = b, .rows = rows, .training = true, .counters = step};
        const ConstView y = layer_part::forward(layer, slots, training, input.view());
        Matrix forward_output(rows, out);
        b.copy_to_host(forward_output.data(), y.data, static_cast<std::size_t>(rows * out) * sizeof(float));
        layer_part::backward(layer, slots, training, input.view(), y, gradient.view(), false, std::nullopt, dx.view());
        Run result{forward_output, {}, moving.download(), gradients.download(), dx.download()};
        // Predicting, on the parameters (and state) training left; the output buffer its own.
        OnBackend predicted(b, poisoned(rows, out));
        slots.output = layer_part::buffers(layer, false).output ? predicted.view().data : nullptr;
        slots.extra = nullptr;
        const ConstView p =
            layer_part::forward(layer, slots, {.backend = b, .rows = rows, .counters = step}, input.view());
        result.inference = Matrix(rows, out);
        b.copy_to_host(result.inference.data(), p.data, static_cast<std::size_t>(rows * out) * sizeof(float));
        return result;
      };
      const Run want = run(cpu), got = run(backend);
      EXPECT_LT(relative_error(got.output, want.output), kFloat32Tolerance) << what;
      EXPECT_LT(relative_error(got.inference, want.inference), kFloat32Tolerance) << what << " predicting";
      if (!state.empty()) {
        EXPECT_LT(relative_error(got.state, want.state), kFloat32Tolerance) << what << " state";
      }
      if (!trained.empty()) {
        EXPECT_LT(relative_error(got.gradients, want.gradients), kFloat32Tolerance) << what << " gradients";
      }
      EXPECT_LT(relative_error(got.dx, want.dx), kFloat32Tolerance) << what << " dx";
    }
  }
}

/// LayerNorm forward and backward against the reference: rows narrower and wider than a block of
/// threads, one column (a zero variance), inputs off centre; dx in place over dy (as the contract
/// allows) and the same bits run after run.
inline void expect_layer_norm_matches_reference(Backend& backend) {
  using Ops = layer_part::Part<LayerNorm>;
  CpuBackend cpu;
  std::uint64_t seed = 700;
  const float epsilon = 1e-5f;
  // The part's two ops (View{} with null data: an output not asked for).
  const auto forward = [&](Backend& on, ConstView x, ConstView scale, ConstView shift, View y, View normalized) {
    const ConstView in[] = {x, scale, shift};
    const View out[] = {y, normalized};
    on.layer_op(Ops::kForward, {in, out, {&epsilon, 1}});
  };
  const auto backward = [&](Backend& on, ConstView dy, ConstView x, ConstView normalized, ConstView scale,
                            View scale_gradient, View shift_gradient, View dx) {
    const ConstView in[] = {dy, x, normalized, scale};
    const View out[] = {scale_gradient, shift_gradient, dx};
    on.layer_op(Ops::kBackward, {in, out, {&epsilon, 1}});
  };
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1},     {1, 17},    {17, 33}, {127, 1},
                                                          {513, 257}, {64, 1000}, {3, 4099}};
  for (const auto& [rows, cols] : shapes) {
    const std::string what = fmt::format("layer_norm {}x{}", rows, cols);
    Matrix x = random_matrix(rows, cols, ++seed);
    for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = 3.0f * x.data()[i] + 5.0f;
    const Matrix scale = random_matrix(1, cols, ++seed), shift = random_matrix(1, cols, ++seed);
    const Matrix dy = random_matrix(rows, cols, ++seed);
    const View none{nullptr, rows, cols};
    Matrix y = poisoned(rows, cols), normalized = poisoned(rows, cols);
    forward(cpu, x.view(), scale.view(), shift.view(), y.view(), normalized.view());
    OnBackend gx(backend, x), gscale(backend, scale), gshift(backend, shift);
    OnBackend gy(backend, poisoned(rows, cols)), gnormalized(backend, poisoned(rows, cols));
    forward(backend, gx.view(), gscale.view(), gshift.view(), gy.view(), gnormalized.view());
    EXPECT_LT(relative_error(gy.download(), y), kFloat32Tolerance) << what;
    EXPECT_LT(relative_error(gnormalized.download(), normalized), kFloat32Tolerance) << what;
    OnBackend gy_alone(backend, poisoned(rows, cols));
    forward(backend, gx.view(), gscale.view(), gshift.view(), gy_alone.view(), none);
    EXPECT_EQ(gy_alone.download(), gy.download()) << what << " without normalized";

    Matrix dscale = poisoned(1, cols), dshift = poisoned(1, cols), dx = poisoned(rows, cols);
    backward(cpu, dy.view(), x.view(), normalized.view(), scale.view(), dscale.view(), dshift.view(), dx.view());
    OnBackend gdy(backend, dy), gdscale(backend, poisoned(1, cols)), gdshift(backend, poisoned(1, cols));
    OnBackend gdx(backend, poisoned(rows, cols));
    backward(backend, gdy.view(), gx.view(), gnormalized.view(), gscale.view(), gdscale.view(), gdshift.view(),
             gdx.view());
    EXPECT_LT(relative_error(gdscale.download(), dscale), kFloat32Tolerance) << what;
    EXPECT_LT(relative_error(gdshift.download(), dshift), kFloat32Tolerance) << what;
    EXPECT_LT(relative_error(gdx.download(), dx), kFloat32Tolerance) << what;
    // dx over dy, and the parameter gradients alone: the same bits.
    OnBackend inplace(backend, dy), again_scale(backend, poisoned(1, cols)), again_shift(backend, poisoned(1, cols));
    backward(backend, inplace.view(), gx.view(), gnormalized.view(), gscale.view(), again_scale.view(),
             again_shift.view(), inplace.view());
    EXPECT_EQ(inplace.download(), gdx.download()) << what << " in place";
    EXPECT_EQ(again_scale.download(), gdscale.download()) << what;
    OnBackend alone_scale(backend, poisoned(1, cols)), alone_shift(backend, poisoned(1, cols));
    backward(backend, gdy.view(), gx.view(), gnormalized.view(), gscale.view(), alone_scale.view(), alone_shift.view(),
             none);
    EXPECT_EQ(alone_shift.download(), gdshift.download()) << what << " without dx";
  }
}

/// BatchNorm's two ops, as its layer part runs them (the arguments in the order of the formulas).
inline void run_batch_norm_forward(Backend& on, ConstView x, ConstView scale, ConstView shift, View running_mean,
                                   View running_var, float epsilon, float momentum, bool training, View y,
                                   const BatchAcrossRanks* ranks) {
  const ConstView in[] = {x, scale, shift};
  const View out[] = {y, running_mean, running_var};
  const float settings[] = {epsilon, momentum, training ? 1.0f : 0.0f};
  on.layer_op(layer_part::Part<BatchNorm>::kForward, {in, out, settings, {}, ranks});
}
inline void run_batch_norm_backward(Backend& on, ConstView dy, ConstView x, ConstView scale, float epsilon,
                                    View scale_gradient, View shift_gradient, std::optional<View> dx,
                                    const BatchAcrossRanks* ranks) {
  const ConstView in[] = {dy, x, scale};
  const View out[] = {scale_gradient, shift_gradient, dx.value_or(View{nullptr, dy.rows, dy.cols})};
  on.layer_op(layer_part::Part<BatchNorm>::kBackward, {in, out, {&epsilon, 1}, {}, ranks});
}

/// BatchNorm over a batch spread across two ranks (BatchAcrossRanks), seen from rank 1, whose sum
/// adds rank 2's part (plain float64 loops here) to each of the op's sums in turn: the output, the
/// running figures, the gradients' totals and dx (in rank 1's units: its rows' mean loss) equal the
/// reference's on the whole batch, rank 1's rows then rank 2's. Ranks without rows, and a whole
/// batch of one row (the running figures stay).
inline void expect_batch_norm_across_ranks_matches_whole_batch(Backend& backend) {
  CpuBackend cpu;
  std::uint64_t seed = 950;
  struct Case {
    std::int64_t mine, other, cols;
  };
  for (const Case& c :
       {Case{0, 5, 3}, Case{1, 0, 4}, Case{1, 1, 17}, Case{7, 9, 33}, Case{200, 57, 257}, Case{31, 64, 1000}}) {
    const std::int64_t rows = c.mine + c.other, cols = c.cols;
    const std::string what = fmt::format("batch_norm across ranks {}+{}x{}", c.mine, c.other, cols);
    Matrix whole = random_matrix(rows, cols, ++seed), whole_dy = random_matrix(rows, cols, ++seed);
    for (std::int64_t i = 0; i < whole.size(); ++i) whole.data()[i] = 3.0f * whole.data()[i] + 5.0f;
    const double mine_share = static_cast<double>(c.mine) / static_cast<double>(rows),
                 other_share = static_cast<double>(c.other) / static_cast<double>(rows);
    Matrix x(c.mine, cols), dy(c.mine, cols), scaled_dy = whole_dy;  // each rank's dy: its rows' mean
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < cols; ++j) {
        if (r < c.mine) {
          x(r, j) = whole(r, j);
          dy(r, j) = whole_dy(r, j);
        }
        scaled_dy(r, j) = static_cast<float>(whole_dy(r, j) * (r < c.mine ? mine_share : other_share));
      }
    const Matrix scale = random_matrix(1, cols, ++seed), shift = random_matrix(1, cols, ++seed);
    Matrix running_mean = random_matrix(1, cols, ++seed), running_var = random_matrix(1, cols, ++seed);
    for (std::int64_t j = 0; j < cols; ++j) running_var.data()[j] += 1.5f;
    const float epsilon = 1e-5f, momentum = 0.3f;

    // The reference on the whole batch.
    Matrix y = poisoned(rows, cols), mean = running_mean, var = running_var;
    run_batch_norm_forward(cpu, whole.view(), scale.view(), shift.view(), mean.view(), var.view(), epsilon, momentum,
                           true, y.view(), nullptr);
    Matrix dscale = poisoned(1, cols), dshift = poisoned(1, cols), dx = poisoned(rows, cols);
    run_batch_norm_backward(cpu, scaled_dy.view(), whole.view(), scale.view(), epsilon, dscale.view(), dshift.view(),
                            dx.view(), nullptr);

    // Rank 1 on the backend; its sum adds rank 2's rows' part.
    int calls = 0;
    std::vector<double> column_mean(static_cast<std::size_t>(cols)), inverse_std(static_cast<std::size_t>(cols));
    const SumOverRanks sum = [&](float* values, std::int64_t count, bool scaled) {
      std::vector<float> host(static_cast<std::size_t>(count));
      backend.copy_to_host(host.data(), values, host.size() * sizeof(float));
      const int call = calls++;
      EXPECT_EQ(scaled, call == 2) << what << ": sum " << call;
      EXPECT_EQ(count, call == 0 ? cols + 1 : call == 1 ? cols : 2 * cols) << what << ": sum " << call;
      for (std::int64_t j = 0; j < cols; ++j) {
        const auto i = static_cast<std::size_t>(j);
        double a = 0.0, b = 0.0;
        for (std::int64_t r = c.mine; r < rows; ++r) {
          const double centred = (whole(r, j) - column_mean[i]) * inverse_std[i];
          a += call == 0 ? whole(r, j) : call == 1 ? centred * centred : whole_dy(r, j);
          b += call == 2 ? whole_dy(r, j) * centred : 0.0;
        }
        if (call == 2) {
          host[i] = static_cast<float>(host[i] * mine_share + a * other_share);
          host[i + static_cast<std::size_t>(cols)] =
              static_cast<float>(host[i + static_cast<std::size_t>(cols)] * mine_share + b * other_share);
        } else {
          host[i] = static_cast<float>(host[i] + a);
        }
      }
      if (call == 0) {
        host[static_cast<std::size_t>(cols)] += static_cast<float>(c.other);
        for (std::size_t i = 0; i < column_mean.size(); ++i) column_mean[i] = host[i] / static_cast<double>(rows);
        // The second sum's deviations are the plain ones (inverse_std 1); backward's normalized.
        std::fill(inverse_std.begin(), inverse_std.end(), 1.0);
      } else if (call == 1) {
        for (std::size_t i = 0; i < inverse_std.size(); ++i)
          inverse_std[i] = 1.0 / std::sqrt(host[i] / static_cast<double>(rows) + epsilon);
      }
      backend.copy_to_device(values, host.data(), host.size() * sizeof(float));
    };
    OnBackend scratch(backend, poisoned(1, 4 * cols + 1));
    const BatchAcrossRanks ranks{static_cast<float*>(scratch.view().data), sum};
    OnBackend gx(backend, x), gscale(backend, scale), gshift(backend, shift), gy(backend, poisoned(c.mine, cols));
    OnBackend gmean(backend, running_mean), gvar(backend, running_var);
    run_batch_norm_forward(backend, gx.view(), gscale.view(), gshift.view(), gmean.view(), gvar.view(), epsilon,
                           momentum, true, gy.view(), &ranks);
    ASSERT_EQ(calls, 2) << what;
    Matrix y_mine(c.mine, cols);
    std::copy(y.data(), y.data() + y_mine.size(), y_mine.data());
    if (c.mine > 0) {
      EXPECT_LT(relative_error(gy.download(), y_mine), kFloat32Tolerance) << what;
    }
    EXPECT_LT(relative_error(gmean.download(), mean), kFloat32Tolerance) << what;
    EXPECT_LT(relative_error(gvar.download(), var), kFloat32Tolerance) << what;
    if (rows == 1) {
      EXPECT_EQ(gvar.download(), running_var) << what << ": one row, the running figures stay";
    }

    OnBackend gdy(backend, dy), gdscale(backend, poisoned(1, cols)), gdshift(backend, poisoned(1, cols)),
        gdx(backend, poisoned(c.mine, cols));
    run_batch_norm_backward(backend, gdy.view(), gx.view(), gscale.view(), epsilon, gdscale.view(), gdshift.view(),
                            gdx.view(), &ranks);
    ASSERT_EQ(calls, 3) << what;
    const Matrix totals = scratch.download();
    Matrix shift_total(1, cols), scale_total(1, cols);
    std::copy(totals.data() + 2 * cols + 1, totals.data() + 3 * cols + 1, shift_total.data());
    std::copy(totals.data() + 3 * cols + 1, totals.data() + 4 * cols + 1, scale_total.data());
    EXPECT_LT(relative_error(shift_total, dshift), kFloat32Tolerance) << what;
    EXPECT_LT(relative_error(scale_total, dscale), kFloat32Tolerance) << what;
    if (c.mine == 0) continue;
    Matrix dx_mine(c.mine, cols);
    for (std::int64_t i = 0; i < dx_mine.size(); ++i) dx_mine.data()[i] = static_cast<float>(dx.data()[i] / mine_share);
    EXPECT_LT(relative_error(gdx.download(), dx_mine), kFloat32Tolerance) << what;
  }
}

/// BatchNorm forward (training, with the running figures' update, and predicting) and backward
/// against the reference: one row (the running figures stay), one column, columns fewer and more
/// than a block of threads, inputs off centre; y over x and dx over dy (as the contract allows) and
/// the same bits run after run.
inline void expect_batch_norm_matches_reference(Backend& backend) {
  CpuBackend cpu;
  std::uint64_t seed = 900;
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1},     {1, 17},    {17, 33}, {127, 1},
                                                          {513, 257}, {64, 1000}, {3, 4099}};
  for (const auto& [rows, cols] : shapes) {
    const std::string what = fmt::format("batch_norm {}x{}", rows, cols);
    Matrix x = random_matrix(rows, cols, ++seed);
    for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = 3.0f * x.data()[i] + 5.0f;
    const Matrix scale = random_matrix(1, cols, ++seed), shift = random_matrix(1, cols, ++seed);
    Matrix running_mean = random_matrix(1, cols, ++seed), running_var = random_matrix(1, cols, ++seed);
    for (std::int64_t c = 0; c < cols; ++c) running_var.data()[c] += 1.5f;  // positive
    const Matrix dy = random_matrix(rows, cols, ++seed);
    const float epsilon = 1e-5f, momentum = 0.3f;
    for (const bool training : {true, false}) {
      const std::string mode = what + (training ? " training" : " predicting");
      Matrix y = poisoned(rows, cols), mean = running_mean, var = running_var;
      run_batch_norm_forward(cpu, x.view(), scale.view(), shift.view(), mean.view(), var.view(), epsilon, momentum,
                             training, y.view(), nullptr);
      OnBackend gx(backend, x), gscale(backend, scale), gshift(backend, shift), gy(backend, poisoned(rows, cols));
      OnBackend gmean(backend, running_mean), gvar(backend, running_var);
      run_batch_norm_forward(backend, gx.view(), gscale.view(), gshift.view(), gmean.view(), gvar.view(), epsilon,
                             momentum, training, gy.view(), nullptr);
      EXPECT_LT(relative_error(gy.download(), y), kFloat32Tolerance) << mode;
      EXPECT_LT(relative_error(gmean.download(), mean), kFloat32Tolerance) << mode;
      EXPECT_LT(relative_error(gvar.download(), var), kFloat32Tolerance) << mode;
      if (!training || rows == 1) {
        EXPECT_EQ(gmean.download(), running_mean) << mode << ": the running figures stay";
        EXPECT_EQ(gvar.download(), running_var) << mode;
      }
      // y over x: the same bits.
      OnBackend inplace(backend, x), again_mean(backend, running_mean), again_var(backend, running_var);
      run_batch_norm_forward(backend, inplace.view(), gscale.view(), gshift.view(), again_mean.view(), again_var.view(),
                             epsilon, momentum, training, inplace.view(), nullptr);
      EXPECT_EQ(inplace.download(), gy.download()) << mode << " in place";
      EXPECT_EQ(again_var.download(), gvar.download()) << mode;
    }

    Matrix dscale = poisoned(1, cols), dshift = poisoned(1, cols), dx = poisoned(rows, cols);
    run_batch_norm_backward(cpu, dy.view(), x.view(), scale.view(), epsilon, dscale.view(), dshift.view(), dx.view(),
                            nullptr);
    OnBackend gx(backend, x), gscale(backend, scale), gdy(backend, dy);
    OnBackend gdscale(backend, poisoned(1, cols)), gdshift(backend, poisoned(1, cols)),
        gdx(backend, poisoned(rows, cols));
    run_batch_norm_backward(backend, gdy.view(), gx.view(), gscale.view(), epsilon, gdscale.view(), gdshift.view(),
                            gdx.view(), nullptr);
    EXPECT_LT(relative_error(gdscale.download(), dscale), kFloat32Tolerance) << what;
    EXPECT_LT(relative_error(gdshift.download(), dshift), kFloat32Tolerance) << what;
    // One row: dx is exactly zero (the row is its own mean), so no error at all is allowed.
    EXPECT_LT(relative_error(gdx.download(), dx), rows == 1 ? 1e-30 : kFloat32Tolerance) << what;
    OnBackend inplace(backend, dy), again_scale(backend, poisoned(1, cols)), again_shift(backend, poisoned(1, cols));
    run_batch_norm_backward(backend, inplace.view(), gx.view(), gscale.view(), epsilon, again_scale.view(),
                            again_shift.view(), inplace.view(), nullptr);
    EXPECT_EQ(inplace.download(), gdx.download()) << what << " in place";
    EXPECT_EQ(again_scale.download(), gdscale.download()) << what;
    OnBackend alone_scale(backend, poisoned(1, cols)), alone_shift(backend, poisoned(1, cols));
    run_batch_norm_backward(backend, gdy.view(), gx.view(), gscale.view(), epsilon, alone_scale.view(),
                            alone_shift.view(), std::nullopt, nullptr);
    EXPECT_EQ(alone_shift.download(), gdshift.download()) << what << " without dx";
  }
  expect_batch_norm_across_ranks_matches_whole_batch(backend);
}

/// The embedding lookup and its backward against the reference: one index column and several, with
/// and without values passing through, tables of one to 50000 rows (a batch that repeats categories
/// and one that leaves most unused), bad indices (NaNs out, nothing added); forward copies exactly,
/// the table's sums within float tolerance of the float64 ones and the same bits as the fast CPU
/// path's, which adds in the same order.
inline void expect_embedding_matches_reference(Backend& backend) {
  using Ops = layer_part::Part<Embedding>;
  CpuBackend cpu;
  FastCpuBackend fast;
  std::uint64_t seed = 900;
  // The part's two ops (View{} with null data: an output not asked for).
  const auto forward = [](Backend& on, ConstView x, ConstView table, std::int64_t columns, View y) {
    const ConstView in[] = {x, table};
    const float setting = static_cast<float>(columns);
    on.layer_op(Ops::kForward, {in, {&y, 1}, {&setting, 1}});
  };
  const auto backward = [](Backend& on, ConstView dy, ConstView x, std::int64_t columns, View table_gradient, View dx) {
    const ConstView in[] = {dy, x};
    const View out[] = {table_gradient, dx};
    const float setting = static_cast<float>(columns);
    on.layer_op(Ops::kBackward, {in, out, {&setting, 1}});
  };
  struct Case {
    std::int64_t rows, in, columns, categories, dim;
  };
  const Case cases[] = {{1, 1, 1, 1, 1},    {7, 3, 2, 5, 3},      {33, 4, 4, 1000, 8},
                        {257, 5, 1, 3, 17}, {64, 2, 1, 50000, 2}, {300, 9, 3, 40, 33}};
  const auto same = [](const Matrix& a, const Matrix& b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
    for (std::int64_t i = 0; i < a.size(); ++i)
      if (std::isnan(a.data()[i]) != std::isnan(b.data()[i]) ||
          (!std::isnan(a.data()[i]) && a.data()[i] != b.data()[i]))
        return false;
    return true;
  };
  for (const Case& c : cases) {
    const std::string what =
        fmt::format("embedding {}x{}, {} index columns into ({}, {})", c.rows, c.in, c.columns, c.categories, c.dim);
    Matrix x = random_matrix(c.rows, c.in, ++seed);
    Random random(++seed);
    for (std::int64_t r = 0; r < c.rows; ++r)
      for (std::int64_t j = c.in - c.columns; j < c.in; ++j)
        x(r, j) = static_cast<float>(random.below(static_cast<std::uint64_t>(c.categories)));
    if (c.rows > 4) {  // bad indices: below 0, past the table, between two, NaN
      x(1, c.in - 1) = -1.0f;
      x(2, c.in - 1) = static_cast<float>(c.categories);
      x(3, c.in - 1) = 0.5f;
      x(4, c.in - 1) = std::numeric_limits<float>::quiet_NaN();
    }
    const std::int64_t width = c.in - c.columns + c.columns * c.dim;
    const Matrix table = random_matrix(c.categories, c.dim, ++seed), dy = random_matrix(c.rows, width, ++seed);
    Matrix y = poisoned(c.rows, width);
    forward(cpu, x.view(), table.view(), c.columns, y.view());
    OnBackend gx(backend, x), gtable(backend, table), gy(backend, poisoned(c.rows, width));
    forward(backend, gx.view(), gtable.view(), c.columns, gy.view());
    EXPECT_TRUE(same(gy.download(), y)) << what;
    if (c.rows > 4) {
      EXPECT_TRUE(std::isnan(y(3, width - 1))) << what << ": a bad index gives NaNs";
    }

    Matrix dtable = poisoned(c.categories, c.dim), dx = poisoned(c.rows, c.in);
    backward(cpu, dy.view(), x.view(), c.columns, dtable.view(), dx.view());
    OnBackend gdy(backend, dy), gdtable(backend, poisoned(c.categories, c.dim)), gdx(backend, poisoned(c.rows, c.in));
    backward(backend, gdy.view(), gx.view(), c.columns, gdtable.view(), gdx.view());
    EXPECT_LT(relative_error(gdtable.download(), dtable), kFloat32Tolerance) << what;
    EXPECT_TRUE(same(gdx.download(), dx)) << what;
    Matrix fast_dtable = poisoned(c.categories, c.dim);
    backward(fast, dy.view(), x.view(), c.columns, fast_dtable.view(), View{nullptr, c.rows, c.in});
    OnBackend alone(backend, poisoned(c.categories, c.dim));
    backward(backend, gdy.view(), gx.view(), c.columns, alone.view(), View{nullptr, c.rows, c.in});
    EXPECT_TRUE(same(alone.download(), fast_dtable)) << what << ": the fast CPU path's bits, without dx";
  }
}

// A regression loss's shapes (expect_losses_match_reference).
inline const std::pair<std::int64_t, std::int64_t> kLossShapes[] = {{1, 1},    {1, 17},    {17, 33},   {127, 1},
                                                                    {5000, 3}, {70001, 1}, {513, 257}, {4096, 256}};

/// The loss's op on backend: loss_part::enqueue, as a plan runs it.
inline void run_loss(Backend& backend, const Loss& loss, ConstView prediction, ConstView target, float* sums,
                     std::optional<View> gradient) {
  loss_part::enqueue(backend, loss, prediction, target, sums, gradient);
}

/// Every kind of loss (its registered example, and at its default settings) against the reference:
/// sums and gradient over odd shapes, the same bits run after run and with or without a gradient.
inline void expect_losses_match_reference(Backend& backend) {
  CpuBackend cpu;
  std::uint64_t seed = 900;
  for (const LossExample& example : one_loss_of_each_kind()) {
    const Loss defaults = loss_named(loss_name(example.loss));
    for (const Loss& loss : {example.loss, defaults}) {
      const bool classification = is_classification(loss);
      // Regression: one chunk of rows and many ((70001, 1), (4096, 256)), widths below, at and above
      // the kernel's 32 column lanes. Classification: two classes on one logit, and 2, 3, 4, 17, 1000
      // and 4100 logits (multiples of 4: 16-byte loads on the GPU, fewer than a warp's lanes up to
      // several per lane).
      const std::vector<std::pair<std::int64_t, std::int64_t>> shapes =
          classification
              ? std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {1, 3},    {33, 2},    {517, 1},  {5000, 3},
                                                                   {9, 4}, {300, 17}, {70, 1000}, {20, 4100}}
              : std::vector<std::pair<std::int64_t, std::int64_t>>(std::begin(kLossShapes), std::end(kLossShapes));
      for (const auto& [rows, cols] : shapes) {
        const std::string name = fmt::format("{} {}x{}", describe(loss), rows, cols);
        Matrix p = random_matrix(rows, cols, ++seed);
        Matrix t = random_matrix(rows, classification ? 1 : cols, ++seed);
        if (classification) {
          for (std::int64_t i = 0; i < p.size(); ++i) p.data()[i] *= 4;  // confident and wrong rows too
          Random random(++seed);
          for (std::int64_t r = 0; r < rows; ++r)
            t(r, 0) = static_cast<float>(random.below(static_cast<std::uint64_t>(std::max<std::int64_t>(cols, 2))));
        }
        // The sums accumulate: start from values already there.
        const std::int64_t width = loss_part::sums_width(loss, cols);
        Matrix start = random_matrix(1, width, ++seed);
        if (classification) start(0, 1) = 3.0f;  // a count of rows
        Matrix sums = start, gradient = poisoned(rows, cols);
        run_loss(cpu, loss, p.view(), t.view(), sums.data(), gradient.view());
        OnBackend gp(backend, p), gt(backend, t), gsums(backend, start), ggradient(backend, poisoned(rows, cols));
        run_loss(backend, loss, gp.view(), gt.view(), gsums.view().data, ggradient.view());
        const Matrix first = gsums.download();
        if (classification) {
          EXPECT_LT(relative_error(first.data(), sums.data(), 1), kFloat32Tolerance) << name << " loss";
          EXPECT_EQ(first(0, 1), sums(0, 1)) << name << " rows predicted right";
        } else {
          EXPECT_LT(relative_error(first, sums), kFloat32Tolerance) << name;
        }
        EXPECT_LT(relative_error(ggradient.download(), gradient), kFloat32Tolerance) << name;
        // The same inputs give the same bits (no atomics whose order varies); without a gradient the
        // sums are the same.
        OnBackend again(backend, start);
        run_loss(backend, loss, gp.view(), gt.view(), again.view().data, std::nullopt);
        EXPECT_EQ(again.download(), first) << name;
      }
    }
  }
}

/// Every optimizer's update, three steps from random state over tails of every length (count % 4),
/// at a learning-rate factor of 0.5 and step counts 1 to 3 read from backend memory.
/// clip_by_norm against the reference: one block's partial sums, several, and the whole grid, below
/// and above the norm; the same bits run after run (the sums' order depends on the count alone).
inline void expect_clip_matches_reference(Backend& backend) {
  CpuBackend cpu;
  std::uint64_t seed = 900;
  for (const std::int64_t count : {std::int64_t{1}, std::int64_t{255}, std::int64_t{65553}, std::int64_t{200003}}) {
    const Matrix values = random_matrix(1, count, ++seed);
    for (const float max_norm : {0.05f, 1e9f}) {
      Matrix expected = values;
      cpu.clip_by_norm(expected.data(), count, max_norm);
      OnBackend once(backend, values), twice(backend, values);
      backend.clip_by_norm(once.view().data, count, max_norm);
      backend.clip_by_norm(twice.view().data, count, max_norm);
      const std::string what = fmt::format("clip_by_norm {} to {}", count, max_norm);
      EXPECT_LT(relative_error(once.download(), expected), kFloat32Tolerance) << what;
      EXPECT_EQ(once.download(), twice.download()) << what;
      if (max_norm > 1e8f) {
        EXPECT_EQ(once.download(), values) << what;
      }
    }
  }
}

inline void expect_optimizers_match_reference(Backend& backend) {
  CpuBackend cpu;
  const std::vector<Optimizer> settings = optimizer_examples();
  // Every registered optimizer part is among them (optimizer_examples refuses a kind without one;
  // this, a part without a kind).
  optimizer_parts::for_each_part([&](auto part) {
    const bool covered = std::any_of(settings.begin(), settings.end(), [](const Optimizer& optimizer) {
      return std::holds_alternative<typename decltype(part)::Settings>(optimizer);
    });
    EXPECT_TRUE(covered) << "an optimizer part has no example (tests/optimizers/NAME_test.cpp)";
  });
  std::uint64_t seed = 1300;
  for (const std::int64_t count : {1, 3, 17, 1026, 100003})
    for (const Optimizer& optimizer : settings) {
      // Two state regions, count floats apart, whatever the optimizer uses; non-negative, as a
      // second moment must be.
      Matrix w = random_matrix(1, count, ++seed), state = random_matrix(1, 2 * count, ++seed);
      for (std::int64_t i = 0; i < state.size(); ++i) state.data()[i] = std::abs(state.data()[i]);
      const Matrix g = random_matrix(1, count, ++seed);
      OnBackend gw(backend, w), gs(backend, state), gg(backend, g);
      OptimizerScalars host{.lr_scale = 0.5f, .step = 0};
      Buffer scalars(backend, sizeof(OptimizerScalars));
      auto* device = static_cast<OptimizerScalars*>(scalars.data());
      backend.copy_to_device(device, &host, sizeof(host));
      for (int step = 0; step < 3; ++step) {
        if (optimizer_part::counts_steps(optimizer)) {
          ++host.step;
          backend.advance_cursor(&device->step, 1);
        }
        cpu.optimizer_update(optimizer, w.data(), g.data(), state.data(), count, count, &host);
        backend.optimizer_update(optimizer, gw.view().data, gg.view().data, gs.view().data, count, count, device);
      }
      const std::string name = settings_json(optimizer);
      EXPECT_LT(relative_error(gw.download(), w), kFloat32Tolerance) << name << " " << count;
      EXPECT_LT(relative_error(gs.download(), state), kFloat32Tolerance) << name << " " << count;
    }
}

inline void expect_gather_fill_copy_work(Backend& backend) {
  const Matrix source = random_matrix(257, 33, 1700);
  std::vector<std::int32_t> indices(257);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int32_t>((i * 97) % 257);
  Buffer device_indices(backend, indices.size() * sizeof(std::int32_t)), cursor(backend, sizeof(std::int32_t));
  backend.copy_to_device(device_indices.data(), indices.data(), indices.size() * sizeof(std::int32_t));
  const std::int32_t start = 5;
  backend.copy_to_device(cursor.data(), &start, sizeof(start));
  OnBackend gsource(backend, source), batch(backend, poisoned(127, 33));
  backend.gather_rows(gsource.view(), static_cast<const std::int32_t*>(device_indices.data()),
                      static_cast<const std::int32_t*>(cursor.data()), batch.view());
  backend.advance_cursor(static_cast<std::int32_t*>(cursor.data()), 127);
  std::int32_t moved = 0;
  backend.copy_to_host(&moved, cursor.data(), sizeof(moved));
  EXPECT_EQ(moved, 132);
  std::vector<std::int64_t> expected_rows;
  for (int r = 0; r < 127; ++r) expected_rows.push_back(indices[static_cast<std::size_t>(start + r)]);
  EXPECT_EQ(batch.download(), source.take_rows(expected_rows));

  // A training step's batch: x and y at the same cursor, which advances by the batch's rows; twice,
  // so that whatever the backend keeps between launches is reset (the GPU's block count).
  const Matrix targets = random_matrix(257, 3, 1701);
  OnBackend gtargets(backend, targets);
  std::int32_t position = start;
  backend.copy_to_device(cursor.data(), &position, sizeof(position));
  for (const std::int64_t rows : {127, 99}) {
    OnBackend x_batch(backend, poisoned(rows, 33)), y_batch(backend, poisoned(rows, 3));
    backend.gather_batch(gsource.view(), gtargets.view(), static_cast<const std::int32_t*>(device_indices.data()),
                         static_cast<std::int32_t*>(cursor.data()), x_batch.view(), y_batch.view());
    std::vector<std::int64_t> picked;
    for (std::int64_t r = 0; r < rows; ++r) picked.push_back(indices[static_cast<std::size_t>(position + r)]);
    EXPECT_EQ(x_batch.download(), source.take_rows(picked)) << rows;
    EXPECT_EQ(y_batch.download(), targets.take_rows(picked)) << rows;
    position += static_cast<std::int32_t>(rows);
    std::int32_t now = 0;
    backend.copy_to_host(&now, cursor.data(), sizeof(now));
    EXPECT_EQ(now, position) << rows;
  }

  OnBackend filled(backend, poisoned(17, 33));
  backend.fill(filled.view(), 3.5f);
  EXPECT_EQ(filled.download(), Matrix(17, 33, 3.5f));
  OnBackend copied(backend, poisoned(257, 33));
  backend.copy(gsource.view(), copied.view());
  EXPECT_EQ(copied.download(), source);
}

/// Expects the weight and bias gradients of a dense_backward to match the reference's.
inline void expect_parameter_gradients(const OnBackend& weight_gradient, const OnBackend& bias_gradient,
                                       const Matrix& expected_weight_gradient, const Matrix& expected_bias_gradient,
                                       double tolerance, const std::string& what) {
  EXPECT_LT(relative_error(weight_gradient.download(), expected_weight_gradient), tolerance) << what << " weights";
  // The bias gradient is summed in FP32 whatever the matmul's precision.
  EXPECT_LT(relative_error(bias_gradient.download(), expected_bias_gradient), kFloat32Tolerance) << what << " bias";
}

/// dense_forward (with and without ReLU), dense_input_gradient (with and without the folded ReLU
/// mask) and dense_backward (with and without an input gradient) against the reference's separate
/// ops. Shapes are (rows, in, out). On an H200 the small shapes run on 32 x 32 tiles (the weight
/// gradient with its bias gradient in the same kernel), the weight gradients of (513, 129, 257),
/// (256, 256, 256) and (1537, 260, 1540) are split over k on 64 x 64 tiles, (33, 999, 1001)'s is
/// one unsplit 64 x 64 kernel; (1537, 260, 1540), (1537, 1540, 260) and (129, 1541, 1543) give the
/// 128 x 128 kernel the forward product, the input-gradient product and the weight gradient
/// (followed by a separate bias gradient) in turn, as (301, 999, 1001) its weight gradient over
/// half a wave of tiles. The 128 x 128 paths again at a tenth of the work, over short k ((1537,
/// 17, 1540) and the two after it), for runs that leave the large shapes out.
/// (1024, 16, 1024) splits dense_backward's two products over k at once, on its two streams.
inline void expect_dense_ops_match_reference(Backend& backend, double tolerance, std::int64_t max_work = kAnyShape) {
  CpuBackend cpu;
  std::uint64_t seed = 2100;
  const MatmulCase shapes[] = {{1, 1, 1},         {17, 33, 65},      {127, 255, 1},    {33, 1, 17},
                               {513, 129, 257},   {256, 256, 256},   {301, 999, 1001}, {1537, 260, 1540},
                               {1537, 1540, 260}, {129, 1541, 1543}, {33, 999, 1001},  {1537, 17, 1540},
                               {1537, 1540, 17},  {17, 1540, 1543},  {1024, 16, 1024}};
  for (const auto& [rows, in, out] : shapes) {
    if (rows * in * out > max_work) continue;
    const Matrix x = random_matrix(rows, in, ++seed), weight = random_matrix(out, in, ++seed);
    const Matrix bias = random_matrix(1, out, ++seed);
    const Matrix dy = random_matrix(rows, out, ++seed), below = random_matrix(rows, in, ++seed);
    OnBackend bx(backend, x), bweight(backend, weight), bbias(backend, bias), bdy(backend, dy), bbelow(backend, below);
    const std::string shape =
        "rows " + std::to_string(rows) + " in " + std::to_string(in) + " out " + std::to_string(out);
    Matrix expected_dw = poisoned(out, in), expected_db = poisoned(1, out);
    cpu.matmul(Transpose::yes, Transpose::no, 1.0f, dy.view(), x.view(), 0.0f, expected_dw.view());
    cpu.bias_gradient(dy.view(), expected_db.view());
    {  // the first layer's backward: parameter gradients only
      OnBackend dw(backend, poisoned(out, in)), db(backend, poisoned(1, out));
      backend.dense_backward(bdy.view(), bx.view(), bweight.view(), std::nullopt, dw.view(), db.view(), std::nullopt);
      expect_parameter_gradients(dw, db, expected_dw, expected_db, tolerance, "dense_backward " + shape);
    }
    {  // the forward with every activation part, keeping the pre-activation where backward needs it
      Matrix product = poisoned(rows, out);
      cpu.matmul(Transpose::no, Transpose::yes, 1.0f, x.view(), weight.view(), 0.0f, product.view());
      cpu.bias_add(product.view(), bias.view());
      activations::for_each_part([&](auto part) {
        const Activation kind = decltype(part)::kind;
        Matrix expected = poisoned(rows, out);
        cpu.activation_forward(kind, product.view(), expected.view());
        OnBackend y(backend, poisoned(rows, out)), z(backend, poisoned(rows, out));
        const bool keep = decltype(part)::needs_input;
        backend.dense_forward(bx.view(), bweight.view(), bbias.view(), kind, y.view(),
                              keep ? std::optional<View>(z.view()) : std::nullopt);
        EXPECT_LT(relative_error(y.download(), expected), std::max(tolerance, kActivationTolerance))
            << "dense_forward " << shape << " " << to_string(kind);
        if (keep) {
          EXPECT_LT(relative_error(z.download(), product), tolerance)
              << "dense_forward pre-activation " << shape << " " << to_string(kind);
        }
      });
    }
    for (const bool relu : {false, true}) {
      Matrix expected_dx = poisoned(rows, in);
      cpu.matmul(Transpose::no, Transpose::no, 1.0f, dy.view(), weight.view(), 0.0f, expected_dx.view());
      if (relu)
        cpu.activation_backward(Activation::relu, expected_dx.view(), below.view(), below.view(), expected_dx.view());
      OnBackend dx(backend, poisoned(rows, in));
      backend.dense_input_gradient(bdy.view(), bweight.view(),
                                   relu ? std::optional<ConstView>(bbelow.view()) : std::nullopt, dx.view());
      const Matrix got = dx.download();
      EXPECT_LT(relative_error(got, expected_dx), tolerance)
          << "dense_input_gradient rows " << rows << " in " << in << " out " << out << " relu " << relu;
      if (relu) {  // masked entries are exactly zero, not merely small
        for (std::int64_t i = 0; i < got.size(); ++i) {
          if (below.data()[i] <= 0.0f) {
            ASSERT_EQ(got.data()[i], 0.0f) << "entry " << i;
          }
        }
      }

      // The whole backward: the same three results, whatever runs beside what.
      OnBackend dw(backend, poisoned(out, in)), db(backend, poisoned(1, out)), dx_too(backend, poisoned(rows, in));
      backend.dense_backward(bdy.view(), bx.view(), bweight.view(),
                             relu ? std::optional<ConstView>(bbelow.view()) : std::nullopt, dw.view(), db.view(),
                             dx_too.view());
      const std::string what = "dense_backward with dx " + shape + " relu " + std::to_string(relu);
      expect_parameter_gradients(dw, db, expected_dw, expected_db, tolerance, what);
      EXPECT_LT(relative_error(dx_too.download(), expected_dx), tolerance) << what;
    }
  }
}

struct TrainingRun {
  std::vector<float> parameters;
  History history;
};

/// 50 SGD steps (Nesterov, weight decay) of a small MLP on random data, the same batches on every backend.
inline const Optimizer kNesterov = SGD{.lr = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 1e-4f};

inline TrainingRun train_fifty_steps(Device device, BackendOptions backend = {}, Optimizer optimizer = kNesterov,
                                     Activation hidden = Activation::relu) {
  Dataset data;
  data.x = testing::random_matrix(800, 13, 2024);
  data.y = testing::random_matrix(800, 3, 2025);
  Sequential model({Dense(33, hidden), Dense(17, hidden), Dense(3)}, 9);
  model.compile({.optimizer = optimizer, .loss = MeanSquaredError{}, .device = device, .backend = backend});
  // 800 rows, batch 16: exactly 50 steps in one epoch.
  TrainingRun run;
  run.history = model.fit(data.x, data.y, {.epochs = 1, .batch_size = 16});
  run.parameters = model.parameters();
  return run;
}

}  // namespace ember::testing
