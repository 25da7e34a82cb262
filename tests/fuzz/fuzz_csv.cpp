// libFuzzer entry point: bytes as a CSV file (targets.hpp).
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ember::fuzz::csv_input({data, size});
  return 0;
}
