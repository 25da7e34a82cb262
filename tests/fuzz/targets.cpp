#include "targets.hpp"

#include <fstream>

#include "ember/ember.hpp"

namespace ember::fuzz {

bool csv_input(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return false;
  static constexpr char kDelimiters[] = {',', ';', '\t', '|', '"', '\n'};
  const CsvOptions options{.delimiter = kDelimiters[bytes[0] % sizeof(kDelimiters)]};
  const std::string text(reinterpret_cast<const char*>(bytes.data() + 1), bytes.size() - 1);
  try {
    const CsvTable table = parse_csv(text, "fuzz.csv", options);
    split_features_targets(table, {table.columns.back().name});
    return true;
  } catch (const InputError&) {
    return false;
  }
}

bool checkpoint_input(std::span<const std::uint8_t> bytes, const std::string& scratch_path) {
  std::ofstream(scratch_path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  try {
    Sequential model = Sequential::load(scratch_path);
    CompileOptions options = model.compile_options();
    options.device = Device::cpu;  // the reader is under test, not the GPU
    model.compile(options);
    model.predict(Matrix(1, model.input_width(), 0.5f));
    return true;
  } catch (const InputError&) {
    return false;
  }
}

}  // namespace ember::fuzz
