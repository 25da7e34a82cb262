#pragma once
// What the emulator's parts share (README.md here): the emulated device's figures, its error
// state and memory map (runtime.cpp), how work reaches a stream (streams.cpp), and how a kernel's
// blocks run (threads.cpp).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>
#include <string>

namespace ember::emulator {

// The GPU the emulator stands for: an H200's SM count and compute capability, so that the kernels'
// plans are the ones an H200 runs.
constexpr int kMultiprocessors = 132, kMajor = 9, kMinor = 0;
constexpr std::size_t kMemoryBytes = std::size_t{8} << 30;
constexpr int kSharedMemoryOptIn = 227 * 1024;
constexpr int kWarp = 32;

// ---- errors (runtime.cpp) ----
/// What cudaGetLastError returns next, and a failed kernel's error, which every later call
/// reports, as on a GPU (until cudaDeviceReset).
inline cudaError_t last_error = cudaSuccess;
inline cudaError_t sticky_error = cudaSuccess;
/// Sets last_error, prints "CUDA emulator: NAME: what" on stderr, and returns error.
cudaError_t fail(cudaError_t error, const std::string& what);

// ---- memory (runtime.cpp) ----
/// Whether [pointer, pointer + bytes) lies in one cudaMalloc allocation (a pointer one past the
/// end only for 0 bytes).
bool is_device_range(const void* pointer, std::size_t bytes);
inline bool is_device_pointer(const void* pointer) {
  return is_device_range(pointer, 0);
}
/// Under AddressSanitizer, device memory is poisoned except while the emulator runs device work,
/// so that host code reading or writing it (a crash on a GPU) is reported; this lifts (true) or
/// restores (false) the poison. Without AddressSanitizer it does nothing.
void allow_device_memory(bool allowed);

// ---- streams (streams.cpp) ----
using Work = std::function<void()>;
/// Queues work on a stream, or records it into the stream's capture. Work on the legacy stream
/// (null) runs at once, after every blocking stream's work, as the legacy stream's semantics say.
cudaError_t submit(cudaStream_t stream, Work work);
/// Runs every stream's queued work (a device-wide synchronization: cudaFree).
void run_all_streams();
/// Runs the queued work of the streams created without cudaStreamNonBlocking (what a synchronous
/// call on the legacy stream waits for).
void run_blocking_streams();
/// A call the CUDA runtime forbids while this thread captures (cudaMalloc, cudaFree, synchronous
/// copies, synchronization): true after failing it and invalidating the captures, as on a GPU.
bool capture_forbids(const char* call);

// ---- kernels (threads.cpp) ----
/// Runs `grid` blocks of `block` threads of body() now, one block at a time; a fault sets
/// sticky_error.
void run_grid(const Work& body, dim3 grid, dim3 block, std::size_t shared_bytes);

}  // namespace ember::emulator
