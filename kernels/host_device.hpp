#pragma once
// EMBER_HOST_DEVICE marks plain functions that both the CUDA kernels and host code (the CPU paths,
// the tests, the emulator) call: __host__ __device__ under nvcc, nothing elsewhere.
#if defined(__CUDACC__)
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif

#include <math.h>

namespace ember {

// float and double overloads of the math that the parts' formulas use (activation_math.hpp,
// optimizer_math.hpp): one formula templated on the type runs in float on the GPU and the fast CPU
// path and in double in the reference (plain C names exist in device code too).
EMBER_HOST_DEVICE inline float exp_of(float x) {
  return expf(x);
}
EMBER_HOST_DEVICE inline double exp_of(double x) {
  return exp(x);
}
EMBER_HOST_DEVICE inline float tanh_of(float x) {
  return tanhf(x);
}
EMBER_HOST_DEVICE inline double tanh_of(double x) {
  return tanh(x);
}
EMBER_HOST_DEVICE inline float erf_of(float x) {
  return erff(x);
}
EMBER_HOST_DEVICE inline double erf_of(double x) {
  return erf(x);
}
EMBER_HOST_DEVICE inline float sqrt_of(float x) {
  return sqrtf(x);
}
EMBER_HOST_DEVICE inline double sqrt_of(double x) {
  return sqrt(x);
}
EMBER_HOST_DEVICE inline float pow_of(float x, float y) {
  return powf(x, y);
}
EMBER_HOST_DEVICE inline double pow_of(double x, double y) {
  return pow(x, y);
}

/// Backend::clip_by_norm's factor for a norm: min(1, max_norm / (norm + 1e-6)), PyTorch's clip_coef
/// clamped to 1 (clip_grad_norm_).
template <typename T>
EMBER_HOST_DEVICE inline T clip_factor(T norm, T max_norm) {
  const T factor = max_norm / (norm + static_cast<T>(1e-6));
  return factor < static_cast<T>(1) ? factor : static_cast<T>(1);
}

}  // namespace ember
