// Bad files get a clear error, never a crash: deterministic mutations of valid CSV files and
// checkpoints go through the fuzz targets (fuzz/targets.hpp), which accept a load or an
// InputError and nothing else. CI also runs this under AddressSanitizer and UBSan, where an
// out-of-bounds read on a mutated input fails the run. A failing input is written to the work
// directory so that it can be replayed (e.g. by the libFuzzer driver, fuzz/README.md).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "fuzz/targets.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

/// Text that parsers trip over: delimiters, quotes, line ends, JSON punctuation, and numbers
/// that are out of range, special, or large enough to matter as a count.
const std::vector<std::string> kTokens = {"\"",   ",", ";", "\n", "\r\n", "+",    "-", "null",
                                          "true", "[", "]", "{",  "}",    "\\\"", " ", std::string(1, '\0')};
const std::vector<std::string> kNumbers = {
    "0",     "-0",       "-1",         "0.5",        "1e39",       "nan",        "inf",
    "65536", "99999999", "1000000000", "2147483647", "2147483648", "4294967296", "9999999999999999999"};

/// The [first, last) ranges of the digit runs in bytes.
std::vector<std::pair<std::size_t, std::size_t>> digit_runs(const Bytes& bytes) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  const auto digit = [&](std::size_t i) { return bytes[i] >= '0' && bytes[i] <= '9'; };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (!digit(i)) continue;
    std::size_t last = i;
    while (last < bytes.size() && digit(last)) ++last;
    runs.emplace_back(i, last);
    i = last;
  }
  return runs;
}

/// One random edit: flip a bit, erase a run of bytes, insert a token, copy a run elsewhere,
/// replace a number (any of the input's digit runs, equally likely) with another, or truncate.
void mutate(Bytes& bytes, Random& random) {
  const auto at = [&](std::size_t size) { return static_cast<std::size_t>(random.below(size + 1)); };
  const auto offset = [](std::size_t i) { return static_cast<std::ptrdiff_t>(i); };
  switch (random.below(6)) {
    case 0:
      if (!bytes.empty()) bytes[at(bytes.size() - 1)] ^= static_cast<std::uint8_t>(1u << random.below(8));
      break;
    case 1: {
      const std::size_t first = at(bytes.size());
      bytes.erase(bytes.begin() + offset(first),
                  bytes.begin() + offset(std::min(bytes.size(), first + 1 + random.below(16))));
      break;
    }
    case 2: {
      const std::string& token = kTokens[random.below(kTokens.size())];
      bytes.insert(bytes.begin() + offset(at(bytes.size())), token.begin(), token.end());
      break;
    }
    case 3: {
      const std::size_t first = at(bytes.size()),
                        length = std::min<std::size_t>(bytes.size() - first, random.below(32));
      const Bytes run(bytes.begin() + offset(first), bytes.begin() + offset(first + length));
      bytes.insert(bytes.begin() + offset(at(bytes.size())), run.begin(), run.end());
      break;
    }
    case 4: {
      const auto runs = digit_runs(bytes);
      if (runs.empty()) break;
      const auto [first, last] = runs[random.below(runs.size())];
      const std::string& number = kNumbers[random.below(kNumbers.size())];
      bytes.erase(bytes.begin() + offset(first), bytes.begin() + offset(last));
      bytes.insert(bytes.begin() + offset(first), number.begin(), number.end());
      break;
    }
    default:
      bytes.resize(at(bytes.size()));
      break;
  }
}

struct Outcomes {
  int loaded = 0;
  int rejected = 0;
};

/// 1 to 4 random edits.
Bytes mutant(const Bytes& seed, Random& random) {
  Bytes bytes = seed;
  for (std::uint64_t edit = 0, edits = 1 + random.below(4); edit < edits; ++edit) mutate(bytes, random);
  return bytes;
}

/// A checkpoint mutant: three times in four the edits fall in the JSON header and the 8-byte
/// length in front of it is updated (a file whose metadata, not its framing, is wrong), else
/// they fall anywhere.
Bytes checkpoint_mutant(const Bytes& seed, Random& random) {
  if (random.below(4) == 0) return mutant(seed, random);
  std::uint64_t length;
  std::memcpy(&length, seed.data(), sizeof(length));
  const auto header_end = seed.begin() + static_cast<std::ptrdiff_t>(sizeof(length) + length);
  const Bytes header = mutant(Bytes(seed.begin() + sizeof(length), header_end), random);
  length = header.size();
  Bytes bytes(sizeof(length));
  std::memcpy(bytes.data(), &length, sizeof(length));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), header_end, seed.end());
  return bytes;
}

/// Runs `rounds` mutants of every seed through target; stops at the first input that escapes
/// it, saving that input as `name`-failure.bin.
template <typename Mutant, typename Target>
Outcomes run_mutants(const std::vector<Bytes>& seeds, int rounds, const std::string& name, Mutant make_mutant,
                     Target target) {
  Outcomes outcomes;
  Random random(0x5eed);
  for (int round = 0; round < rounds; ++round) {
    for (const Bytes& seed : seeds) {
      const Bytes bytes = make_mutant(seed, random);
      try {
        (target(bytes) ? outcomes.loaded : outcomes.rejected)++;
      } catch (const std::exception& error) {
        const std::string saved = testing::work_path(name + "-failure.bin");
        std::ofstream(saved, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        ADD_FAILURE() << "round " << round << ": " << typeid(error).name() << ": " << error.what()
                      << "; input saved as " << saved;
        return outcomes;
      }
    }
  }
  std::printf("%s: %d mutants loaded, %d rejected\n", name.c_str(), outcomes.loaded, outcomes.rejected);
  return outcomes;
}

TEST(Robustness, MutatedCsvFilesLoadOrRaiseInputError) {
  // The first byte picks the delimiter (targets.hpp): 0 is ',', 1 is ';', 2 is tab.
  const std::vector<Bytes> seeds = {
      bytes_of(std::string(1, '\0') + "x1,x2,y\n1,2,3\n-4.5e-1,+5,6\n7,8,9\n"),
      bytes_of(std::string(1, '\0') + "a,\"b \"\"q\"\"\",\"c\nd\"\r\n1,2,3\r\n\r\n\"4\", 5 ,6e-1\n"),
      bytes_of(std::string(1, '\1') + "p;q\n0.25;1\n3;4\n"),
      bytes_of(std::string(1, '\2') + "u\tv\tw\n1\t2\t3\n"),
      // Ids, categories and gaps: one-hot text columns, the first column ignored, missing cells
      // filled with means (66) or dropped (60).
      bytes_of(std::string(1, '\x42') + "id,city,x,y\nc1,Paris,1,2\nc2,,NA,3\nc3,Lyon,2.5,4\nc4,Paris,,5\n"),
      bytes_of(std::string(1, '\x3c') + "id,city,x,y\nc1,Paris,1,2\nc2,,NA,3\nc3,Lyon,2.5,4\nc4,Paris,,5\n"),
      // The same with numbers in 3 bins (138 = 66 + 72).
      bytes_of(std::string(1, '\x8a') +
               "id,city,x,y\nc1,Paris,1,2\nc2,,NA,3\nc3,Lyon,2.5,4\nc4,Paris,,5\nc5,Nice,4,6\n"),
  };
  for (const Bytes& seed : seeds) EXPECT_TRUE(fuzz::csv_input(seed)) << std::string(seed.begin() + 1, seed.end());
  const Outcomes outcomes =
      run_mutants(seeds, 5000, "csv", mutant, [](const Bytes& bytes) { return fuzz::csv_input(bytes); });
  // Both outcomes occur, or the mutations are not exercising the reader.
  EXPECT_GT(outcomes.loaded, 1000);
  EXPECT_GT(outcomes.rejected, 2000);
}

TEST(Robustness, MutatedCheckpointsLoadOrRaiseInputError) {
  std::vector<Bytes> seeds;
  for (const int kind : {0, 1, 2, 3, 4}) {
    Sequential model({Dense(3, Activation::relu), Dense(2)}, 7);
    model.compile({.optimizer = kind == 3 ? Optimizer{AdamW{}} : Optimizer{SGD{.lr = 0.05f, .momentum = 0.9f}},
                   .device = Device::cpu});
    const Matrix x{{1, 2}, {3, 5}, {4, 1}}, y{{1, 0}, {0, 1}, {1, 1}};
    if (kind < 2 || kind == 3) {  // 3: AdamW's moments and step count
      model.fit(x, y, {.epochs = 2, .batch_size = 2, .normalize = kind == 1});
    } else {  // a categorical column and a filled gap (4: and bins): the preprocessing metadata
      const CsvTable table = parse_csv("city,x,y,z\nParis,1,1,0\nLyon,,0,1\nNice,4,1,1\nLyon,2,0,0\n", "seed.csv");
      model.fit(table,
                {.targets = {"y", "z"}, .one_hot = {"city"}, .missing = Missing::mean, .bins = kind == 4 ? 2u : 0u},
                {.epochs = 2});
    }
    const std::string path = testing::work_path("robustness-seed.safetensors");
    model.save(path);
    std::ifstream file(path, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  const std::string scratch = testing::work_path("robustness-mutant.safetensors");
  const Outcomes outcomes = run_mutants(seeds, 3000, "checkpoint", checkpoint_mutant,
                                        [&](const Bytes& bytes) { return fuzz::checkpoint_input(bytes, scratch); });
  EXPECT_GT(outcomes.loaded, 100);
  EXPECT_GT(outcomes.rejected, 2000);
}

}  // namespace
}  // namespace ember
