// A downstream program built against an installed Ember: the seed example on the CPU.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>

int main() {
  const double prediction = ember::demo::seed_example(ember::Device::cpu);
  std::printf("consumer: predict(5) = %.4f\n", prediction);
  return std::abs(prediction - 5.0) < 0.1 ? 0 : 1;
}
