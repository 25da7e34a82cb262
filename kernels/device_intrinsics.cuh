#pragma once
// The device instructions the kernels use beyond plain CUDA C++, as typed functions: the one place
// that names PTX, and the one place that knows the kernels also run on the CPU emulation of the
// runtime (tests/emulator, which defines EMBER_CUDA_EMULATOR and implements each of these there).
// The kernels themselves are plain CUDA.
#include <cstdint>

// Where the tensor-core instructions exist: mma.sync TF32 from compute capability 8.0, wgmma in
// sm_90a code (both on the emulator).
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(EMBER_CUDA_EMULATOR)
#define EMBER_HAS_MMA_TF32 1
#endif
#if (defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)) || defined(EMBER_CUDA_EMULATOR)
#define EMBER_HAS_WGMMA 1
#endif

namespace ember::kernels::device {

/// x rounded to TF32 (10 mantissa bits, to nearest, ties away from zero): cvt.rna.tf32.f32.
/// Compute capability 8.0 and newer.
__device__ __forceinline__ float to_tf32(float x) {
#if defined(EMBER_CUDA_EMULATOR)
  return emulator::round_to_tf32(x);
#else
  std::uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(x));
  return __uint_as_float(bits);
#endif
}

/// a * b rounded to float on its own, never fused into a following add. nvcc contracts a * b + c
/// into one fma (one rounding instead of two) where it sees fit, and may decide differently in two
/// versions of one loop (say with and without a gradient to write); where a result must be the same
/// bits either way, or a difference of equal products must be exactly zero, the product is this.
[[maybe_unused]] __device__ __forceinline__ float rounded_product(float a, float b) {
#if defined(EMBER_CUDA_EMULATOR)
  return a * b;  // host C++ in ISO mode does not contract
#else
  return __fmul_rn(a, b);
#endif
}

/// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: d += a b on the PTX ISA's fragments
/// (a: 4 TF32 values of the 16 x 8 operand, b: 2 of the 8 x 8 one, d: 4 of the 16 x 8 result).
[[maybe_unused]] __device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const float4& a, const float2& b) {
#if defined(EMBER_CUDA_EMULATOR)
  const std::uint32_t fa[4] = {__float_as_uint(a.x), __float_as_uint(a.y), __float_as_uint(a.z), __float_as_uint(a.w)};
  const std::uint32_t fb[2] = {__float_as_uint(b.x), __float_as_uint(b.y)};
  emulator::mma_m16n8k8_tf32(d, fa, fb);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(__float_as_uint(a.x)), "r"(__float_as_uint(a.y)), "r"(__float_as_uint(a.z)), "r"(__float_as_uint(a.w)),
        "r"(__float_as_uint(b.x)), "r"(__float_as_uint(b.y)));
#endif
}

// ---- Hopper's asynchronous warpgroup MMA ------------------------------------------------------

/// fence.proxy.async.shared::cta: shared-memory writes of the generic proxy (plain stores) become
/// visible to the async proxy wgmma reads through.
[[maybe_unused]] __device__ __forceinline__ void fence_proxy_async_shared() {
#if defined(EMBER_CUDA_EMULATOR)
  emulator::fence_proxy_async();
#else
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/// wgmma.fence.sync.aligned: orders the accumulator registers' accesses before the wgmmas.
[[maybe_unused]] __device__ __forceinline__ void wgmma_fence() {
#if defined(EMBER_CUDA_EMULATOR)
  emulator::wgmma_fence();
#else
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

/// wgmma.commit_group.sync.aligned: the wgmmas issued since the last commit form a group.
[[maybe_unused]] __device__ __forceinline__ void wgmma_commit_group() {
#if defined(EMBER_CUDA_EMULATOR)
  emulator::wgmma_commit_group();
#else
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

/// wgmma.wait_group.sync.aligned Pending: waits until at most Pending groups are in flight.
template <int Pending>
[[maybe_unused]] __device__ __forceinline__ void wgmma_wait_group() {
#if defined(EMBER_CUDA_EMULATOR)
  emulator::wgmma_wait_group(Pending);
#else
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
#endif
}

/// Keeps the compiler from moving accumulator accesses across the asynchronous wgmma region.
template <int Count>
[[maybe_unused]] __device__ __forceinline__ void fence_accumulators(float (&d)[Count]) {
#if !defined(EMBER_CUDA_EMULATOR)
#pragma unroll
  for (int i = 0; i < Count; ++i) asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}

// The accumulators as asm operands: "+f"(d[i]) .. "+f"(d[i + 63]).
#define EMBER_D4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define EMBER_D16(i) EMBER_D4(i), EMBER_D4(i + 4), EMBER_D4(i + 8), EMBER_D4(i + 12)
#define EMBER_D64(i) EMBER_D16(i), EMBER_D16(i + 16), EMBER_D16(i + 32), EMBER_D16(i + 48)

/// wgmma.mma_async.sync.aligned.m64nNk8.f32.tf32.tf32: d (64 x N, N / 2 accumulators per thread)
/// += a (64 x 8) b (8 x N), both from shared memory through their descriptors. It runs
/// asynchronously: its group's wgmma_wait_group completes it.
template <int N>
[[maybe_unused]] __device__ __forceinline__ void wgmma_m64nNk8(float (&d)[N / 2], std::uint64_t a, std::uint64_t b) {
  static_assert(N == 128 || N == 256, "the two tile widths");
#if defined(EMBER_CUDA_EMULATOR)
  emulator::wgmma_m64nNk8_tf32(d, N, a, b);
#elif defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const int scale_d = 1;  // d = a b + d
  if constexpr (N == 128)
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
        "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
        "%31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, "
        "%51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
        : EMBER_D64(0)
        : "l"(a), "l"(b), "r"(scale_d));
  else
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
        "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
        "%31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, "
        "%51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, "
        "%71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, "
        "%91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, "
        "%109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, "
        "%126, %127}, %128, %129, p, 1, 1;\n}\n"
        : EMBER_D64(0), EMBER_D64(64)
        : "l"(a), "l"(b), "r"(scale_d));
#else
  (void)d, (void)a, (void)b;
#endif
}
#undef EMBER_D64
#undef EMBER_D16
#undef EMBER_D4

}  // namespace ember::kernels::device

/// The block's dynamic shared memory (extern __shared__): a macro, as a declaration must be.
#if defined(EMBER_CUDA_EMULATOR)
#define EMBER_DYNAMIC_SHARED(name) unsigned char* const name = ::ember::emulator::dynamic_shared_memory()
#else
#define EMBER_DYNAMIC_SHARED(name) extern __shared__ unsigned char name[]
#endif
