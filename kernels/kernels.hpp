#pragma once
// Launchers of Ember's CUDA kernels. Each enqueues on stream and checks the launch; shapes are
// (rows, cols) of row-major float32 matrices in device memory. See each .cu file for the formula.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "ember/activation.hpp"
#include "ember/optimizers.hpp"
#include "matmul_plan.hpp"  // also kReductionScratchFloats

namespace ember::kernels {

/// What a matmul does with each product acc = (op(a) @ op(b))[row][col] before storing it to c.
enum class EpilogueKind {
  linear,     // c = alpha * acc + beta * c (with beta == 0, c is not read)
  bias,       // c = acc + bias[col]                    (a @ b^T only: the Dense forward)
  bias_relu,  // c = max(acc + bias[col], 0)            (a @ b^T only)
  relu_mask,  // c = mask[row][col] > 0 ? acc : 0, mask strided like c   (a @ b only: the input
              //     gradient through the ReLU of the layer below)
};
struct MatmulEpilogue {
  EpilogueKind kind = EpilogueKind::linear;
  float alpha = 1.0f, beta = 0.0f;
  const float* bias = nullptr;
  const float* mask = nullptr;
  /// Optional, for linear products of a transposed, dense a (lda == m) only: row_sums[i] = the sum
  /// over k of op(a)[i][k], i.e. the column sums of a, unscaled by alpha and beta. A Dense layer's
  /// weight gradient dy^T @ x brings its bias gradient (the column sums of dy) along this way. The
  /// 64 x 64 and 32 x 32 kernels add the rows of the tiles they already hold in shared memory; after
  /// the larger kernels a column reduction of a follows (launch_bias_gradient, through the scratch).
  float* row_sums = nullptr;
};

/// FP32: plain float multiply-adds. TF32: tensor cores on inputs rounded to 10 mantissa bits, FP32
/// accumulation (compute capability 8.0 and newer), with the wgmma kernel where it is ready.
enum class MatmulPrecision { fp32, tf32 };
/// Whether the current device runs the TF32 matmul.
bool tf32_matmul_available();
/// Whether the TF32 matmul can use Hopper's wgmma kernel: a compute capability 9.0 device and a
/// build with sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a-real, the default). Read once and cached,
/// by tf32_matmul_available() already.
bool wgmma_matmul_ready();
/// The current device's multiprocessor count (the matmul's tiling choice depends on it). Both
/// are read once and cached; call them before a stream capture so that no device query happens
/// inside one.
int multiprocessor_count();

/// c (m, n) = epilogue(op(a) (m, k) @ op(b) (k, n)); lda/ldb/ldc are row strides. With a scratch,
/// a plain (linear) FP32 product of few output tiles and a long k is split over k (deterministic).
/// Row sums (MatmulEpilogue::row_sums) need the scratch.
/// Returns the name of the (last) kernel launched, for benchmarks.
const char* launch_matmul(bool transpose_a, bool transpose_b, int m, int n, int k, const float* a, int lda,
                          const float* b, int ldb, float* c, int ldc, const MatmulEpilogue& epilogue,
                          cudaStream_t stream, MatmulPrecision precision = MatmulPrecision::fp32,
                          float* scratch = nullptr);

/// The problem launch_matmul plans for these arguments (on the current device): plan_matmul of it
/// is the plan launch_matmul runs, which `ember bench --tables tuning` compares with
/// candidate_plans of it.
MatmulProblem matmul_problem(bool transpose_a, bool transpose_b, int m, int n, int k, const MatmulEpilogue& epilogue,
                             MatmulPrecision precision, bool scratch);
/// launch_matmul on a given plan (one of candidate_plans(matmul_problem(...)), or a TF32 kernel:
/// mma.sync, wgmma, wgmma on 128 x 256 tiles): benchmarks time the alternatives. A k split the
/// product cannot take is refused.
const char* launch_matmul_planned(const MatmulPlan& plan, bool transpose_a, bool transpose_b, int m, int n, int k,
                                  const float* a, int lda, const float* b, int ldb, float* c, int ldc,
                                  const MatmulEpilogue& epilogue, cudaStream_t stream, float* scratch);

/// y (rows, cols) += bias (1, cols).
void launch_bias_add(float* y, const float* bias, std::int64_t rows, std::int64_t cols, cudaStream_t stream);
/// bias_gradient (1, cols) = column sums of dy (rows, cols), deterministic (two passes through scratch).
void launch_bias_gradient(const float* dy, float* bias_gradient, std::int64_t rows, std::int64_t cols, float* scratch,
                          cudaStream_t stream);

/// y = f(x) over count elements for the activation part of kind (activation_math.hpp; may alias).
void launch_activation_forward(Activation kind, const float* x, float* y, std::int64_t count, cudaStream_t stream);
/// dx = dy * f'(x) over count elements: x, the pre-activation, is read only by the parts that
/// need it (it may be null for the others), y is the forward output; dx may alias dy.
void launch_activation_backward(Activation kind, const float* dy, const float* x, const float* y, float* dx,
                                std::int64_t count, cudaStream_t stream);

/// values *= min(1, max_norm / (||values||_2 + 1e-6)) over count values (clip.cu): deterministic,
/// the factor computed and read on the device; scratch holds at least 257 floats.
void launch_clip_by_norm(float* values, std::int64_t count, float max_norm, float* scratch, cudaStream_t stream);

/// One step of the optimizer (its part in optimizer_math.hpp, optimizers.cu) over count parameters
/// at the rate lr * scalars->lr_scale and step count scalars->step (device memory); state holds its
/// state buffers, region floats apart (unused, may be null, where the settings use none).
void launch_optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                             std::int64_t region, std::int64_t count, const OptimizerScalars* scalars,
                             cudaStream_t stream);

/// destination row r = source row indices[*cursor + r]; destination is (rows, cols).
void launch_gather_rows(const float* source, std::int64_t source_rows, std::int64_t cols, const std::int32_t* indices,
                        const std::int32_t* cursor, float* destination, std::int64_t rows, cudaStream_t stream);
/// values[r][c] *= scales[r] for a (rows, cols) values: per-row weights on a loss gradient.
void launch_scale_rows(const float* scales, float* values, std::int64_t rows, std::int64_t cols, cudaStream_t stream);
/// cursor[0] += amount.
void launch_advance_cursor(std::int32_t* cursor, std::int32_t amount, cudaStream_t stream);
/// Both gathers of a training step's batch (x_batch (rows, x_cols) from x, y_batch (rows, y_cols)
/// from y, at the same cursor), then cursor[0] += rows, in one launch. done is one unsigned int of
/// device memory, zero before the launch and zero again after it (the blocks count themselves
/// there, and the last one advances the cursor).
void launch_gather_batch(const float* x, const float* y, std::int64_t source_rows, std::int64_t x_cols,
                         std::int64_t y_cols, const std::int32_t* indices, std::int32_t* cursor, float* x_batch,
                         float* y_batch, std::int64_t rows, unsigned* done, cudaStream_t stream);
/// y[i] = value over count elements.
void launch_fill(float* y, std::int64_t count, float value, cudaStream_t stream);
/// y[i] uniform in (0, 1] (never zero), a hash of (seed, i): the benchmarks' random inputs.
void launch_fill_uniform(float* y, std::int64_t count, std::uint64_t seed, cudaStream_t stream);

/// CUB's DeviceReduce::Sum (the yardstick of the MSE reduction): scratch bytes for count floats,
/// and sum[0] = x[0] + ... + x[count - 1].
std::size_t cub_sum_scratch_bytes(std::int64_t count);
void launch_cub_sum(const float* x, std::int64_t count, float* sum, void* scratch, std::size_t scratch_bytes,
                    cudaStream_t stream);

/// Empty when this build's kernels can run on the current device, else why not (e.g. built for
/// another architecture).
std::string kernel_image_problem();

}  // namespace ember::kernels
