#include "ember/random.hpp"

#include <cmath>
#include <numbers>

namespace ember {

std::uint64_t Random::next_u64() {
  // SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter through a bijective mixer.
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Random::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::uint64_t Random::below(std::uint64_t bound) {
  // Rejection sampling: draws in the final partial stretch of 2^64 would bias the modulo.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint64_t draw;
  do draw = next_u64();
  while (draw >= limit);
  return draw % bound;
}

double Random::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  Random mixer(seed ^ (stream * 0xD1B54A32D192ED03ull));
  mixer.next_u64();
  return mixer.next_u64();
}

}  // namespace ember
