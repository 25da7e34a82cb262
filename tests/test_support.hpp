#pragma once
// Helpers shared by the tests: random inputs, NaN poisoning, relative error, tolerances.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "ember/error.hpp"
#include "ember/layers.hpp"
#include "ember/losses.hpp"
#include "ember/model.hpp"
#include "ember/optimizers.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"
#include "ember/testing.hpp"

namespace ember::testing {

/// The tests' work directory: the build's, or $EMBER_TEST_WORKDIR where a second run of the same
/// tests goes on beside the first (ctest -j) and must not share its files.
inline std::string work_directory() {
  const char* chosen = std::getenv("EMBER_TEST_WORKDIR");
  const std::string directory = chosen != nullptr && *chosen != '\0' ? chosen : EMBER_TEST_WORKDIR;
  std::filesystem::create_directories(directory);
  return directory;
}

/// A file name in the tests' work directory (created if needed).
inline std::string work_path(const std::string& name) {
  return work_directory() + "/" + name;
}

/// Fresh values uniform in [-1, 1) (never zeros).
/// A checkpoint loaded onto the CPU with the options it was saved with, to be compared bit for bit
/// with a model that ran there: a loaded model's device is Device::automatic, the GPU where one is
/// usable, and the GPU's float32 rounding differs from the CPU's.
inline Sequential load_on_cpu(const std::string& path) {
  Sequential model = Sequential::load(path);
  CompileOptions options = model.compile_options();
  options.device = Device::cpu;
  model.compile(options);
  return model;
}

/// The InputError's message make throws, or "(no error)".
inline std::string input_error_message(const std::function<void()>& make) {
  try {
    make();
  } catch (const InputError& error) {
    return error.what();
  }
  return "(no error)";
}

inline Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Matrix m(rows, cols);
  Random random(seed);
  for (std::int64_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(2.0 * random.uniform() - 1.0);
  return m;
}

inline Matrix poisoned(std::int64_t rows, std::int64_t cols) {
  return Matrix(rows, cols, std::numeric_limits<float>::quiet_NaN());
}

/// A batch's rows in float64, as a layer's float64 form (LayerExample::float64) transforms them.
using Rows = std::vector<std::vector<double>>;
/// Where a float64 form runs: the layer's place in its model (a Dropout's mask depends on it) and
/// the rows of the batch (its counters).
struct FormContext {
  std::size_t layer = 0;
  std::int64_t rows = 0;
};
/// What the tests that loop over the kinds of layer need of each kind, registered by the kind's own
/// test file (tests/layers/NAME_test.cpp, EMBER_LAYER_EXAMPLE): a layer of the kind with settings
/// other than the defaults, its place among the others in one_layer_of_each_kind, and its forward
/// pass written again in float64 with plain loops (the finite-difference check's reference):
/// rows in place, the layer's trained parameters from parameters[0] in the plan's layout, returning
/// how many it read.
struct LayerExample {
  Layer layer;
  int place = 0;
  std::function<std::size_t(const Layer&, Rows&, const double*, const FormContext&)> float64;
};
inline std::vector<LayerExample>& layer_examples() {
  static std::vector<LayerExample> examples;
  return examples;
}
struct RegisterLayerExample {
  template <typename Kind, typename Form>
  RegisterLayerExample(int place, Kind layer, Form form) {
    layer_examples().push_back(
        {layer, place, [form](const Layer& l, Rows& rows, const double* parameters, const FormContext& context) {
           return form(std::get<Kind>(l), rows, parameters, context);
         }});
  }
};
/// Registers a kind's example at its place: EMBER_LAYER_EXAMPLE(5, RMSNorm(1e-4f), [](const RMSNorm&,
/// Rows&, const double*, const FormContext&) -> std::size_t { ... }).
#define EMBER_LAYER_EXAMPLE(place, ...)                               \
  const ::ember::testing::RegisterLayerExample kLayerExample##place { \
    place, __VA_ARGS__                                                \
  }

/// The registered example of layer's kind; logic_error where its test file registers none.
inline const LayerExample& example_of(const Layer& layer) {
  for (const LayerExample& example : layer_examples())
    if (example.layer.index() == layer.index()) return example;
  throw std::logic_error("no layer example of kind " + std::to_string(layer.index()) +
                         ": its tests/layers/NAME_test.cpp registers one (EMBER_LAYER_EXAMPLE)");
}

/// One layer of every kind (ember/layers.hpp), the registered examples in their places, for the
/// tests that loop over the kinds (their inputs from random_input): a kind without one makes them fail.
inline std::vector<Layer> one_layer_of_each_kind() {
  std::vector<LayerExample> examples = layer_examples();
  std::sort(examples.begin(), examples.end(), [](const auto& a, const auto& b) { return a.place < b.place; });
  std::vector<Layer> layers;
  for (const LayerExample& example : examples) layers.push_back(example.layer);
  std::vector<bool> seen(kLayerKinds);
  for (const Layer& layer : layers) seen[layer.index()] = true;
  for (std::size_t kind = 0; kind < kLayerKinds; ++kind)
    if (!seen[kind])
      throw std::logic_error("one_layer_of_each_kind lacks kind " + std::to_string(kind) +
                             " of ember::Layer: its tests/layers/NAME_test.cpp registers an example");
  return layers;
}

/// What the tests that loop over the kinds of loss need of each kind, registered by the kind's own
/// test file (tests/losses/NAME_test.cpp, EMBER_LOSS_EXAMPLE): a loss of the kind with settings
/// other than the defaults where it has any, and its batch's mean loss written again in float64
/// with plain loops, from predictions (rows, outputs) and targets (rows, outputs; class labels
/// (rows, 1) for classification). The finite-difference and conformance checks of every loss read
/// them.
struct LossExample {
  Loss loss;
  std::function<double(const Loss&, const Matrix& prediction, const Matrix& target)> mean_loss;
};
inline std::vector<LossExample>& loss_examples() {
  static std::vector<LossExample> examples;
  return examples;
}
struct RegisterLossExample {
  template <typename Kind, typename Form>
  RegisterLossExample(Kind loss, Form form) {
    loss_examples().push_back({loss, [form](const Loss& l, const Matrix& prediction, const Matrix& target) {
                                 return form(std::get<Kind>(l), prediction, target);
                               }});
  }
};
/// EMBER_LOSS_EXAMPLE(Huber{0.6f}, [](const Huber&, const Matrix& prediction, const Matrix& target) { ... }).
#define EMBER_LOSS_EXAMPLE(...)                              \
  const ::ember::testing::RegisterLossExample kLossExample { \
    __VA_ARGS__                                              \
  }

/// Every kind's registered example, in Loss's order; logic_error naming a kind without one.
inline std::vector<LossExample> one_loss_of_each_kind() {
  std::vector<LossExample> examples;
  for (std::size_t kind = 0; kind < kLossKinds; ++kind) {
    const auto found = std::find_if(loss_examples().begin(), loss_examples().end(),
                                    [&](const LossExample& e) { return e.loss.index() == kind; });
    if (found == loss_examples().end())
      throw std::logic_error("no loss example of " + loss_names()[kind] +
                             ": its tests/losses/NAME_test.cpp registers one (EMBER_LOSS_EXAMPLE)");
    examples.push_back(*found);
  }
  return examples;
}

/// The optimizers' settings the tests over every optimizer use, registered by each kind's test
/// file (tests/optimizers/NAME_test.cpp, EMBER_OPTIMIZER_EXAMPLES): settings that take each of the
/// kind's paths (with and without momentum, ...) for the conformance check of every backend, the
/// first the one the training tests train with (fifty steps on every backend, resuming through a
/// checkpoint).
inline std::vector<Optimizer>& optimizer_example_list() {
  static std::vector<Optimizer> examples;
  return examples;
}
struct RegisterOptimizerExamples {
  explicit RegisterOptimizerExamples(std::initializer_list<Optimizer> examples) {
    optimizer_example_list().insert(optimizer_example_list().end(), examples);
  }
};
#define EMBER_OPTIMIZER_EXAMPLES_JOIN2(a, b) a##b
#define EMBER_OPTIMIZER_EXAMPLES_JOIN(a, b) EMBER_OPTIMIZER_EXAMPLES_JOIN2(a, b)
/// EMBER_OPTIMIZER_EXAMPLES(RMSprop{.lr = 0.001f, .momentum = 0.5f}, RMSprop{...}, ...).
#define EMBER_OPTIMIZER_EXAMPLES(...)                                                                             \
  const ::ember::testing::RegisterOptimizerExamples EMBER_OPTIMIZER_EXAMPLES_JOIN(kOptimizerExamples, __LINE__) { \
    __VA_ARGS__                                                                                                   \
  }

/// Every registered example; logic_error naming a kind without one.
inline std::vector<Optimizer> optimizer_examples() {
  const std::vector<Optimizer>& examples = optimizer_example_list();
  for (std::size_t kind = 0; kind < std::variant_size_v<Optimizer>; ++kind)
    if (std::none_of(examples.begin(), examples.end(), [&](const Optimizer& o) { return o.index() == kind; }))
      throw std::logic_error("no optimizer example of " + optimizer_names()[kind] +
                             ": its tests/optimizers/NAME_test.cpp registers some (EMBER_OPTIMIZER_EXAMPLES)");
  return examples;
}

/// The first registered example of each kind, in Optimizer's order.
inline std::vector<Optimizer> one_optimizer_of_each_kind() {
  const std::vector<Optimizer> examples = optimizer_examples();
  std::vector<Optimizer> firsts;
  for (std::size_t kind = 0; kind < std::variant_size_v<Optimizer>; ++kind)
    firsts.push_back(
        *std::find_if(examples.begin(), examples.end(), [&](const Optimizer& o) { return o.index() == kind; }));
  return firsts;
}

/// random_matrix as the input of layers: where the first layer is an Embedding, its index columns
/// hold category indices drawn uniformly.
inline Matrix random_input(const std::vector<Layer>& layers, std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Matrix m = random_matrix(rows, cols, seed);
  const auto* embedding = layers.empty() ? nullptr : std::get_if<Embedding>(&layers.front());
  if (embedding == nullptr) return m;
  Random random(derive_seed(seed, 1));
  const std::int64_t columns = embedding->columns == 0 ? cols : embedding->columns;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = cols - columns; c < cols; ++c)
      m(r, c) = static_cast<float>(random.below(static_cast<std::uint64_t>(embedding->input_dim)));
  return m;
}

/// ||out - ref|| / ||ref|| over n values, float64; NaN anywhere gives NaN (so it fails any bound).
template <typename A, typename B>
double relative_error(const A* out, const B* ref, std::int64_t n) {
  double diff = 0.0, norm = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
    diff += d * d;
    norm += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  if (norm == 0.0) return std::sqrt(diff);
  return std::sqrt(diff / norm);
}

// kFloat32Tolerance, kTf32Tolerance, kTrainingTolerance and relative_error of matrices and views
// come from the installed ember/testing.hpp, which users' own tests share.
// Central finite differences in float64 with step 1e-6 against float32 analytic gradients: the
// float32 rounding of the gradient (~1e-7 relative) dominates, so 1e-4 is a safe bound.
inline constexpr double kGradientTolerance = 1e-4;
// An activation computed in float32 (expf, tanhf, erff: a few ulps each) against the float64
// reference's, rounded once; relative over a whole matrix.
inline constexpr double kActivationTolerance = 2e-6;

}  // namespace ember::testing
