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
// With MatmulPrecision::tf32, outputs of enough 128 x 128 tiles go to matmul_tf32.cu instead.
//
// matmul_64x64_kernel — small or few-tile outputs, where 128 x 128 tiles would leave SMs idle.
//   256 threads, a 64 x 64 tile, k slices of 16, 4 x 4 per thread (rows ty + 16 i, columns
//   tx + 16 j), scalar loads. Split-k: when even 64 x 64 tiles cannot fill the GPU and k is long
//   (the weight gradient of a narrow layer: a w x w output over k = batch), blockIdx.z takes a
//   range of k and writes its partial product to the scratch; split_k_sum_kernel then adds the
//   partials in split order and applies alpha and beta. The split count depends on the shape and
//   the SM count only, so results stay bit-reproducible on a given GPU.
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

// ---- 64 x 64 -------------------------------------------------------------------------------------
constexpr int kSmallM = 64, kSmallN = 64, kSmallK = 16, kSmallThreads = 256, kPerThread = 4;

/// Split z (blockIdx.z) covers k in [z k_split, min(k, (z + 1) k_split)) and writes to c + z m ldc.
template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
__global__ void __launch_bounds__(kSmallThreads)
    matmul_64x64_kernel(int m, int n, int k, int k_split, const float* __restrict__ a, int lda,
                        const float* __restrict__ b, int ldb, float* __restrict__ c, int ldc, MatmulEpilogue epilogue) {
  __shared__ float tile_a[kSmallK][kSmallM];  // tile_a[p][i] = op(a)[row0 + i][k0 + p]
  __shared__ float tile_b[kSmallK][kSmallN];  // tile_b[p][j] = op(b)[k0 + p][col0 + j]
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int row0 = blockIdx.y * kSmallM, col0 = blockIdx.x * kSmallN;
  const int k_begin = blockIdx.z * k_split, k_end = min(k, k_begin + k_split);
  c += static_cast<long long>(blockIdx.z) * m * ldc;
  float acc[kPerThread][kPerThread] = {};

  for (int k0 = k_begin; k0 < k_end; k0 += kSmallK) {
    // 64 x 16 = 1024 elements per tile, 4 per thread, consecutive threads on consecutive addresses.
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int e = tid + l * kSmallThreads;
      // op(a)[i][p]: a[i][p] (contiguous in p) or a[p][i] (contiguous in i).
      const int ai = TransposeA ? e % kSmallM : e / kSmallK;
      const int ap = TransposeA ? e / kSmallM : e % kSmallK;
      const int gi = row0 + ai, gp = k0 + ap;
      float va = 0.0f;
      if (gi < m && gp < k_end)
        va = TransposeA ? a[static_cast<long long>(gp) * lda + gi] : a[static_cast<long long>(gi) * lda + gp];
      tile_a[ap][ai] = va;
      // op(b)[p][j]: b[p][j] (contiguous in j) or b[j][p] (contiguous in p).
      const int bj = TransposeB ? e / kSmallK : e % kSmallN;
      const int bp = TransposeB ? e % kSmallK : e / kSmallN;
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
    __syncthreads();
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
/// each partial is (m, n) with row stride n. With beta == 0, c is not read.
__global__ void split_k_sum_kernel(const float* __restrict__ partials, int splits, int m, int n, float alpha,
                                   float beta, float* __restrict__ c, int ldc) {
  const long long count = static_cast<long long>(m) * n;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int z = 0; z < splits; ++z) sum += partials[z * count + i];
    float& out = c[(i / n) * ldc + i % n];
    out = beta == 0.0f ? alpha * sum : alpha * sum + beta * out;
  }
}

// ---- dispatch ------------------------------------------------------------------------------------
constexpr int kMinSplitK = 256;  // k per split at least: below that the partials' traffic dominates
constexpr int kMaxSplits = 64;

template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_kernel(const MatmulArgs& x, cudaStream_t stream, MatmulPrecision precision) {
  const long long big_tiles = static_cast<long long>((x.m + kBigM - 1) / kBigM) * ((x.n + kBigN - 1) / kBigN);
  // TF32 runs on 128 x 128 tiles only; an output too small to busy a quarter of the SMs with them
  // (a narrow layer's weight gradient: a few tiles over a long k) goes to the FP32 kernels, whose
  // split-k spreads it over the GPU. FP32 is the more accurate of the two, so TF32's bounds hold.
  if (precision == MatmulPrecision::tf32 && 4 * big_tiles >= multiprocessor_count())
    return launch_matmul_tf32<TransposeA, TransposeB, Kind>(x, stream);
  if (big_tiles >= multiprocessor_count()) {
    const dim3 grid((x.n + kBigN - 1) / kBigN, (x.m + kBigM - 1) / kBigM);
    const bool vector = operands_vectorizable(x) && aligned16(x.c);  // c too: the stores are 16-byte
    if (vector)
      matmul_128x128_kernel<TransposeA, TransposeB, true, Kind>
          <<<grid, kBigThreads, 0, stream>>>(x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
    else
      matmul_128x128_kernel<TransposeA, TransposeB, false, Kind>
          <<<grid, kBigThreads, 0, stream>>>(x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
    return "matmul_128x128_kernel";
  }
  const long long small_tiles = static_cast<long long>((x.n + kSmallN - 1) / kSmallN) * ((x.m + kSmallM - 1) / kSmallM);
  // Split k only for plain products (the fused epilogues need the whole sum), with a scratch big
  // enough for the partials, and only as far as two waves of blocks over the SMs.
  long long splits = 1;
  if (Kind == EpilogueKind::linear && x.scratch != nullptr) {
    splits =
        std::min({2LL * multiprocessor_count() / small_tiles, static_cast<long long>(x.k / kMinSplitK),
                  kReductionScratchFloats / (static_cast<long long>(x.m) * x.n), static_cast<long long>(kMaxSplits)});
    splits = std::max(splits, 1LL);
  }
  // k per split, a whole number of k slices; then the splits that k actually needs.
  const long long per_split = (x.k + splits - 1) / splits;
  const int k_split = splits == 1 ? std::max(x.k, 1) : static_cast<int>((per_split + kSmallK - 1) / kSmallK * kSmallK);
  splits = splits == 1 ? 1 : (x.k + k_split - 1) / k_split;
  const dim3 grid((x.n + kSmallN - 1) / kSmallN, (x.m + kSmallM - 1) / kSmallM, static_cast<unsigned>(splits));
  if (splits == 1) {
    matmul_64x64_kernel<TransposeA, TransposeB, Kind>
        <<<grid, kSmallThreads, 0, stream>>>(x.m, x.n, x.k, k_split, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
    return "matmul_64x64_kernel";
  }
  matmul_64x64_kernel<TransposeA, TransposeB, EpilogueKind::linear><<<grid, kSmallThreads, 0, stream>>>(
      x.m, x.n, x.k, k_split, x.a, x.lda, x.b, x.ldb, x.scratch, x.n, MatmulEpilogue{});
  check_launch("matmul_64x64_kernel (split k)", [&] { return matmul_text(x.m, x.n, x.k, TransposeA, TransposeB); });
  split_k_sum_kernel<<<grid_for(static_cast<long long>(x.m) * x.n, 256), 256, 0, stream>>>(
      x.scratch, static_cast<int>(splits), x.m, x.n, x.epilogue.alpha, x.epilogue.beta, x.c, x.ldc);
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
    return major >= 8;
  }();
  return available;
}

const char* launch_matmul(bool transpose_a, bool transpose_b, int m, int n, int k, const float* a, int lda,
                          const float* b, int ldb, float* c, int ldc, const MatmulEpilogue& epilogue,
                          cudaStream_t stream, MatmulPrecision precision, float* scratch) {
  if (m == 0 || n == 0) return "none (empty output)";
  if (precision == MatmulPrecision::tf32 && !tf32_matmul_available())
    throw_launch_error(cudaErrorNotSupported, "matmul (TF32 needs compute capability 8.0 or newer)",
                       matmul_text(m, n, k, transpose_a, transpose_b));
  const auto args = [&] { return matmul_text(m, n, k, transpose_a, transpose_b); };
  if ((m + kSmallM - 1) / kSmallM > 65535) throw_launch_error(cudaErrorInvalidConfiguration, "matmul", args());
  const MatmulArgs x{m, n, k, a, lda, b, ldb, c, ldc, epilogue, scratch};
  const char* kernel = nullptr;
  // The fused epilogues exist where the training step uses them: bias (+ ReLU) on the forward
  // product x @ w^T, the ReLU mask on the input-gradient product dy @ w.
  switch (epilogue.kind) {
    case EpilogueKind::linear:
      if (!transpose_a && !transpose_b)
        kernel = launch_kernel<false, false, EpilogueKind::linear>(x, stream, precision);
      else if (!transpose_a && transpose_b)
        kernel = launch_kernel<false, true, EpilogueKind::linear>(x, stream, precision);
      else if (transpose_a && !transpose_b)
        kernel = launch_kernel<true, false, EpilogueKind::linear>(x, stream, precision);
      else
        kernel = launch_kernel<true, true, EpilogueKind::linear>(x, stream, precision);
      break;
    case EpilogueKind::bias:
    case EpilogueKind::bias_relu:
      if (transpose_a || !transpose_b)
        throw_launch_error(cudaErrorNotSupported, "matmul (bias epilogue needs a @ b^T)", args());
      kernel = epilogue.kind == EpilogueKind::bias
                   ? launch_kernel<false, true, EpilogueKind::bias>(x, stream, precision)
                   : launch_kernel<false, true, EpilogueKind::bias_relu>(x, stream, precision);
      break;
    case EpilogueKind::relu_mask:
      if (transpose_a || transpose_b)
        throw_launch_error(cudaErrorNotSupported, "matmul (mask epilogue needs a @ b)", args());
      kernel = launch_kernel<false, false, EpilogueKind::relu_mask>(x, stream, precision);
      break;
  }
  check_launch(kernel, args);
  return kernel;
}

}  // namespace ember::kernels
