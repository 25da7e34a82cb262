#pragma once
// Dropout's mask, the same on every backend: Philox4x32-10 (Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3", SC'11), a counter-based generator, so that element i's draw is a pure
// function of (seed, counters, i) that any thread computes without state. The float64 reference,
// the fast CPU path and the CUDA kernel all call keeps() below, and scale the kept elements by the
// same float: their outputs are identical bit for bit.
#include <cstdint>

#include "host_device.hpp"

namespace ember::dropout_math {

struct Philox4x32 {
  std::uint32_t v[4];
};

/// Philox4x32 with 10 rounds of counter under key (Random123's philox4x32_R(10, ...)).
EMBER_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 counter, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  std::uint32_t* c = counter.v;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t product0 = static_cast<std::uint64_t>(kMultiplier0) * c[0];
    const std::uint64_t product1 = static_cast<std::uint64_t>(kMultiplier1) * c[2];
    const Philox4x32 next{
        {static_cast<std::uint32_t>(product1 >> 32) ^ c[1] ^ key0, static_cast<std::uint32_t>(product1),
         static_cast<std::uint32_t>(product0 >> 32) ^ c[3] ^ key1, static_cast<std::uint32_t>(product0)}};
    counter = next;
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

/// What one dropout op needs besides its tensors: the layer's key (from the model's seed and the
/// layer's position), the drop threshold on 24-bit draws (the rate times 2^24, rounded) and the
/// factor applied to kept elements (1 / (1 - rate), rounded to float once on the host).
struct Mask {
  std::uint64_t seed = 0;
  std::uint32_t threshold = 0;
  float scale = 1.0f;
};

/// The threshold and scale of a rate in [0, 1).
inline Mask mask_for(std::uint64_t seed, float rate) {
  const double threshold = static_cast<double>(rate) * 16777216.0 + 0.5;
  return {seed, static_cast<std::uint32_t>(threshold), static_cast<float>(1.0 / (1.0 - static_cast<double>(rate)))};
}

/// Which of elements 4 group to 4 group + 3 of a step keep their value: bit j for element
/// 4 group + j, from the four words of one draw. counters are the step's two int32s of backend
/// memory, read when the op runs (a recorded step stays valid): the gather cursor after the batch
/// and the epoch.
EMBER_HOST_DEVICE inline unsigned kept_bits(const Mask& mask, const std::int32_t* counters, std::uint64_t group) {
  const Philox4x32 draw =
      philox4x32_10({{static_cast<std::uint32_t>(group), static_cast<std::uint32_t>(group >> 32),
                      static_cast<std::uint32_t>(counters[0]), static_cast<std::uint32_t>(counters[1])}},
                    static_cast<std::uint32_t>(mask.seed), static_cast<std::uint32_t>(mask.seed >> 32));
  const std::uint32_t t = mask.threshold;
  return ((draw.v[0] >> 8) >= t ? 1u : 0u) | ((draw.v[1] >> 8) >= t ? 2u : 0u) | ((draw.v[2] >> 8) >= t ? 4u : 0u) |
         ((draw.v[3] >> 8) >= t ? 8u : 0u);
}

}  // namespace ember::dropout_math
