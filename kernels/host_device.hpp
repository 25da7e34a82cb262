#pragma once
// EMBER_HOST_DEVICE marks plain functions that both the CUDA kernels and host code (the CPU paths,
// the tests, the emulator) call: __host__ __device__ under nvcc, nothing elsewhere.
#if defined(__CUDACC__)
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif
