// Checkpoint loading rejects every inconsistent file with a clear InputError.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "ember/ember.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), {}};
}

void write_all(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

/// A valid checkpoint's bytes.
std::string valid_checkpoint() {
  Sequential model({Dense(4, Activation::relu), Dense(1)}, 3);
  model.compile({.device = Device::cpu});
  model.build(2);
  const std::string path = testing::work_path("valid.safetensors");
  model.save(path);
  return read_all(path);
}

std::string load_error(const std::string& bytes) {
  const std::string path = testing::work_path("broken.safetensors");
  write_all(path, bytes);
  try {
    Sequential::load(path);
  } catch (const InputError& error) {
    return error.what();
  }
  return "no error";
}

std::string with_header(std::string bytes, const std::string& from, const std::string& to) {
  std::uint64_t length;
  std::memcpy(&length, bytes.data(), 8);
  std::string header = bytes.substr(8, length);
  const auto at = header.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  header.replace(at, from.size(), to);
  if (header.size() < length) header.resize(length, ' ');  // data offsets count from the header's end
  const std::uint64_t new_length = header.size();
  std::string prefix(8, '\0');
  std::memcpy(prefix.data(), &new_length, 8);
  return prefix + header + bytes.substr(8 + length);
}

TEST(Checkpoint, HeaderLayout) {
  const std::string bytes = valid_checkpoint();
  std::uint64_t length;
  std::memcpy(&length, bytes.data(), 8);
  EXPECT_EQ(length % 8, 0u);
  const std::string header = bytes.substr(8, length);
  EXPECT_NE(header.find("\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[4,2]"), std::string::npos);
  EXPECT_NE(header.find("\"layers.1.bias\":{\"dtype\":\"F32\",\"shape\":[1]"), std::string::npos);
  const std::uint64_t parameters = 4 * 2 + 4 + 1 * 4 + 1;
  EXPECT_EQ(bytes.size(), 8 + length + 2 * parameters * sizeof(float));  // weights and velocity
}

TEST(Checkpoint, LoadingSetsUpNoBackend) {
  const std::string path = testing::work_path("loaded.safetensors");
  write_all(path, valid_checkpoint());
  Sequential model = Sequential::load(path);
  EXPECT_EQ(model.backend_name(), "");  // the device is chosen at the first fit or predict
  model.predict(Matrix(1, 2, 0.5f));
  EXPECT_NE(model.backend_name(), "");
}

TEST(Checkpoint, RejectsBadFiles) {
  const std::string good = valid_checkpoint();
  EXPECT_EQ(load_error(good), "no error");
  EXPECT_NE(load_error("abc").find("shorter than the 8-byte header length"), std::string::npos);
  std::string huge = good;
  const std::uint64_t too_long = 1ull << 40;
  std::memcpy(huge.data(), &too_long, 8);
  EXPECT_NE(load_error(huge).find("exceeds"), std::string::npos);
  std::string past_end = good;
  const std::uint64_t beyond = good.size();
  std::memcpy(past_end.data(), &beyond, 8);
  EXPECT_NE(load_error(past_end).find("runs past the end"), std::string::npos);
  EXPECT_NE(load_error(good.substr(0, good.size() - 4)).find("outside the"), std::string::npos);  // truncated data
  EXPECT_NE(load_error(with_header(good, "\"F32\"", "\"F16\"")).find("has dtype F16"), std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\"shape\":[4,2]", "\"shape\":[2,4]")).find("expected [4,2]"), std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\"layers.0.bias\"", "\"layers.9.bias\"")).find("'layers.0.bias' is missing"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "[32,48]", "[0,16]")).find("overlap"), std::string::npos);  // layers.0.bias over weight
  EXPECT_NE(load_error(with_header(good, "\"format\":\"ember\"", "\"format\":\"other\"")).find("format"), std::string::npos);
  EXPECT_NE(load_error(with_header(good, "{", "[")).find("bad header"), std::string::npos);
  // An architecture bigger than the file's data fails before anything is allocated for it.
  EXPECT_NE(load_error(with_header(good, "\\\"inputs\\\":2", "\\\"inputs\\\":2000000000"))
                .find("has 8000000009 parameters, more than the 136-byte data area holds"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"units\\\":4", "\\\"units\\\":3000000000")).find("1 to 2147483647 units"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"lr\\\":", "\\\"lr\\\":-")).find("its optimizer: learning rate must be > 0"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"epochs_completed\\\":0", "\\\"epochs_completed\\\":-1"))
                .find("epochs_completed is negative"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"momentum\\\":0.0", "\\\"momentum\\\":1e39"))
                .find("optimizer momentum 1e+39 is not a float32 number"),
            std::string::npos);
  try {
    Sequential::load(testing::work_path("does-not-exist.safetensors"));
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot open"), std::string::npos);
  }
}

}  // namespace
}  // namespace ember
