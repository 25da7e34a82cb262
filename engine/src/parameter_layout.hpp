#pragma once
// Where each layer's parameters sit in the one flat buffer that the plan, the model and the
// checkpoint share: per layer its weight (out, in), then its bias (out). Optimizer state buffers
// and gradients use the same layout.
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ember/error.hpp"
#include "ember/model.hpp"

namespace ember {

class ParameterLayout {
 public:
  struct Layer {
    std::int64_t in = 0, out = 0;
    std::int64_t weight = 0;  // offset of the weight (out, in)
    std::int64_t bias = 0;    // offset of the bias (out)
  };
  struct Tensor {
    std::string name;  // "layers.{i}.weight" / "layers.{i}.bias", as torch.nn.Linear's state_dict
    std::vector<std::int64_t> shape;
    std::int64_t offset, count;
  };

  /// The kernels index a layer with 32-bit integers: widths and inputs must be 1 to 2^31 - 1.
  static constexpr std::int64_t kMaxWidth = std::numeric_limits<std::int32_t>::max();

  /// InputError when a width is out of range or the count overflows 64 bits.
  ParameterLayout(const std::vector<Dense>& layers, std::int64_t inputs) {
    if (inputs <= 0 || inputs > kMaxWidth)
      throw InputError(fmt::format("the model needs 1 to {} input columns, got {}", kMaxWidth, inputs));
    std::int64_t in = inputs;
    for (const Dense& dense : layers) {
      Layer layer{in, dense.units, count_, 0};
      std::int64_t end = 0;  // (in + 1) * units: both factors < 2^31 + 1, so the product fits
      if (__builtin_add_overflow(count_, (in + 1) * dense.units, &end))
        throw InputError("the model's parameter count overflows 64 bits; use narrower or fewer layers");
      layer.bias = count_ + in * dense.units;
      count_ = end;
      layers_.push_back(layer);
      in = dense.units;
    }
  }

  std::int64_t count() const { return count_; }
  const std::vector<Layer>& layers() const { return layers_; }
  std::vector<Tensor> tensors() const {
    std::vector<Tensor> out;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& layer = layers_[l];
      out.push_back({fmt::format("layers.{}.weight", l), {layer.out, layer.in}, layer.weight, layer.out * layer.in});
      out.push_back({fmt::format("layers.{}.bias", l), {layer.out}, layer.bias, layer.out});
    }
    return out;
  }

 private:
  std::int64_t count_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace ember
