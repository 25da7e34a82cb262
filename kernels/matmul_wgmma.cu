// TF32 matmul on Hopper's warpgroup tensor-core instruction (wgmma.mma_async), for sm_90a builds
// (H100, H200); launch_matmul picks it for TF32 outputs of at least one 128 x 128 tile per SM when
// wgmma_matmul_ready() says this binary has it for the device.
//
// 256 threads, two warpgroups, compute a 128 x 128 tile of c stepping over k in slices of 32.
// Each warpgroup owns 64 rows of the tile and issues wgmma m64n128k8 (TF32 inputs, FP32
// accumulation, 64 accumulators per thread), four per slice. A 128 x 256 variant (m64n256k8, 128
// accumulators, 230-248 registers, 16-byte loads only) loads 25% less per flop; the benchmarks
// time it beside the 128 x 128 kernel, which is the one launch_matmul picks. Both operands come from shared
// memory, where wgmma requires TF32 operands to be K-major: each of the 128 rows of an operand
// slice (a row of op(a), or a column of op(b)) holds its 32 k values in 128 bytes, in the 128-byte
// swizzle wgmma's descriptors name (16-byte chunk c of row r at position c ^ (r % 8), rows in
// 8-row groups 1024 bytes apart, every tile 1024-byte aligned).
//
// Slices are double-buffered through registers as in the other matmul kernels: the next slice's
// global loads are issued before this slice's wgmmas, and stored (rounded to TF32, swizzled) into
// the other buffer while the tensor cores run; then wgmma.wait_group, fence.proxy.async (the
// stores are generic-proxy writes that wgmma's async proxy must see) and one barrier per slice.
// Operands whose rows are contiguous in k are loaded as 16-byte chunks of a row and stored as
// such; transposed operands are loaded as 16-byte runs along m (or n) and stored element by
// element, each lane of a warp starting at a different element of its run so that the 32 lanes'
// stores fall into 32 different banks. The epilogue (bias, ReLU, mask, alpha and beta) is applied
// to the accumulators on the way out, as in the other kernels.
#include <cstdint>

#include "matmul_tiles.cuh"
#include "wgmma_layout.hpp"

namespace ember::kernels {
namespace {

using namespace wgmma_layout;
constexpr int kWgTile = kRows;                       // rows of c per block (and columns, in the 128 x 128 kernel)
[[maybe_unused]] constexpr int kWgSliceK = kSliceK;  // k per slice: one 128-byte swizzled row per tile row
constexpr int kWgThreads = kThreads;                 // two warpgroups
static_assert(kWgTile == kBigM && kWgTile == kBigN, "the dispatcher counts 128 x 128 tiles");

/// Shared memory of the kernel with TileN columns: two stages of A (128 rows) then B (TileN rows),
/// plus room to align to 1024.
__host__ __device__ constexpr int stage_bytes(int tile_n) {
  return kTileBytes + tile_n * kSliceK * 4;
}
__host__ __device__ constexpr int shared_bytes(int tile_n) {
  return 2 * stage_bytes(tile_n) + 1024;
}

[[maybe_unused]] __device__ __forceinline__ float component(const float4& q, int e) {
  return e == 0 ? q.x : e == 1 ? q.y : e == 2 ? q.z : q.w;
}

/// One operand's slice of 32 Passes rows by 32 k (wgmma_layout.hpp): Passes runs of 4 values per
/// thread, loaded from global memory, then stored rounded to TF32 and swizzled. `outer` is the
/// tile's long dimension (m for a, n for b). KContiguous: the source holds each outer index's k
/// values contiguously.
template <bool KContiguous, bool Vector, int Passes = 4>
struct SwizzledSlice {
  float4 v[Passes];
  int thread;

  __device__ explicit SwizzledSlice(int t) : thread(t) {}

  /// Loads slice k0 of a tile whose long dimension starts at outer0 from x, indexed x[outer][k]
  /// (KContiguous) or x[k][outer]; limits outer_size and k_size; outside them, zeros.
  __device__ void load(const float* __restrict__ x, int ld, int outer0, int outer_size, int k0, int k_size) {
#pragma unroll
    for (int i = 0; i < Passes; ++i)
      v[i] = load_run<KContiguous, Vector>(x, ld, outer0 + pass_row(KContiguous, thread, i), outer_size,
                                           k0 + pass_k(KContiguous, thread), k_size);
  }

  /// Stores the loaded values into the tile at `tile` (1024-byte aligned shared memory).
  __device__ void store(unsigned char* tile) const {
#pragma unroll
    for (int i = 0; i < Passes; ++i) {
      const int row = pass_row(KContiguous, thread, i), kk = pass_k(KContiguous, thread);
      if constexpr (KContiguous) {  // one 16-byte chunk of the row: stays whole under the swizzle
        *reinterpret_cast<float4*>(tile + swizzled_offset(row, kk)) =
            make_float4(to_tf32(v[i].x), to_tf32(v[i].y), to_tf32(v[i].z), to_tf32(v[i].w));
      } else {  // rows row .. row + 3 at one k, one element per store, staggered across lanes
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          const int e = store_element(thread % 32, s);
          *reinterpret_cast<float*>(tile + swizzled_offset(row + e, kk)) = to_tf32(component(v[i], e));
        }
      }
    }
  }
};

/// The shared-memory matrix descriptor of a K-major, 128-byte-swizzled operand starting at
/// `address` (a shared-window address): start address, leading byte offset (unused with this
/// swizzle: 1), stride byte offset (kGroupBytes: from one 8-row group to the next), swizzle mode 1.
[[maybe_unused]] __device__ __forceinline__ std::uint64_t smem_descriptor(std::uint32_t address) {
  return static_cast<std::uint64_t>((address & 0x3FFFF) >> 4) | (std::uint64_t{1} << 16) |
         (std::uint64_t{kGroupBytes >> 4} << 32) | (std::uint64_t{1} << 62);
}

/// A 128 x TileN tile of c per block (TileN 128 or 256): each warpgroup's wgmma is m64nTileNk8.
template <int TileN, bool TransposeA, bool TransposeB, bool Vector, EpilogueKind Kind>
__global__ void __launch_bounds__(kWgThreads, 1)
    matmul_wgmma_kernel(int m, int n, int k, const float* __restrict__ a, int lda, const float* __restrict__ b, int ldb,
                        float* __restrict__ c, int ldc, MatmulEpilogue epilogue) {
#if defined(EMBER_HAS_WGMMA)
  EMBER_DYNAMIC_SHARED(dynamic_shared);
  // The swizzle is a function of address bits: tiles start on 1024-byte boundaries.
  const std::uint32_t raw = static_cast<std::uint32_t>(__cvta_generic_to_shared(dynamic_shared));
  const std::uint32_t pad = (1024u - raw % 1024u) % 1024u, shared_base = raw + pad;
  unsigned char* const stages = dynamic_shared + pad;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, group = tid / 128;
  const int row0 = blockIdx.y * kWgTile, col0 = blockIdx.x * TileN;
  constexpr int kStageBytes = stage_bytes(TileN), kAccumulators = TileN / 2;
  // op(a) rows are contiguous in k unless a is transposed; op(b) columns are contiguous in k when b is.
  SwizzledSlice<!TransposeA, Vector> slice_a(tid);
  SwizzledSlice<TransposeB, Vector, TileN / 32> slice_b(tid);

  float acc[kAccumulators];
#pragma unroll
  for (int i = 0; i < kAccumulators; ++i) acc[i] = 0.0f;
  slice_a.load(a, lda, row0, m, 0, k);
  slice_b.load(b, ldb, col0, n, 0, k);
  slice_a.store(stages);
  slice_b.store(stages + kTileBytes);
  device::fence_proxy_async_shared();
  __syncthreads();

  const int slices = (k + kWgSliceK - 1) / kWgSliceK;
  for (int s = 0; s < slices; ++s) {
    const int current = s & 1;
    const bool more = s + 1 < slices;
    if (more) {  // in flight while the tensor cores run
      slice_a.load(a, lda, row0, m, (s + 1) * kWgSliceK, k);
      slice_b.load(b, ldb, col0, n, (s + 1) * kWgSliceK, k);
    }
    // This warpgroup's 64 rows of A; all TileN columns of B; k steps of 8 are 32 bytes along each row.
    const std::uint32_t a_tile = shared_base + current * kStageBytes + group * 64 * 128;
    const std::uint32_t b_tile = shared_base + current * kStageBytes + kTileBytes;
    device::fence_accumulators(acc);
    device::wgmma_fence();
#pragma unroll
    for (int step = 0; step < kWgSliceK / 8; ++step)
      device::wgmma_m64nNk8<TileN>(acc, smem_descriptor(a_tile + 32 * step), smem_descriptor(b_tile + 32 * step));
    device::wgmma_commit_group();
    if (more) {  // the other buffer was last read by the wgmmas waited for before the previous barrier
      slice_a.store(stages + (current ^ 1) * kStageBytes);
      slice_b.store(stages + (current ^ 1) * kStageBytes + kTileBytes);
    }
    device::wgmma_wait_group<0>();
    device::fence_accumulators(acc);
    device::fence_proxy_async_shared();
    __syncthreads();
  }

  // Accumulator 4 j + q of this thread is c[64 group + 16 (warp % 4) + g + 8 (q / 2)][8 j + 2 t + q % 2].
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < TileN / 8; ++j)
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int row = row0 + 64 * group + 16 * (warp % 4) + g + 8 * (q / 2);
      const int col = col0 + 8 * j + 2 * t + q % 2;
      if (row < m && col < n) {
        float* out = c + static_cast<long long>(row) * ldc + col;
        *out = epilogue_value<Kind>(epilogue, acc[4 * j + q], out, row, col, ldc);
      }
    }
#else
  __trap();  // launch_matmul uses this kernel only where wgmma_matmul_ready() found it compiled
#endif
}

/// Writes 1 where this binary's code for the device has the sm_90a features (wgmma), else 0.
__global__ void wgmma_probe_kernel(int* has_wgmma) {
#if defined(EMBER_HAS_WGMMA)
  *has_wgmma = 1;
#else
  *has_wgmma = 0;
#endif
}

template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
void allow_wgmma_shared_memory() {
  const auto allow = [](const void* kernel, int bytes) {
    EMBER_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  };
  allow(reinterpret_cast<const void*>(matmul_wgmma_kernel<128, TransposeA, TransposeB, true, Kind>), shared_bytes(128));
  allow(reinterpret_cast<const void*>(matmul_wgmma_kernel<128, TransposeA, TransposeB, false, Kind>),
        shared_bytes(128));
  allow(reinterpret_cast<const void*>(matmul_wgmma_kernel<256, TransposeA, TransposeB, true, Kind>), shared_bytes(256));
}

}  // namespace

bool wgmma_matmul_ready() {
  static const bool ready = [] {
    int device = 0, major = 0, minor = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    if (major != 9 || minor != 0) return false;
    int* flag = nullptr;
    int has_wgmma = 0;
    EMBER_CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
    launch(wgmma_probe_kernel, 1, 1, 0, nullptr, flag);
    const cudaError_t launched = cudaGetLastError();
    const cudaError_t copied = cudaMemcpy(&has_wgmma, flag, sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(flag);
    EMBER_CUDA_CHECK(launched);
    EMBER_CUDA_CHECK(copied);
    if (has_wgmma != 1) return false;
    // Two stages of 32 KiB exceed the default 48 KiB of dynamic shared memory: opt in once, here,
    // outside any stream capture.
    allow_wgmma_shared_memory<false, false, EpilogueKind::linear>();
    allow_wgmma_shared_memory<false, true, EpilogueKind::linear>();
    allow_wgmma_shared_memory<true, false, EpilogueKind::linear>();
    allow_wgmma_shared_memory<true, true, EpilogueKind::linear>();
    allow_wgmma_shared_memory<false, true, EpilogueKind::bias>();
    allow_wgmma_shared_memory<false, true, EpilogueKind::bias_relu>();
    allow_wgmma_shared_memory<false, false, EpilogueKind::relu_mask>();
    return true;
  }();
  return ready;
}

template <bool TransposeA, bool TransposeB, EpilogueKind Kind>
const char* launch_matmul_wgmma(const MatmulArgs& x, cudaStream_t stream, bool wide) {
  const bool vector = operands_vectorizable(x);
  if (wide && vector) {  // 128 x 256 tiles: 16-byte loads only (the element-wise loaders would spill)
    const dim3 grid((x.n + 255) / 256, (x.m + kWgTile - 1) / kWgTile);
    launch(matmul_wgmma_kernel<256, TransposeA, TransposeB, true, Kind>, grid, kWgThreads, shared_bytes(256), stream,
           x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
    return "matmul_wgmma_wide_kernel";
  }
  const dim3 grid((x.n + kWgTile - 1) / kWgTile, (x.m + kWgTile - 1) / kWgTile);
  if (vector)
    launch(matmul_wgmma_kernel<128, TransposeA, TransposeB, true, Kind>, grid, kWgThreads, shared_bytes(128), stream,
           x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  else
    launch(matmul_wgmma_kernel<128, TransposeA, TransposeB, false, Kind>, grid, kWgThreads, shared_bytes(128), stream,
           x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, x.epilogue);
  return "matmul_wgmma_kernel";
}

template const char* launch_matmul_wgmma<false, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<true, false, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<true, true, EpilogueKind::linear>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, true, EpilogueKind::bias>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, true, EpilogueKind::bias_relu>(const MatmulArgs&, cudaStream_t, bool);
template const char* launch_matmul_wgmma<false, false, EpilogueKind::relu_mask>(const MatmulArgs&, cudaStream_t, bool);

}  // namespace ember::kernels
