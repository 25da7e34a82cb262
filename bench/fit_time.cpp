// The C++ side of bench/python_fit.py: Sequential::fit on rows read from raw float32 files, timed
// around fit alone, so that Python's cost is the difference between the two. A first, untimed fit
// starts the thread pool and touches the memory, as it does in a Python process that ran before.
//
//   ember_fit_time X.f32 Y.f32 ROWS FEATURES EPOCHS RUNS   ->   the seconds of each timed fit
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "ember/ember.hpp"

namespace {

ember::Matrix read_floats(const char* path, std::int64_t rows, std::int64_t cols) {
  ember::Matrix m(rows, cols);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(m.data()), static_cast<std::streamsize>(m.size() * sizeof(float)));
  if (!in) throw ember::InputError(std::string(path) + ": fewer than rows x columns float32 values");
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s X.f32 Y.f32 ROWS FEATURES EPOCHS RUNS\n", argv[0]);
    return 2;
  }
  try {
    const std::int64_t rows = std::atoll(argv[3]), features = std::atoll(argv[4]), epochs = std::atoll(argv[5]),
                       runs = std::atoll(argv[6]);
    const ember::Matrix x = read_floats(argv[1], rows, features), y = read_floats(argv[2], rows, 1);
    for (std::int64_t run = 0; run <= runs; ++run) {
      // The model bench/python_fit.py builds: its defaults are the Python API's.
      ember::Sequential model(
          {ember::Dense(64, ember::Activation::relu), ember::Dense(64, ember::Activation::relu), ember::Dense(1)});
      model.compile({.optimizer = ember::Adam{}, .loss = ember::MeanSquaredError{}, .device = ember::Device::cpu});
      const auto start = std::chrono::steady_clock::now();
      model.fit(x, y, {.epochs = epochs, .batch_size = 32});
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (run > 0) std::printf("%.6f\n", seconds);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
