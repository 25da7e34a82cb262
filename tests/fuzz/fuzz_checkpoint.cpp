// libFuzzer entry point: bytes as a checkpoint (targets.hpp).
#include <unistd.h>

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string scratch = "/tmp/ember-fuzz-" + std::to_string(getpid()) + ".safetensors";
  ember::fuzz::checkpoint_input({data, size}, scratch);
  return 0;
}
