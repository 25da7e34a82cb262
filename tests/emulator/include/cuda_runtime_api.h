#pragma once
// The CPU emulator's stand-in for the CUDA runtime (tests/emulator/README.md): the subset of the
// runtime API that Ember uses, and the device built-ins its kernels use, so that kernels/ and the
// CUDA backend build with the host compiler and run on the CPU. Found before any CUDA toolkit
// header by the emulated targets only.
#define EMBER_CUDA_EMULATOR 1

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>

// ---- runtime types ------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorUnknown = 999,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
inline constexpr unsigned cudaStreamNonBlocking = 1;
inline constexpr unsigned cudaEventDefault = 0, cudaEventDisableTiming = 2;

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

struct cudaUUID_t {
  char bytes[16];
};
struct cudaDeviceProp {
  char name[256];
  cudaUUID_t uuid;
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlockOptin;
  int major, minor;
  int multiProcessorCount;
};
struct cudaFuncAttributes {
  int maxThreadsPerBlock;
  int numRegs;
  int ptxVersion, binaryVersion;
};

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
inline float4 make_float4(float x, float y, float z, float w) {
  return {x, y, z, w};
}
inline float2 make_float2(float x, float y) {
  return {x, y};
}

// ---- runtime API (tests/emulator/runtime.cpp, streams.cpp) ----------------------------------------
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);
/// The emulator's reset clears the errors (a kernel fault is sticky until then) and keeps the memory.
cudaError_t cudaDeviceReset();
cudaError_t cudaMalloc(void** pointer, std::size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** pointer, std::size_t bytes) {  // cuda_runtime.h's typed overload
  return cudaMalloc(reinterpret_cast<void**>(pointer), bytes);
}
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemsetAsync(void* destination, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

// ---- the emulator's side (tests/emulator/runtime.cpp, streams.cpp, threads.cpp) ------------------
namespace ember::emulator {

/// The emulated thread now running: its indices and its launch's dimensions.
struct ThreadContext {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
const ThreadContext& thread_context();

/// The running thread's lane in its warp (the warps of a block are its threads in order, 32 each).
int lane_id();
/// __syncthreads(): waits until every thread of the block (that has not exited) arrives.
void sync_threads();
/// A warp-wide exchange of one 32-bit word: lane l gets the word of lane source_lane(l), or its
/// own where that is outside the warp. The mask must name the whole warp.
std::uint32_t warp_exchange(unsigned mask, std::uint32_t word, int source_lane);
/// mma.sync.m16n8k8.row.col.f32.tf32.tf32.f32, d += a b, with the fragments of the PTX ISA.
void mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]);
/// wgmma.mma_async.sync.aligned.m64nNk8.f32.tf32.tf32 with scale-d 1 (d += a b), both operands
/// from shared memory through their descriptors (K-major, 128-byte swizzle). It runs when a
/// wgmma.wait_group completes its group (wgmma_wait_group below), reading shared memory as the async proxy saw
/// it at the last fence.proxy.async of the block's threads; where that differs from what the
/// threads wrote, the launch fails.
void wgmma_m64nNk8_tf32(float* d, int n, std::uint64_t a_descriptor, std::uint64_t b_descriptor);
/// fence.proxy.async.shared::cta: once every live thread of the block has fenced, the async proxy
/// sees shared memory as it is.
void fence_proxy_async();
/// wgmma.fence.sync.aligned (nothing to do: the accumulators are plain memory here).
void wgmma_fence();
/// wgmma.commit_group.sync.aligned: the thread's uncommitted wgmmas form a group.
void wgmma_commit_group();
/// wgmma.wait_group.sync.aligned pending: runs the thread's oldest groups until at most pending
/// remain.
void wgmma_wait_group(int pending);
/// The running block's dynamic shared memory (extern __shared__), and a pointer's address in the
/// shared window (__cvta_generic_to_shared).
unsigned char* dynamic_shared_memory();
std::uint64_t shared_address(const void* pointer);
/// __trap(): ends the launch with cudaErrorLaunchFailure.
[[noreturn]] void trap();

/// x rounded to TF32 as cvt.rna.tf32.f32 does: to nearest on 10 mantissa bits, ties away from zero.
inline float round_to_tf32(float x) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits += 0x1000u;  // not Inf or NaN
  return std::bit_cast<float>(bits & 0xffffe000u);
}

/// One pointer argument of a launch, checked to be device memory (or null).
struct PointerArgument {
  int position;
  const void* pointer;
};

/// Runs (or, on a capturing stream, records) `grid` blocks of `block` threads of body(), the
/// kernel `function`.
void submit_kernel(const void* function, dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                   const PointerArgument* pointers, int pointer_count, std::function<void()> body);

template <typename... Params>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
            std::type_identity_t<Params>... args) {
  PointerArgument pointers[sizeof...(Params) + 1];
  int count = 0, position = 0;
  const auto note = [&](const auto& value) {
    if constexpr (std::is_pointer_v<std::decay_t<decltype(value)>>)
      pointers[count++] = {position, static_cast<const void*>(value)};
    ++position;
  };
  (note(args), ...);
  // The arguments are copied now, as a launch copies them (and a capture keeps them).
  submit_kernel(reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream, pointers, count,
                [kernel, arguments = std::tuple<Params...>(args...)] { std::apply(kernel, arguments); });
}

/// The order in which queued stream work runs once something waits for it (streams.cpp): late
/// (the default), early or interleaved; EMBER_EMULATOR_STREAMS sets it at start. Returns the
/// previous order.
enum class StreamOrder { late, early, interleaved };
StreamOrder set_stream_order(StreamOrder order);

/// The function behind a launch's kernel pointer, for cudaFuncGetAttributes and cudaFuncSetAttribute.
cudaError_t function_attributes(cudaFuncAttributes* attributes);

}  // namespace ember::emulator

/// cudaFuncAttributeMaxDynamicSharedMemorySize is kept: a launch above 48 KiB needs it.
cudaError_t cudaFuncSetAttribute(const void* function, cudaFuncAttribute attribute, int value);
template <typename... Params>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, void (*)(Params...)) {
  return ember::emulator::function_attributes(attributes);
}
template <typename... Params>
cudaError_t cudaFuncSetAttribute(void (*function)(Params...), cudaFuncAttribute attribute, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(function), attribute, value);
}

// ---- device built-ins -----------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time (its threads as fibers on one OS thread), so a static is its shared memory.
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define threadIdx (::ember::emulator::thread_context().thread_idx)
#define blockIdx (::ember::emulator::thread_context().block_idx)
#define blockDim (::ember::emulator::thread_context().block_dim)
#define gridDim (::ember::emulator::thread_context().grid_dim)

// CUDA's integer min of device code.
inline int min(int a, int b) {
  return a < b ? a : b;
}

inline void __syncthreads() {
  ember::emulator::sync_threads();
}
inline void __threadfence() {}  // the emulated threads run one at a time: every write is visible
[[noreturn]] inline void __trap() {
  ember::emulator::trap();
}
inline float __uint_as_float(unsigned x) {
  return std::bit_cast<float>(x);
}
inline float __int_as_float(int x) {
  return std::bit_cast<float>(x);
}
inline unsigned __float_as_uint(float x) {
  return std::bit_cast<unsigned>(x);
}
inline std::size_t __cvta_generic_to_shared(const void* pointer) {
  return ember::emulator::shared_address(pointer);
}
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  const unsigned old = *address;
  *address = old + value;
  return old;
}
template <typename T>
T __shfl_sync(unsigned mask, T value, int source_lane) {
  static_assert(sizeof(T) == 4, "32-bit shuffles only");
  return std::bit_cast<T>(ember::emulator::warp_exchange(mask, std::bit_cast<std::uint32_t>(value), source_lane % 32));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta) {
  static_assert(sizeof(T) == 4, "32-bit shuffles only");
  const int source = ember::emulator::lane_id() + static_cast<int>(delta);
  return std::bit_cast<T>(ember::emulator::warp_exchange(mask, std::bit_cast<std::uint32_t>(value), source));
}
