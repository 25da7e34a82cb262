#pragma once
// OpenBLAS's kernels for this CPU. A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels by the
// CPU's model number; a model newer than the release falls back to SSE kernels (OpenBLAS 0.3.21
// on an Emerald Rapids Xeon: "Prescott", 35 against 156 GFLOP/s with its AVX-512 kernels). Newer
// releases then choose by the CPU's instruction sets instead, and so does Ember.
#include <string>

namespace ember::openblas {

// As Ember's library loads (openblas_kernels.cpp), where OPENBLAS_CORETYPE is unset and the loaded
// OpenBLAS runs kernels for fewer vector instructions than the CPU has (AVX-512, AVX2 with FMA,
// AVX), Ember switches it to the kernels for the CPU's set (SkylakeX, Haswell, Sandybridge).

/// "SkylakeX kernels, chosen by Ember for this CPU's AVX-512 where OpenBLAS named Prescott", or
/// "Haswell kernels"; empty where the library does not say.
std::string describe_kernels();

}  // namespace ember::openblas
