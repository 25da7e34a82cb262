// Matmul: c (m, n) = epilogue(op(a) @ op(b)), row-major, op = identity or transpose. The epilogue
// is alpha * acc + beta * c, or a Dense layer's bias (+ ReLU), or a ReLU-backward mask (see
// kernels.hpp). Two FP32 kernels, both zero-filling the edges so that any m, n, k works:
//
// matmul_128x128_kernel — large outputs. 256 threads compute a 128 x 128 tile of c stepping over k
//   in slices of 8. Each thread owns an 8 x 8 block: rows 4 ty + {0..3} and 64 + 4 ty + {0..3},
//   columns 4 tx + {0..3} and 64 + 4 tx + {0..3}, so its shared-memory reads are four 16-byte
//   loads per k (a quarter-warp reads one A address, broadcast, and 8 consecutive B addresses:
//   conflict-free). Slices are double-buffered: the next slice's global loads are issued before
//   the current slice's FMAs and stored to the other buffer after them, one barrier per slice.
//   Each thread loads one float4 of each operand per slice, along whichever dimension of the
//   source is contiguous; a float4 straddling an edge, or an operand whose row stride is not a
//   multiple of 4 floats, is read element by element.
//
// With MatmulPrecision::tf32, outputs of enough 128 x 128 tiles go to matmul_wgmma.cu (Hopper) or
// matmul_tf32.cu (mma.sync) instead. Which kernel runs, and the k split, is plan_matmul's choice
// (matmul_plan.hpp, host code tested on any machine).
//
// matmul_small_kernel (64 x 64 and 32 x 32 tiles) — small or few-tile outputs, where 128 x 128
//   tiles would leave SMs idle. 256 threads, k slices of 16, (tile / 16)^2 outputs per thread
//   (rows ty + 16 i, columns tx + 16 j), scalar loads. Split-k (64 x 64 only): when even 64 x 64
//   tiles cannot fill the GPU and k is long (the weight gradient of a narrow layer: a w x w output
//   over k = batch), blockIdx.z takes a range of k and writes its partial product to the scratch;
//   split_k_sum_kernel then adds the partials in split order and applies alpha and beta. The split
//   count depends on the shape and the SM count only, so results stay bit-reproducible on a given
//   GPU. Outputs of less than a wave of 64 x 64 tiles that are not split (a fused epilogue, or k
//   too short) take 32 x 32 tiles: four times the blocks, so that a narrow layer's forward and
//   input-gradient products (1024 x 256 at width 256: 64 tiles of 64) occupy every SM.
//   Row sums (a weight gradient's bias gradient): the blocks of the first tile column also add up
//   the rows of each op(a) slice they hold in shared memory, thread t over row t % tile and a
//   share of the slice, and combine the shares in order at the end (per split, when split; the
//   sum kernel then adds the splits' row sums too). Larger products leave the row sums to a
//   column reduction of a after the kernel.
#include <algorithm>
#include <cstdint>

#include "matmul_tiles.cuh"

namespace ember::kernels {
namespace {

// ---- 128 x 128 -----------------------------------------------------------------------------------
template <bool TransposeA, bool TransposeB, bool Vector, EpilogueKind Kind>
__global__ void __launch_bounds__(kBigThreads)
    matmul_128x128_kernel(int m, int n, int k, const float* __restrict__ a, int lda, const float* __restrict__ b,
                          int ldb, float* __restrict__ c, int ldc, MatmulEpilogue epilogue) {
  static_assert(kBigM == kBigN, "one tile shape serves both operands");
  __shared__ __align__(16) float tile_a[2][kBigK][kBigM + kPad];  // tile_a[s][p][i] = op(a)[row0 + i][k0 + p]
  __shared__ __align__(16) float tile_b[2][kBigK][kBigN + kPad];  // tile_b[s][p][j] = op(b)[k0 + p][col0 + j]
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int row0 = blockIdx.y * kBigM, col0 = blockIdx.x * kBigN;
  // op(a) rows are contiguous in k unless a is transposed; op(b) columns are contiguous in k when b is.
  const SliceLoader<!TransposeA, Vector> load_a(tid);
  const SliceLoader<TransposeB, Vector> load_b(tid);

  float acc[8][8] = {};
  float4 next_a = load_a.load(a, lda, row0, m, 0, k);
  float4 next_b = load_b.load(b, ldb, col0, n, 0, k);
  load_a.store(tile_a[0], next_a);
  load_b.store(tile_b[0], next_b);
  __syncthreads();

  const int slices = (k + kBigK - 1) / kBigK;
  for (int s = 0; s < slices; ++s) {
    const int current = s & 1;
    const bool more = s + 1 < slices;
    if (more) {  // in flight while the FMAs below run
      next_a = load_a.load(a, lda, row0, m, (s + 1) * kBigK, k);
      next_b = load_b.load(b, ldb, col0, n, (s + 1) * kBigK, k);
    }
#pragma unroll
    for (int p = 0; p < kBigK; ++p) {
      float ra[8], rb[8];
      *reinterpret_cast<float4*>(&ra[0]) = *reinterpret_cast<const float4*>(&tile_a[current][p][4 * ty]);
      *reinterpret_cast<float4*>(&ra[4]) = *reinterpret_cast<const float4*>(&tile_a[current][p][64 + 4 * ty]);
      *reinterpret_cast<float4*>(&rb[0]) = *reinterpret_cast<const float4*>(&tile_b[current][p][4 * tx]);
      *reinterpret_cast<float4*>(&rb[4]) = *reinterpret_cast<const float4*>(&tile_b[current][p][64 + 4 * tx]);
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
    if (more) {  // the other buffer was last read before the previous barrier
      load_a.store(tile_a[current ^ 1], next_a);
      load_b.store(tile_b[current ^ 1], next_b);
    }
    __syncthreads();
  }

  const bool vector_store = Vector && ldc % 4 == 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int row = row0 + (i < 4 ? 4 * ty + i : 64 + 4 * ty + (i - 4));
    if (row >= m) continue;
    float* c_row = c + static_cast<long long>(row) * ldc;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int col = col0 + 64 * half + 4 * tx;
      float out[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out[j] = col + j < n ? epilogue_value<Kind>(epilogue, acc[i][4 * half + j], c_row + col + j, row, col + j, ldc)
                             : 0.0f;
      if (vector_store && col + 3 < n) {
        *reinterpret_cast<float4*>(c_row + col) = make_float4(out[0], out[1], out[2], out[3]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (col + j < n) c_row[col + j] = out[j];
      }
    }
  }
}

// ---- 64 x 64 and 32 x 32 -------------------------------------------------------------------------
constexpr int kSmallK = kSmallSliceK, kSmallThreads = 256;

/// Tile x Tile of c per block (64 or 32), (Tile / 16)^2 outputs per thread. Split z (blockIdx.z)
/// covers k in [z k_split, min(k, (z + 1) k_split)) and writes to c + z m ldc (and, with RowSums,
/// its row sums to epilogue.row_sums + z m).
template <int Tile, bool TransposeA, bool TransposeB, EpilogueKind Kind, bool RowSums = false>
__global__ void __launch_bounds__(kSmallThreads)
    matmul_small_kernel(int m, int n, int k, int k_split, const float* __restrict__ a, int lda,
                        const float* __restrict__ b, int ldb, float* __restrict__ c, int ldc, MatmulEpilogue epilogue) {
  constexpr int kPerThread = Tile / 16, kLoads = Tile * kSmallK / kSmallThreads;
  constexpr int kRowLanes = kSmallThreads / Tile, kSumP = kSmallK / kRowLanes;  // threads per row sum, k each
  static_assert(!RowSums || Kind == EpilogueKind::linear, "row sums come with plain products");
  static_assert(Tile % 16 == 0 && kSmallThreads % Tile == 0 && kSmallK % kRowLanes == 0, "tile shape");
  __shared__ float tile_a[kSmallK][Tile];  // tile_a[p][i] = op(a)[row0 + i][k0 + p]
  __shared__ float tile_b[kSmallK][Tile];  // tile_b[p][j] = op(b)[k0 + p][col0 + j]
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int row0 = blockIdx.y * Tile, col0 = blockIdx.x * Tile;
  const int k_begin = blockIdx.z * k_split, k_end = min(k, k_begin + k_split);
  c += static_cast<long long>(blockIdx.z) * m * ldc;
  float acc[kPerThread][kPerThread] = {};
  // Row sums: this thread adds op(a)[row0 + sum_row][k0 + sum_p .. + kSumP - 1] of each slice.
  const bool sum_rows = RowSums && blockIdx.x == 0;  // uniform over the block
  const int sum_row = tid % Tile, sum_p = (tid / Tile) * kSumP;
  float row_sum = 0.0f;

  for (int k0 = k_begin; k0 < k_end; k0 += kSmallK) {
    // Tile x 16 elements per operand tile, consecutive threads on consecutive addresses.
#pragma unroll
    for (int l = 0; l < kLoads; ++l) {
      const int e = tid + l * kSmallThreads;
      // op(a)[i][p]: a[i][p] (contiguous in p) or a[p][i] (contiguous in i).
      const int ai = TransposeA ? e % Tile : e / kSmallK;
      const int ap = TransposeA ? e / Tile : e % kSmallK;
      const int gi = row0 + ai, gp = k0 + ap;
      float va = 0.0f;
      if (gi < m && gp < k_end)
        va = TransposeA ? a[static_cast<long long>(gp) * lda + gi] : a[static_cast<long long>(gi) * lda + gp];
      tile_a[ap][ai] = va;
      // op(b)[p][j]: b[p][j] (contiguous in j) or b[j][p] (contiguous in p).
      const int bj = TransposeB ? e / kSmallK : e % Tile;
      const int bp = TransposeB ? e % kSmallK : e / Tile;
      const int gj = col0 + bj, gq = k0 + bp;
      float vb = 0.0f;
      if (gj < n && gq < k_end)
        vb = TransposeB ? b[static_cast<long long>(gj) * ldb + gq] : b[static_cast<long long>(gq) * ldb + gj];
      tile_b[bp][bj] = vb;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kSmallK; ++p) {
      float ra[kPerThread], rb[kPerThread];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) ra[i] = tile_a[p][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) rb[j] = tile_b[p][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
    if (sum_rows) {
#pragma unroll
      for (int q = 0; q < kSumP; ++q) row_sum += tile_a[sum_p + q][sum_row];  // consecutive rows: no conflicts
    }
    __syncthreads();
  }
  if (sum_rows) {  // the loop's last barrier has passed: tile_a is free to hold the partial sums
    tile_a[tid / Tile][sum_row] = row_sum;
    __syncthreads();
    if (tid < Tile && row0 + tid < m) {
      float total = 0.0f;
#pragma unroll
      for (int q = 0; q < kRowLanes; ++q) total += tile_a[q][tid];
      epilogue.row_sums[static_cast<long long>(blockIdx.z) * m + row0 + tid] = total;
    }
  }
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int row = row0 + ty + 16 * i;
    if (row >= m) continue;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int col = col0 + tx + 16 * j;
      if (col >= n) continue;
      float* out = c + static_cast<long long>(row) * ldc + col;
      *out = epilogue_value<Kind>(epilogue, acc[i][j], out, row, col, ldc);
    }
  }
}

/// c = alpha * (partials[0] + partials[1] + ... + partials[splits - 1]) + beta * c, in split order;
/// each partial is (m, n) with row stride n. With beta == 0, c is not read. With row_sums,
/// row_sums[i] = row_partials[i] + row_partials[m + i] + ... (splits of them, in order).
__global__ void split_k_sum_kernel(const float* __restrict__ partials, int splits, int m, int n, float alpha,
                                   float beta, float* __restrict__ c, int ldc, const float* __restrict__ row_partials,
                                   float* __restrict__ row_sums) {
  const long long count = static_cast<long long>(m) * n, total = count + (row_sums != nullptr ? m : 0);
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    if (i >= count) {
      const long long row = i - count;
      for (int z = 0; z < splits; ++z) sum += row_partials[static_cast<long long>(z) * m + row];
      row_sums[row] = sum;
      continue;
    }
    for (int z = 0; z < splits; ++z) sum += partials[z * count + i];
    float& out = c[(i / n) * ldc + i % n];
    out = beta == 0.0f ? alpha * sum : alpha * sum + beta * out;
  }
}

// ---- dispatch ------------------------------------------------------------------------------------
/// The small-tile kernel on Tile x Tile tiles, in `splits` ranges of k_split along k (with the row
/// sums in it where x.epilogue asks for them: RowSumsPossible).
template <int Tile, bool TransposeA, bool TransposeB, EpilogueKind Kind, bool RowSumsPossible>
const char* launch_small(const MatmulArgs& x, int k_split, unsigned splits, cudaStream_t stream) {
  const dim3 grid((x.n + Tile - 1) / Tile, (x.m + Tile - 1) / Tile, splits);
  if (RowSumsPossible && x.epilogue.row_sums != nullptr)
    launch(matmul_small_kernel<Tile, TransposeA, TransposeB, Kind, RowSumsPossible>, grid, kSmallThreads, 0, stream,
           x.m, x.n, x.k, k_split, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  else
    launch(matmul_small_kernel<Tile, TransposeA, TransposeB, Kind>, grid, kSmallThreads, 0, stream, x.m, x.n, x.k,
           k_split, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  return Tile == 64 ? "matmul_64x64_kernel" : "matmul_32x32_kernel";
}

/// Runs x as `plan` says (one of candidate_plans or plan_matmul's choice for x's problem).
template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_kernel(const MatmulArgs& x, const MatmulPlan& plan, cudaStream_t stream) {
  // Row sums exist for plain a^T @ b products only (launch_matmul checks); elsewhere they compile out.
  constexpr bool kRowSumsPossible = TransposeA && !TransposeB && Kind == EpilogueKind::linear;
  float* const row_sums = kRowSumsPossible ? x.epilogue.row_sums : nullptr;
  const auto shapes = [&] { return matmul_text(x.m, x.n, x.k, TransposeA, TransposeB); };
  if (plan.kernel != MatmulKernel::fp32_64x64 && plan.kernel != MatmulKernel::fp32_32x32) {
    const char* kernel = "matmul_128x128_kernel";
    if (plan.kernel == MatmulKernel::tf32_wgmma || plan.kernel == MatmulKernel::tf32_wgmma_wide) {
      const bool wide = plan.kernel == MatmulKernel::tf32_wgmma_wide;
      kernel = launch_matmul_wgmma<TransposeA, TransposeB, Kind>(x, stream, wide);
    } else if (plan.kernel == MatmulKernel::tf32_mma_sync) {
      kernel = launch_matmul_tf32<TransposeA, TransposeB, Kind>(x, stream);
    } else {
      const dim3 grid((x.n + kBigN - 1) / kBigN, (x.m + kBigM - 1) / kBigM);
      const bool vector = operands_vectorizable(x) && aligned16(x.c);  // c too: the stores are 16-byte
      if (vector)
        launch(matmul_128x128_kernel<TransposeA, TransposeB, true, Kind>, grid, kBigThreads, 0, stream, x.m, x.n, x.k,
               x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
      else
        launch(matmul_128x128_kernel<TransposeA, TransposeB, false, Kind>, grid, kBigThreads, 0, stream, x.m, x.n, x.k,
               x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
    }
    if (row_sums != nullptr) {  // a (k, m) dense: its column sums, a few percent of this product's time
      check_launch(kernel, shapes);
      launch_bias_gradient(x.a, row_sums, x.k, x.m, x.scratch, stream);
    }
    return kernel;
  }
  const int k_split = static_cast<int>(plan.k_split);
  if (plan.splits == 1) {
    if (plan.kernel == MatmulKernel::fp32_32x32)
      return launch_small<32, TransposeA, TransposeB, Kind, kRowSumsPossible>(x, k_split, 1, stream);
    return launch_small<64, TransposeA, TransposeB, Kind, kRowSumsPossible>(x, k_split, 1, stream);
  }
  // Split (plain products only): the partial products, then the partial row sums, in the scratch.
  float* const row_partials = x.scratch + plan.splits * x.m * static_cast<long long>(x.n);
  MatmulArgs partial = x;
  partial.c = x.scratch;
  partial.ldc = x.n;
  partial.epilogue = MatmulEpilogue{.row_sums = row_sums != nullptr ? row_partials : nullptr};
  launch_small<64, TransposeA, TransposeB, EpilogueKind::linear, kRowSumsPossible>(
      partial, k_split, static_cast<unsigned>(plan.splits), stream);
  check_launch("matmul_64x64_kernel (split k)", shapes);
  const long long sums = static_cast<long long>(x.m) * x.n + (row_sums != nullptr ? x.m : 0);
  launch(split_k_sum_kernel, grid_for(sums, 256), 256, 0, stream, x.scratch, static_cast<int>(plan.splits), x.m, x.n,
         x.epilogue.alpha, x.epilogue.beta, x.c, x.ldc, row_partials, row_sums);
  return "split_k_sum_kernel";
}

}  // namespace

int multiprocessor_count() {
  static const int count = [] {
    int device = 0, value = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device));
    return value;
  }();
  return count;
}

bool tf32_matmul_available() {
  static const bool available = [] {
    int device = 0, major = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    wgmma_matmul_ready();  // its one-time probe and setup (9.0 devices only), done before any capture
    return major >= 8;
  }();
  return available;
}

MatmulProblem matmul_problem(bool transpose_a, bool transpose_b, int m, int n, int k, const MatmulEpilogue& epilogue,
                             MatmulPrecision precision, bool scratch) {
  return {.m = m,
          .n = n,
          .k = k,
          .multiprocessors = multiprocessor_count(),
          .tf32 = precision == MatmulPrecision::tf32,
          .wgmma = precision == MatmulPrecision::tf32 && wgmma_matmul_ready(),
          .linear = epilogue.kind == EpilogueKind::linear,
          .scratch = scratch,
          .row_sums = epilogue.row_sums != nullptr && transpose_a && !transpose_b};
}

namespace {

/// launch_matmul with a plan (chosen by plan_matmul unless given).
const char* run_matmul(const MatmulPlan* given, bool transpose_a, bool transpose_b, int m, int n, int k, const float* a,
                       int lda, const float* b, int ldb, float* c, int ldc, const MatmulEpilogue& epilogue,
                       cudaStream_t stream, MatmulPrecision precision, float* scratch) {
  const auto args = [&] { return matmul_text(m, n, k, transpose_a, transpose_b); };
  if (epilogue.row_sums != nullptr &&
      (epilogue.kind != EpilogueKind::linear || !transpose_a || transpose_b || lda != m || scratch == nullptr))
    throw_launch_error(cudaErrorNotSupported, "matmul (row sums need a plain a^T @ b, a dense a and a scratch)",
                       args());
  if (m == 0 || n == 0) {
    if (m > 0 && epilogue.row_sums != nullptr) launch_bias_gradient(a, epilogue.row_sums, k, m, scratch, stream);
    return "none (empty output)";
  }
  if (precision == MatmulPrecision::tf32 && !tf32_matmul_available())
    throw_launch_error(cudaErrorNotSupported, "matmul (TF32 needs compute capability 8.0 or newer)", args());
  const MatmulProblem problem =
      matmul_problem(transpose_a, transpose_b, m, n, k, epilogue, precision, scratch != nullptr);
  const MatmulPlan plan = given != nullptr ? *given : plan_matmul(problem);
  const int tile_rows = plan.kernel == MatmulKernel::fp32_32x32   ? kSmallestTile
                        : plan.kernel == MatmulKernel::fp32_64x64 ? kSmallTile
                                                                  : kBigTile;
  if ((m + tile_rows - 1) / tile_rows > 65535)  // the grid's y dimension
    throw_launch_error(cudaErrorInvalidConfiguration, "matmul (too many rows for one launch; use a smaller batch)",
                       args());
  if (plan.splits > 1 && (plan.splits > max_splits(problem) || (plan.splits - 1) * plan.k_split >= k))
    throw_launch_error(cudaErrorInvalidValue, "matmul (a k split this product cannot take)", args());
  const MatmulArgs x{m, n, k, a, lda, b, ldb, c, ldc, epilogue, scratch};
  const char* kernel = nullptr;
  // The fused epilogues exist where the training step uses them: bias (+ ReLU) on the forward
  // product x @ w^T, the ReLU mask on the input-gradient product dy @ w.
  switch (epilogue.kind) {
    case EpilogueKind::linear:
      if (!transpose_a && !transpose_b)
        kernel = launch_kernel<false, false, EpilogueKind::linear>(x, plan, stream);
      else if (!transpose_a && transpose_b)
        kernel = launch_kernel<false, true, EpilogueKind::linear>(x, plan, stream);
      else if (transpose_a && !transpose_b)
        kernel = launch_kernel<true, false, EpilogueKind::linear>(x, plan, stream);
      else
        kernel = launch_kernel<true, true, EpilogueKind::linear>(x, plan, stream);
      break;
    case EpilogueKind::bias:
    case EpilogueKind::bias_relu:
      if (transpose_a || !transpose_b)
        throw_launch_error(cudaErrorNotSupported, "matmul (bias epilogue needs a @ b^T)", args());
      kernel = epilogue.kind == EpilogueKind::bias
                   ? launch_kernel<false, true, EpilogueKind::bias>(x, plan, stream)
                   : launch_kernel<false, true, EpilogueKind::bias_relu>(x, plan, stream);
      break;
    case EpilogueKind::relu_mask:
      if (transpose_a || transpose_b)
        throw_launch_error(cudaErrorNotSupported, "matmul (mask epilogue needs a @ b)", args());
      kernel = launch_kernel<false, false, EpilogueKind::relu_mask>(x, plan, stream);
      break;
  }
  check_launch(kernel, args);
  return kernel;
}

}  // namespace

const char* launch_matmul(bool transpose_a, bool transpose_b, int m, int n, int k, const float* a, int lda,
                          const float* b, int ldb, float* c, int ldc, const MatmulEpilogue& epilogue,
                          cudaStream_t stream, MatmulPrecision precision, float* scratch) {
  return run_matmul(nullptr, transpose_a, transpose_b, m, n, k, a, lda, b, ldb, c, ldc, epilogue, stream, precision,
                    scratch);
}

const char* launch_matmul_planned(const MatmulPlan& plan, bool transpose_a, bool transpose_b, int m, int n, int k,
                                  const float* a, int lda, const float* b, int ldb, float* c, int ldc,
                                  const MatmulEpilogue& epilogue, cudaStream_t stream, float* scratch) {
  const bool wgmma = plan.kernel == MatmulKernel::tf32_wgmma || plan.kernel == MatmulKernel::tf32_wgmma_wide;
  const MatmulPrecision precision =
      wgmma || plan.kernel == MatmulKernel::tf32_mma_sync ? MatmulPrecision::tf32 : MatmulPrecision::fp32;
  if (wgmma && !wgmma_matmul_ready())
    throw_launch_error(cudaErrorNotSupported, "matmul (wgmma is not built for this GPU)",
                       matmul_text(m, n, k, transpose_a, transpose_b));
  return run_matmul(&plan, transpose_a, transpose_b, m, n, k, a, lda, b, ldb, c, ldc, epilogue, stream, precision,
                    scratch);
}

}  // namespace ember::kernels
