#pragma once
// Where each layer's parameters sit in the one flat buffer that the plan, the model and the
// checkpoint share: layer after layer, each layer's trained tensors in its part's order (a Dense
// layer's weight (out, in), then its bias (out); a Dropout layer has none); then, after every
// layer's, the tensors that are state and not trained (a BatchNorm's running figures), layer after
// layer. Optimizer state buffers and gradients use the same layout; the optimizer, the gradient
// sums and clipping cover the trained prefix alone, whose gradients are all there is to sum.
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ember/error.hpp"
#include "ember/layers.hpp"
#include "layer_part.hpp"

namespace ember {

class ParameterLayout {
 public:
  struct Tensor {
    std::string name;  // "layers.{i}.weight" / "layers.{i}.bias", as a torch.nn.Sequential's state_dict
    std::vector<std::int64_t> shape;
    std::int64_t offset, count;
    bool state = false;  // not trained (ParameterShape::state)
  };
  struct Layer {
    std::int64_t in = 0, out = 0;
    std::int64_t offset = 0, count = 0;              // the layer's trained parameters: [offset, offset + count)
    std::int64_t state_offset = 0, state_count = 0;  // its state, in the tail
    std::vector<Tensor> tensors;                     // the part's order, trained and state
  };

  /// The kernels index a layer with 32-bit integers: widths and inputs must be 1 to 2^31 - 1.
  static constexpr std::int64_t kMaxWidth = std::numeric_limits<std::int32_t>::max();

  /// InputError when a width is out of range or the count overflows 64 bits.
  ParameterLayout(const std::vector<ember::Layer>& layers, std::int64_t inputs) {
    if (inputs <= 0 || inputs > kMaxWidth)
      throw InputError(fmt::format("the model needs 1 to {} input columns, got {}", kMaxWidth, inputs));
    std::int64_t in = inputs;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      if (l > 0 && layer_part::indices(layers[l], in).count > 0)
        throw InputError(
            fmt::format("{} reads the model's input columns as category indices; it must be the first "
                        "layer, not layer {}",
                        describe(layers[l]), l + 1));
      Layer layer{in, layer_part::output_width(layers[l], in), trained_, 0, 0, 0, {}};
      for (layer_part::ParameterShape& tensor : layer_part::parameters(layers[l], in)) {
        std::int64_t count = 1;  // every dimension is below 2^31 and a tensor has at most 2: no overflow
        for (std::int64_t d : tensor.shape) count *= d;
        std::int64_t& within = tensor.state ? layer.state_count : layer.count;
        layer.tensors.push_back(
            {fmt::format("layers.{}.{}", l, tensor.name), std::move(tensor.shape), within, count, tensor.state});
        within += count;  // a layer's tensors hold fewer than 2^62 + 2^31 values
      }
      if (__builtin_add_overflow(trained_, layer.count, &trained_) ||
          __builtin_add_overflow(state_, layer.state_count, &state_))
        throw InputError("the model's parameter count overflows 64 bits; use narrower or fewer layers");
      in = layer.out;
      layers_.push_back(std::move(layer));
    }
    if (__builtin_add_overflow(trained_, state_, &count_))
      throw InputError("the model's parameter count overflows 64 bits; use narrower or fewer layers");
    // The state after every trained tensor.
    std::int64_t state_offset = trained_;
    for (Layer& layer : layers_) {
      layer.state_offset = state_offset;
      state_offset += layer.state_count;
      for (Tensor& tensor : layer.tensors) tensor.offset += tensor.state ? layer.state_offset : layer.offset;
    }
  }

  /// Every value: the trained ones, then the state.
  std::int64_t count() const { return count_; }
  /// The trained values, [0, trained()): what the optimizer updates and the gradients hold.
  std::int64_t trained() const { return trained_; }
  const std::vector<Layer>& layers() const { return layers_; }
  /// Every layer's tensors, first layer first.
  std::vector<Tensor> tensors() const {
    std::vector<Tensor> out;
    for (const Layer& layer : layers_) out.insert(out.end(), layer.tensors.begin(), layer.tensors.end());
    return out;
  }

 private:
  std::int64_t count_ = 0, trained_ = 0, state_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace ember
