#pragma once
// Where a model runs: the devices, the GPU's arithmetic and matmul provider, and what this build and
// machine can use.
#include <string>

namespace ember {

enum class Device { automatic, cpu, cuda };
/// Who computes matmul on the CUDA backend: Ember's own kernels, or cuBLAS (the yardstick).
enum class MatmulProvider { ember, cublas };
/// Arithmetic of the CUDA matmul: plain FP32, or TF32 tensor cores (inputs rounded to a 10-bit
/// mantissa, FP32 accumulation) where the GPU has them.
enum class Precision { fp32, tf32 };

struct BackendOptions {
  MatmulProvider matmul = MatmulProvider::ember;
  bool cuda_graph = true;  // replay each training step as a CUDA graph (CUDA backend only)
  Precision precision = Precision::fp32;
  /// On the CPU: the plain float64 reference ops instead of the fast path (BLAS matmul, fused
  /// float32 loops). Tests use the reference as the oracle.
  bool cpu_reference = false;
  /// On the CPU's fast path: each output row of a Dense layer, and each row of its input gradient,
  /// computed from its own row alone in one fixed order (built-in loops rather than OpenBLAS, whose
  /// rounding of a row depends on its place in a block), so that a row predicts the same bits
  /// whatever rows come with it, as scikit-learn's estimator checks require. Training on it weighs
  /// the rows inside the parameter gradients' float64 sums (Backend::row_invariant): a step does
  /// not depend on its rows' order, and a row of weight k gives the step of k copies of it. Slower
  /// than OpenBLAS on wide layers.
  bool row_invariant = false;
};

/// Whether this build contains the CUDA backend.
bool cuda_compiled();
/// Why no GPU can be used, or empty when one can.
std::string cuda_unavailable_reason();
/// Who multiplies on the CPU's fast path: "matmul by OpenBLAS 0.3.21 (OpenMP build)", or the
/// built-in loops. Where the process had already loaded another OpenBLAS build (an `LD_LIBRARY_PATH`,
/// or Debian's numpy in the same Python process), it is used and named with the one Ember expected.
std::string cpu_matmul_library();
/// Lines describing the backends and devices (for `ember info`).
std::string describe_devices();

Device parse_device(const std::string& text);  // "auto", "cpu", "cuda", any case; throws InputError
std::string to_string(Device device);
Precision parse_precision(const std::string& text);  // "fp32", "tf32"; throws InputError

}  // namespace ember
