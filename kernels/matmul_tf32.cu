// TF32 tensor-core matmul (opt-in: `--precision tf32`), for compute capability 8.0 and newer.
//
// 256 threads (8 warps) compute a 128 x 128 tile of c, stepping over k in slices of 16 that are
// double-buffered in shared memory as in the FP32 128 x 128 kernel (the same loader: one float4
// per thread per 8 k, along whichever dimension of the source is contiguous). The warps form a
// 2 x 4 grid; each owns 64 x 32 of c as 4 x 4 accumulators of mma.sync m16n8k8 (TF32 inputs,
// FP32 accumulation).
//
// Shared memory holds the operands already rounded to TF32 and in fragment order: for each k8
// step and each 16-row block of op(a), lane l's four A values (rows g, g + 8 and columns t, t + 4
// of the 16 x 8 block, g = l / 4, t = l % 4) are adjacent, and likewise lane l's two B values
// (rows t, t + 4, column g of an 8 x 8 block). A warp then reads a whole A fragment with one
// 16-byte load per lane and a B fragment with one 8-byte load, both conflict-free, and the
// rounding happens once per value instead of once per reading warp. The accumulators map to
// (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1) of each 16 x 8 block, where the epilogue
// (bias, ReLU, mask, alpha and beta) is applied on the way out, as in the FP32 kernels.
#include <cstdint>

#include "matmul_tiles.cuh"

namespace ember::kernels {
namespace {

// [[maybe_unused]] here and on the helpers: builds for GPUs below sm_80 compile the kernel's body out.
constexpr int kSliceK = 16;  // two loader slices of kBigK = 8, two k8 mma steps
[[maybe_unused]] constexpr int kWarpM = 64, kWarpN = 32;
[[maybe_unused]] constexpr int kSliceFloats = kBigM * kSliceK;  // one operand's slice: 2048 floats
static_assert(kSliceK == 2 * kBigK && kBigM == kBigN, "a slice is two loader slices of a square tile");

/// Where op(a)[i][p] of the slice (i < 128, p < 16) lives in the fragment-ordered A slice.
[[maybe_unused]] __device__ __forceinline__ int a_slot(int i, int p) {
  const int step = p / 8, c = p % 8, block = i / 16, r = i % 16;
  const int lane = (r % 8) * 4 + c % 4, reg = r / 8 + 2 * (c / 4);
  return ((step * (kBigM / 16) + block) * 32 + lane) * 4 + reg;
}

/// Where op(b)[p][j] of the slice (p < 16, j < 128) lives in the fragment-ordered B slice.
[[maybe_unused]] __device__ __forceinline__ int b_slot(int p, int j) {
  const int step = p / 8, c = p % 8, block = j / 8;
  const int lane = (j % 8) * 4 + c % 4, reg = c / 4;
  return ((step * (kBigN / 8) + block) * 32 + lane) * 2 + reg;
}

template <bool TransposeA, bool TransposeB, bool Vector, EpilogueKind Kind>
// One block per SM is the floor (registers up to 255): the accumulators alone take 64 registers.
__global__ void __launch_bounds__(kBigThreads, 1)
    matmul_tf32_kernel(int m, int n, int k, const float* __restrict__ a, int lda, const float* __restrict__ b, int ldb,
                       float* __restrict__ c, int ldc, MatmulEpilogue epilogue) {
#if defined(EMBER_HAS_MMA_TF32)
  __shared__ __align__(16) float slice_a[2][kSliceFloats];
  __shared__ __align__(16) float slice_b[2][kSliceFloats];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row0 = blockIdx.y * kBigM, col0 = blockIdx.x * kBigN;
  const int warp_row = (warp / 4) * kWarpM, warp_col = (warp % 4) * kWarpN;
  // op(a) rows are contiguous in k unless a is transposed; op(b) columns are contiguous in k when b is.
  constexpr bool kAlongKA = !TransposeA, kAlongKB = TransposeB;
  const SliceLoader<kAlongKA, Vector> load_a(tid);
  const SliceLoader<kAlongKB, Vector> load_b(tid);

  float acc[4][4][4] = {};
  float4 next_a[2], next_b[2];
  const auto load_slice = [&](int k0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      next_a[h] = load_a.load(a, lda, row0, m, k0 + h * kBigK, k);
      next_b[h] = load_b.load(b, ldb, col0, n, k0 + h * kBigK, k);
    }
  };
  // The loaders' 4 values run along k (from outer, k_offset) or along the long dimension.
  const auto store_slice = [&](int buffer) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float va[4] = {next_a[h].x, next_a[h].y, next_a[h].z, next_a[h].w};
      const float vb[4] = {next_b[h].x, next_b[h].y, next_b[h].z, next_b[h].w};
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const int ai = kAlongKA ? load_a.outer : load_a.outer + v;
        const int ap = h * kBigK + (kAlongKA ? load_a.k_offset + v : load_a.k_offset);
        slice_a[buffer][a_slot(ai, ap)] = to_tf32(va[v]);
        const int bj = kAlongKB ? load_b.outer : load_b.outer + v;
        const int bp = h * kBigK + (kAlongKB ? load_b.k_offset + v : load_b.k_offset);
        slice_b[buffer][b_slot(bp, bj)] = to_tf32(vb[v]);
      }
    }
  };
  load_slice(0);
  store_slice(0);
  __syncthreads();

  const int slices = (k + kSliceK - 1) / kSliceK;
  for (int s = 0; s < slices; ++s) {
    const int current = s & 1;
    const bool more = s + 1 < slices;
    if (more) load_slice((s + 1) * kSliceK);  // in flight while the tensor cores run
#pragma unroll
    for (int step = 0; step < kSliceK / 8; ++step) {
      float4 fa[4];
      float2 fb[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int block = (warp_row + 16 * i) / 16;
        fa[i] = reinterpret_cast<const float4*>(slice_a[current])[(step * (kBigM / 16) + block) * 32 + lane];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int block = (warp_col + 8 * j) / 8;
        fb[j] = reinterpret_cast<const float2*>(slice_b[current])[(step * (kBigN / 8) + block) * 32 + lane];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) device::mma_m16n8k8_tf32(acc[i][j], fa[i], fb[j]);
    }
    if (more) store_slice(current ^ 1);  // the other buffer was last read before the previous barrier
    __syncthreads();
  }

  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int row = row0 + warp_row + 16 * i + g + (q / 2) * 8;
        const int col = col0 + warp_col + 8 * j + 2 * t + q % 2;
        if (row < m && col < n) {
          float* out = c + static_cast<long long>(row) * ldc + col;
          *out = epilogue_value<Kind>(epilogue, acc[i][j][q], out, row, col, ldc);
        }
      }
#else
  __trap();  // launch_matmul refuses TF32 below compute capability 8.0
#endif
}

}  // namespace

template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_matmul_tf32(const MatmulArgs& x, cudaStream_t stream) {
  const dim3 grid((x.n + kBigN - 1) / kBigN, (x.m + kBigM - 1) / kBigM);
  if (operands_vectorizable(x))
    launch(matmul_tf32_kernel<TransposeA, TransposeB, true, Kind>, grid, kBigThreads, 0, stream, x.m, x.n, x.k, x.a,
           x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  else
    launch(matmul_tf32_kernel<TransposeA, TransposeB, false, Kind>, grid, kBigThreads, 0, stream, x.m, x.n, x.k, x.a,
           x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  return "matmul_tf32_kernel";
}

template const char* launch_matmul_tf32<false, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<true, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<true, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, true, EpilogueKind::bias>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, true, EpilogueKind::bias_relu>(const MatmulArgs&, cudaStream_t);
template const char* launch_matmul_tf32<false, false, EpilogueKind::relu_mask>(const MatmulArgs&, cudaStream_t);

}  // namespace ember::kernels
