// The CPU emulator's runtime (README.md here): the device, its errors, its memory, kernel launches
// and their limits, and cuBLAS's SGEMM. Streams, events and graphs are in streams.cpp, the threads
// of a kernel in threads.cpp.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "internal.hpp"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
};

namespace ember::emulator {

cudaError_t fail(cudaError_t error, const std::string& what) {
  std::fprintf(stderr, "CUDA emulator: %s: %s\n", cudaGetErrorName(error), what.c_str());
  last_error = error;
  return error;
}

namespace {

std::map<const char*, std::size_t> allocations;  // start -> bytes
std::size_t allocated_bytes = 0;
std::map<const void*, std::size_t> dynamic_shared_limits;  // cudaFuncAttributeMaxDynamicSharedMemorySize
#if defined(__SANITIZE_ADDRESS__)
bool host_may_not_touch = true;  // device memory is poisoned for the host
#endif

}  // namespace

void allow_device_memory(bool allowed) {
#if defined(__SANITIZE_ADDRESS__)
  host_may_not_touch = !allowed;
  for (const auto& [start, bytes] : allocations)
    allowed ? __asan_unpoison_memory_region(start, bytes) : __asan_poison_memory_region(start, bytes);
#else
  (void)allowed;
#endif
}

bool is_device_range(const void* pointer, std::size_t bytes) {
  const char* p = static_cast<const char*>(pointer);
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin()) return false;
  --it;
  return static_cast<std::size_t>(p - it->first) + bytes <= it->second;
}

void submit_kernel(const void* function, dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                   const PointerArgument* pointers, int pointer_count, std::function<void()> body) {
  if (sticky_error != cudaSuccess) return;
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  const auto limit = dynamic_shared_limits.find(function);
  const std::size_t shared_limit = limit != dynamic_shared_limits.end() ? limit->second : 48 * 1024;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || shared_bytes > shared_limit) {
    fail(cudaErrorInvalidConfiguration, "launch of (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                                            std::to_string(grid.z) + ") blocks of (" + std::to_string(block.x) + ", " +
                                            std::to_string(block.y) + ", " + std::to_string(block.z) + ") threads, " +
                                            std::to_string(shared_bytes) + " bytes of shared memory");
    return;
  }
  for (int i = 0; i < pointer_count; ++i)
    if (pointers[i].pointer != nullptr && !is_device_pointer(pointers[i].pointer)) {
      fail(cudaErrorInvalidDevicePointer,
           "kernel argument " + std::to_string(pointers[i].position) + " is not device memory (from cudaMalloc)");
      return;
    }
  submit(stream, [body = std::move(body), grid, block, shared_bytes] { run_grid(body, grid, block, shared_bytes); });
}

cudaError_t function_attributes(cudaFuncAttributes* attributes) {
  *attributes = {.maxThreadsPerBlock = 1024, .numRegs = 0, .ptxVersion = kMajor * 10, .binaryVersion = kMajor * 10};
  return cudaSuccess;
}

}  // namespace ember::emulator

// ---- the runtime API ------------------------------------------------------------------------------
using namespace ember::emulator;

cudaError_t cudaFuncSetAttribute(const void* function, cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > kSharedMemoryOptIn)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: beyond the 227 KiB of an H200 block");
  dynamic_shared_limits[function] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = sticky_error != cudaSuccess ? sticky_error : last_error;
  last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported:
      return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported:
      return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
      return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnjoined:
      return "cudaErrorStreamCaptureUnjoined";
    default:
      return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorNotSupported:
      return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined:
      return "capture was not joined with the origin stream";
    default:
      return "unknown error";
  }
}

cudaError_t cudaDriverGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaSetDevice: the emulator has device 0 only");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: no such device");
  *properties = {};
  std::snprintf(properties->name, sizeof properties->name, "CUDA emulator on the CPU (H200-like)");
  properties->totalGlobalMem = kMemoryBytes;
  properties->sharedMemPerBlockOptin = kSharedMemoryOptIn;
  properties->major = kMajor;
  properties->minor = kMinor;
  properties->multiProcessorCount = kMultiprocessors;
  std::memcpy(properties->uuid.bytes, "ember-emulator-0", sizeof properties->uuid.bytes);
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: no such device");
  switch (attribute) {
    case cudaDevAttrMultiProcessorCount:
      *value = kMultiprocessors;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = kMajor;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = kMinor;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = kSharedMemoryOptIn;
      return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
}
cudaError_t cudaDeviceReset() {
  sticky_error = last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** pointer, std::size_t bytes) {
  if (capture_forbids("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
  if (sticky_error != cudaSuccess) return sticky_error;
  if (bytes == 0) {
    *pointer = nullptr;
    return cudaSuccess;
  }
  if (allocated_bytes + bytes > kMemoryBytes) return fail(cudaErrorMemoryAllocation, "cudaMalloc beyond the memory");
  const std::size_t rounded = (bytes + 255) / 256 * 256;
  char* p = static_cast<char*>(std::aligned_alloc(256, rounded));
  if (p == nullptr) return fail(cudaErrorMemoryAllocation, "cudaMalloc: the host is out of memory");
  std::memset(p, 0xff, rounded);  // uninitialized memory reads as NaN
#if defined(__SANITIZE_ADDRESS__)
  __asan_poison_memory_region(p + bytes, rounded - bytes);  // an access past `bytes` is an error
  if (host_may_not_touch) __asan_poison_memory_region(p, bytes);
#endif
  allocations[p] = bytes;
  allocated_bytes += bytes;
  *pointer = p;
  return cudaSuccess;
}
cudaError_t cudaFree(void* pointer) {
  if (capture_forbids("cudaFree")) return cudaErrorStreamCaptureUnsupported;
  if (pointer == nullptr) return cudaSuccess;
  run_all_streams();  // cudaFree synchronizes the device: no queued work may use the memory after it
  const auto it = allocations.find(static_cast<const char*>(pointer));
  if (it == allocations.end()) return fail(cudaErrorInvalidDevicePointer, "cudaFree of memory cudaMalloc did not give");
  allocated_bytes -= it->second;
#if defined(__SANITIZE_ADDRESS__)
  __asan_unpoison_memory_region(pointer, (it->second + 255) / 256 * 256);
#endif
  allocations.erase(it);
  std::free(pointer);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  *free_bytes = kMemoryBytes - allocated_bytes;
  *total_bytes = kMemoryBytes;
  return cudaSuccess;
}

// ---- cuBLAS ---------------------------------------------------------------------------------------
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext{};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  handle->mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void* workspace, std::size_t bytes) {
  return is_device_range(workspace, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    default:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
  }
}
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* a, int lda, const float* b, int ldb,
                           const float* beta, float* c, int ldc) {
  const bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
  // Column-major: op(a) is m x k, op(b) k x n, c m x n; the leading dimensions as cuBLAS checks them.
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (!is_device_pointer(c) || (k > 0 && (!is_device_pointer(a) || !is_device_pointer(b))))
    return CUBLAS_STATUS_INVALID_VALUE;
  const float alpha_value = *alpha, beta_value = *beta;
  const bool tf32 = handle->mode == CUBLAS_TF32_TENSOR_OP_MATH;
  const cudaError_t error = submit(handle->stream, [=] {
    const auto operand = [tf32](float x) { return tf32 ? round_to_tf32(x) : x; };
    // Column-major: element (r, c) of a matrix with leading dimension ld is at r + c ld.
    const auto at = [](const float* x, long long ld, long long r, long long c) { return x[r + c * ld]; };
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double sum = 0;
        for (int p = 0; p < k; ++p)
          sum += static_cast<double>(operand(ta ? at(a, lda, p, i) : at(a, lda, i, p))) *
                 operand(tb ? at(b, ldb, j, p) : at(b, ldb, p, j));
        float& out = c[i + static_cast<long long>(j) * ldc];
        out = beta_value == 0.0f ? static_cast<float>(alpha_value * sum)
                                 : static_cast<float>(alpha_value * sum + static_cast<double>(beta_value) * out);
      }
  });
  return error == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
