#pragma once
// Checking, in your own tests, that a model trains the same on the GPU as on the CPU (or on any two
// backends): the error measures and tolerances Ember's own suite uses, and a comparison of two
// training runs of one model. Plain C++, for any test framework:
//
//   const ember::testing::TrainingComparison c = ember::testing::compare_training(
//       {ember::Dense(64, ember::Activation::relu), ember::Dense(1)}, {.optimizer = ember::Adam{}}, x, y,
//       {.epochs = 2, .batch_size = 32}, {.device = ember::Device::cpu, .backend = {.cpu_reference = true}},
//       {.device = ember::Device::cuda});
//   EXPECT_TRUE(c.within_tolerance()) << c.report();   // GoogleTest
#include <cstdint>
#include <string>
#include <vector>

#include "ember/model.hpp"
#include "ember/tensor.hpp"

namespace ember::testing {

// Float32 results of k-term sums compared with float64 references land near sqrt(k) * 2^-24
// relative; 1e-5 leaves room for k in the millions. Every op with float32 outputs meets it.
inline constexpr double kFloat32Tolerance = 1e-5;
// TF32 tensor cores round each input to 10 mantissa bits (relative 2^-11, about 4.9e-4) and add in
// float32: a product's relative error is about 7e-4, a k-term sum's, norm-wise, the same order.
inline constexpr double kTf32Tolerance = 5e-3;
// Training multiplies the ops' float32 differences: after 50 steps of SGD or Adam the weights of a
// float32 backend stay within 1e-4 of the float64 reference's (Ember's conformance suite).
inline constexpr double kTrainingTolerance = 1e-4;
// With TF32 matmuls (about 1e-3 relative in each gradient), 50 small steps stay within 1e-2.
inline constexpr double kTf32TrainingTolerance = 1e-2;

/// ||out - reference|| / ||reference|| over the elements, in float64 (||out|| where the reference
/// is all zeros). A NaN anywhere, or shapes that differ, give infinity: it fails every tolerance.
double relative_error(ConstView out, ConstView reference);
double relative_error(const Matrix& out, const Matrix& reference);
double relative_error(const std::vector<float>& out, const std::vector<float>& reference);
/// The largest |a - b| over the elements; infinity for a NaN or differing shapes.
double max_abs_difference(ConstView a, ConstView b);

/// Where one side of a comparison trains: a device and its backend options (CompileOptions').
struct TrainingSide {
  Device device = Device::cpu;
  BackendOptions backend{};
};

/// Two training runs of the same model compared: each parameter tensor, and the losses.
struct TrainingComparison {
  struct Tensor {
    std::string name;  // "layers.0.weight", as the checkpoint names it
    double error = 0;  // relative_error(b's, a's)
  };
  std::vector<Tensor> tensors;
  double parameter_error = 0;              // relative error of all parameters together
  std::vector<double> losses_a, losses_b;  // per epoch
  double tolerance = 0;

  /// Every tensor, all parameters and every epoch's loss within tolerance (relative).
  bool within_tolerance() const;
  /// A table of the figures above, one line per tensor and per epoch.
  std::string report() const;
};

/// Trains two copies of Sequential(layers, seed) compiled with options (its device and backend
/// replaced by each side's) on x and y with fit, one on side a (the reference) and one on side b,
/// and compares them. Throws what fit throws (e.g. InputError where a side's device is unusable).
TrainingComparison compare_training(const std::vector<Layer>& layers, CompileOptions options, const Matrix& x,
                                    const Matrix& y, const FitOptions& fit, const TrainingSide& a,
                                    const TrainingSide& b, double tolerance = kTrainingTolerance,
                                    std::uint64_t seed = 0);

}  // namespace ember::testing
