#pragma once
// A fixed pseudo-random generator (SplitMix64) so that one seed gives the same numbers on every
// platform: std:: distributions differ between standard libraries, so none is used.
#include <cstdint>
#include <vector>

namespace ember {

class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform integer in [0, bound), bound > 0, without modulo bias.
  std::uint64_t below(std::uint64_t bound);
  /// Standard normal (Box-Muller).
  double normal();
  /// Fisher-Yates shuffle.
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (std::size_t i = values.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(below(i));
      std::swap(values[i - 1], values[j]);
    }
  }

 private:
  std::uint64_t state_;
};

/// A seed derived from a base seed and a stream number (e.g. the epoch), well mixed.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

}  // namespace ember
