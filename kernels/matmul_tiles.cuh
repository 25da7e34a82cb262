#pragma once
// Pieces shared by the matmul kernels (matmul.cu: FP32; matmul_tf32.cu and matmul_wgmma.cu: TF32
// tensor cores): the epilogue, the TF32 rounding, the k-slice loader of the 128 x 128 tiles, and the
// launch arguments. CUDA only.
#include <cstdint>

#include "cuda_check.hpp"
#include "device_intrinsics.cuh"
#include "kernels.hpp"
#include "launch.cuh"

namespace ember::kernels {

/// The value stored at c[row][col] for the product acc (see EpilogueKind).
template <EpilogueKind Kind>
__device__ __forceinline__ float epilogue_value(const MatmulEpilogue& e, float acc, const float* c_element, int row,
                                                int col, int ldc) {
  if constexpr (Kind == EpilogueKind::linear) {
    return e.beta == 0.0f ? e.alpha * acc : e.alpha * acc + e.beta * *c_element;  // beta == 0: c is not read
  } else if constexpr (Kind == EpilogueKind::bias) {
    return acc + e.bias[col];
  } else if constexpr (Kind == EpilogueKind::bias_relu) {
    return fmaxf(acc + e.bias[col], 0.0f);
  } else {
    return e.mask[static_cast<long long>(row) * ldc + col] > 0.0f ? acc : 0.0f;
  }
}

/// x rounded to TF32, as the TF32 kernels store their operands.
using device::to_tf32;

// 128 x 128 tiles of c, k slices loaded 8 at a time by 256 threads.
constexpr int kBigM = kBigTile, kBigN = kBigTile, kBigK = 8, kBigThreads = 256;
constexpr int kPad = 4;  // keeps the transposed (k-major) stores of 4 rows apart in different banks

/// The 4 values of op(x)[outer][k .. k + 3] (KContiguous: x holds op(x)'s rows contiguous in k)
/// or op(x)[outer .. outer + 3][k] (x[k][outer]): a run along x's contiguous dimension, zeros where
/// outer >= outer_size or k >= k_size; one 16-byte load when Vector and the run is whole.
template <bool KContiguous, bool Vector>
__device__ __forceinline__ float4 load_run(const float* __restrict__ x, int ld, int outer, int outer_size, int k,
                                           int k_size) {
  // The 4 values run along x's contiguous dimension from `run`; `line` is the other index.
  const int line = KContiguous ? outer : k, line_size = KContiguous ? outer_size : k_size;
  const int run = KContiguous ? k : outer, run_size = KContiguous ? k_size : outer_size;
  const float* p = x + static_cast<long long>(line) * ld + run;
  if (Vector && line < line_size && run + 3 < run_size) return *reinterpret_cast<const float4*>(p);
  float v[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) v[i] = (line < line_size && run + i < run_size) ? p[i] : 0.0f;
  return make_float4(v[0], v[1], v[2], v[3]);
}

/// One thread's share of a k slice of op(x), x being a (or b): 4 values along the tile's long
/// dimension ("outer": m for a, n for b) or along k, depending on which is contiguous in x.
/// KContiguous: x holds op(x)'s rows contiguous in k (a not transposed, b transposed).
template <bool KContiguous, bool Vector>
struct SliceLoader {
  // The thread's 4 elements: along k at (outer, k0 + kq .. + 3), or along outer at (k, o .. o + 3).
  int outer, k_offset;

  __device__ explicit SliceLoader(int tid)
      : outer(KContiguous ? tid / 2 : (tid % 32) * 4), k_offset(KContiguous ? (tid % 2) * 4 : tid / 32) {}

  /// Reads the 4 values for slice k0 of a tile whose long dimension starts at outer0.
  /// x is indexed x[outer][k] (KContiguous) or x[k][outer]; limits are outer_size and k_size.
  __device__ float4 load(const float* __restrict__ x, int ld, int outer0, int outer_size, int k0, int k_size) const {
    return load_run<KContiguous, Vector>(x, ld, outer0 + outer, outer_size, k0 + k_offset, k_size);
  }

  /// Stores the 4 values into the k-major tile[k][outer].
  __device__ void store(float (*tile)[kBigM + kPad], float4 q) const {
    if constexpr (KContiguous) {
      tile[k_offset + 0][outer] = q.x;
      tile[k_offset + 1][outer] = q.y;
      tile[k_offset + 2][outer] = q.z;
      tile[k_offset + 3][outer] = q.w;
    } else {
      *reinterpret_cast<float4*>(&tile[k_offset][outer]) = q;
    }
  }
};

struct MatmulArgs {
  int m, n, k;
  const float* a;
  int lda;
  const float* b;
  int ldb;
  float* c;
  int ldc;
  MatmulEpilogue epilogue;
  float* scratch;  // kReductionScratchFloats floats for split-k partials, or null (no split)
};

/// Whether both operands allow the loaders' 16-byte loads.
inline bool operands_vectorizable(const MatmulArgs& x) {
  return x.lda % 4 == 0 && x.ldb % 4 == 0 && aligned16(x.a) && aligned16(x.b);
}

/// Launches the TF32 tensor-core matmul (matmul_tf32.cu; compute capability 8.0 and newer) and
/// returns the kernel's name. Instantiated for the (transposes, epilogue) pairs launch_matmul uses.
template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_matmul_tf32(const MatmulArgs& args, cudaStream_t stream);

/// Launches the wgmma TF32 matmul (matmul_wgmma.cu; only where wgmma_matmul_ready()) on 128 x 128
/// tiles, or 128 x 256 when wide, and returns the kernel's name. Instantiated for the same pairs as
/// launch_matmul_tf32.
template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_matmul_wgmma(const MatmulArgs& args, cudaStream_t stream, bool wide);

}  // namespace ember::kernels
