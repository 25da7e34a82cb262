#include "targets.hpp"

#include <array>
#include <fstream>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"

namespace ember::fuzz {

bool csv_input(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return false;
  static constexpr char kDelimiters[] = {',', ';', '\t', '|', '"', '\n'};
  const unsigned control = bytes[0];
  const CsvOptions options{.delimiter = kDelimiters[control % 6]};
  const std::string text(reinterpret_cast<const char*>(bytes.data() + 1), bytes.size() - 1);
  try {
    const CsvTable table = parse_csv(text, "fuzz.csv", options);
    ColumnSpec spec{.targets = {table.columns.back().name}};
    spec.missing = std::array{Missing::error, Missing::drop, Missing::mean}[control / 6 % 3];
    if (control / 36 % 2 == 1 && table.columns.size() > 1) spec.ignore.push_back(table.columns.front().name);
    spec.bins = control / 72 % 2 == 1 ? 3 : 0;
    spec.steps = control >= 144;
    for (const CsvColumn& column : table.columns)
      if (control / 18 % 2 == 1 && column.type == ColumnType::text && column.name != spec.targets[0] &&
          (spec.ignore.empty() || column.name != spec.ignore[0]))
        spec.one_hot.push_back(column.name);
    // Learn the preprocessing, build the model, predict the table back: every encoding path.
    Sequential model{Dense(1)};
    model.compile({.device = Device::cpu});
    model.fit(table, spec, {.epochs = 0, .on_warning = [](const std::string&) {}});
    model.predict(table, {.on_warning = [](const std::string&) {}});
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
