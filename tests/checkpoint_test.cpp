// Checkpoint loading rejects every inconsistent file with a clear InputError.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), {}};
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A valid checkpoint's bytes (with SGD's momentum buffers).
std::string valid_checkpoint() {
  Sequential model({Dense(4, Activation::relu), Dense(1)}, 3);
  model.compile({.optimizer = SGD{.momentum = 0.9f}, .device = Device::cpu});
  model.build(2);
  const std::string path = testing::work_path("valid.safetensors");
  model.save(path);
  return read_all(path);
}

std::string load_error(const std::string& bytes) {
  // A file of each test's own: ctest runs the tests that share this helper in parallel processes.
  const std::string path = testing::work_path(
      std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-broken.safetensors");
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

/// A schedule's settings other than its defaults, each in its range: whole counts falling from 5
/// (a warm-up stays below its epochs), numbers 0.25.
std::vector<std::pair<std::string, double>> other_settings(const ScheduleKind& kind) {
  std::vector<std::pair<std::string, double>> settings;
  for (const std::string& setting : kind.settings) {
    const bool whole = std::find(kind.whole.begin(), kind.whole.end(), setting) != kind.whole.end();
    settings.emplace_back(setting, whole ? static_cast<double>(5 - settings.size()) : 0.25);
  }
  return settings;
}

TEST(Checkpoint, EveryRegisteredLossOptimizerAndScheduleTravelsByItsName) {
  // Each part is found by the name it gives, and a model compiled with it saves and loads it.
  const std::string path = testing::work_path("parts.safetensors");
  const auto round_trip = [&](const CompileOptions& options) {
    Sequential model({Dense(3, Activation::relu), Dense(2)}, 5);
    model.compile(options);
    model.build(4);
    model.save(path);
    return Sequential::load(path).compile_options();
  };
  const CompileOptions base{.device = Device::cpu};
  for (const testing::LossExample& example : testing::one_loss_of_each_kind()) {
    // Its registered example, whose settings are other than the defaults where it has any.
    const std::string name = loss_name(example.loss);
    EXPECT_EQ(loss_name(loss_named(name)), name);
    CompileOptions options = base;
    options.loss = example.loss;
    EXPECT_EQ(round_trip(options).loss, example.loss) << name;
  }
  for (const std::string& name : optimizer_names()) {
    Optimizer optimizer = optimizer_named(name);
    EXPECT_EQ(optimizer_name(optimizer), name);
    std::visit([](auto& o) { o.lr = 0.125f; }, optimizer);  // settings other than the defaults travel too
    CompileOptions options = base;
    options.optimizer = optimizer;
    EXPECT_EQ(round_trip(options).optimizer, optimizer) << name;
  }
  for (const ScheduleKind& kind : schedule_kinds()) {
    EXPECT_EQ(schedule_name(schedule_named(kind.name)), kind.name);
    const Schedule schedule = make_schedule(kind.name, other_settings(kind));
    CompileOptions options = base;
    options.schedule = schedule;
    EXPECT_EQ(round_trip(options).schedule, schedule) << kind.name;
  }
  EXPECT_EQ(schedule_names(), (std::vector<std::string>{"constant", "step", "cosine", "plateau"}));
  try {
    loss_named("hinge");
    ADD_FAILURE() << "no error";
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown loss 'hinge': use " + fmt::format("{}", fmt::join(loss_names(), ", ")));
  }
  EXPECT_THROW(schedule_named("linear"), InputError);
  EXPECT_THROW(optimizer_named("lbfgs"), InputError);
}

// What the CLI and Python build their flags and classes from: each kind's settings by name, made,
// read back and refused out of range, for every registered optimizer, loss and schedule.
TEST(Checkpoint, EveryPartIsMadeFromItsSettingsByName) {
  for (const OptimizerKind& kind : optimizer_kinds()) {
    SCOPED_TRACE(kind.name);
    EXPECT_EQ(make_optimizer(kind.name, {}), optimizer_named(kind.name));
    std::vector<std::pair<std::string, double>> settings;
    for (const std::string& setting : kind.settings) {
      const bool is_switch = std::find(kind.switches.begin(), kind.switches.end(), setting) != kind.switches.end();
      settings.emplace_back(setting, is_switch ? 1.0 : 0.25);  // in every number's range
    }
    const Optimizer made = make_optimizer(kind.name, settings);
    for (const auto& [setting, value] : settings) EXPECT_EQ(optimizer_setting(made, setting), value) << setting;
    EXPECT_EQ(describe(made).substr(0, kind.class_name.size() + 1), kind.class_name + "(");
    EXPECT_THROW(make_optimizer(kind.name, {{"lr", -1.0}}), SettingError);
    EXPECT_THROW(make_optimizer(kind.name, {{"no_such_setting", 1.0}}), InputError);
    EXPECT_THROW(optimizer_setting(made, "no_such_setting"), InputError);
  }
  EXPECT_THROW(make_optimizer("sgd", {{"nesterov", 1.0}}), SettingError);  // needs a momentum
  for (const LossKind& kind : loss_kinds()) {
    SCOPED_TRACE(kind.name);
    EXPECT_EQ(make_loss(kind.name, {}), loss_named(kind.name));
    EXPECT_EQ(parse_loss(kind.name), loss_named(kind.name));
    std::string spelled = kind.name;
    std::vector<std::pair<std::string, double>> settings;
    for (const std::string& setting : kind.settings) {
      settings.emplace_back(setting, 0.25);
      spelled += ":0.25";
    }
    const Loss made = make_loss(kind.name, settings);
    EXPECT_EQ(parse_loss(spelled), made);
    for (const auto& [setting, value] : settings) EXPECT_EQ(loss_setting(made, setting), value) << setting;
    EXPECT_EQ(describe(made).substr(0, kind.keras_name.size() + 1), kind.keras_name + "(");
    EXPECT_THROW(parse_loss(spelled + ":1"), InputError);
    EXPECT_THROW(make_loss(kind.name, {{"no_such_setting", 1.0}}), InputError);
    for (const std::string& setting : kind.settings)
      EXPECT_THROW(make_loss(kind.name, {{setting, -1.0}}), SettingError) << setting;
  }
  EXPECT_THROW(parse_loss("hinge"), InputError);
  for (const ScheduleKind& kind : schedule_kinds()) {
    SCOPED_TRACE(kind.name);
    EXPECT_EQ(make_schedule(kind.name, {}), schedule_named(kind.name));
    const auto settings = other_settings(kind);
    for (const std::string& setting : kind.settings)
      EXPECT_THROW(make_schedule(kind.name, {{setting, -1.0}}), SettingError) << setting;
    for (const std::string& count : kind.whole) EXPECT_THROW(make_schedule(kind.name, {{count, 2.5}}), InputError);
    const Schedule made = make_schedule(kind.name, settings);
    for (const auto& [setting, value] : settings) EXPECT_EQ(schedule_setting(made, setting), value) << setting;
    EXPECT_EQ(describe(made).substr(0, kind.class_name.size() + 1), kind.class_name + "(");
    EXPECT_THROW(make_schedule(kind.name, {{"no_such_setting", 1.0}}), InputError);
    EXPECT_THROW(schedule_setting(made, "no_such_setting"), InputError);
  }
  EXPECT_THROW(make_schedule("cosine", {{"epochs", 4}, {"warmup_epochs", 4}}), SettingError);
  EXPECT_EQ(describe(Schedule(StepDecay{})), "StepDecay(step_epochs=10, gamma=0.1)");  // float32 as written
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
  EXPECT_EQ(bytes.size(), 8 + length + 2 * parameters * sizeof(float));  // weights and momentum
  EXPECT_NE(header.find("\"optimizer.momentum_buffer.layers.1.bias\":{\"dtype\":\"F32\",\"shape\":[1]"),
            std::string::npos);
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
  EXPECT_NE(load_error(with_header(good, "\"shape\":[4,2]", "\"shape\":[2,4]")).find("expected [4,2]"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\"layers.0.bias\"", "\"layers.9.bias\"")).find("'layers.0.bias' is missing"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "[32,48]", "[0,16]")).find("overlap"),
            std::string::npos);  // layers.0.bias over weight
  EXPECT_NE(load_error(with_header(good, "\"format\":\"ember\"", "\"format\":\"other\"")).find("format"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "{", "[")).find("not a safetensors file"), std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\"__metadata__\"", "__metadata__")).find("bad header"), std::string::npos);
  EXPECT_NE(load_error("x0,x1,y\n1,2,3\n").find("it starts with text ('x0,x1,y...'), as a CSV file does"),
            std::string::npos);
  // An architecture bigger than the file's data fails before anything is allocated for it.
  EXPECT_NE(load_error(with_header(good, "\\\"inputs\\\":2", "\\\"inputs\\\":2000000000"))
                .find("has 8000000009 parameters, more than the 136-byte data area holds"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"units\\\":4", "\\\"units\\\":3000000000")).find("1 to 2147483647 units"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"lr\\\":", "\\\"lr\\\":-"))
                .find("its optimizer or loss: SGD::lr -0.01: must be a finite number > 0"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"epochs_completed\\\":0", "\\\"epochs_completed\\\":-1"))
                .find("epochs_completed is negative"),
            std::string::npos);
  EXPECT_NE(load_error(with_header(good, "\\\"momentum\\\":0.8999999761581421", "\\\"momentum\\\":1e39"))
                .find("its optimizer, loss or schedule: momentum 1e+39 is not a float32 number"),
            std::string::npos);
  try {
    Sequential::load(testing::work_path("does-not-exist.safetensors"));
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot open"), std::string::npos);
  }
}

/// A model with named columns as this version writes it, as version 2 wrote it (no layer types)
/// and as version 1 wrote it ("ember.columns": feature and target names, no preprocessing).
struct Versions {
  std::string v1, v2, current;
};
Versions named_checkpoint_all_versions() {
  Sequential model({Dense(4, Activation::relu), Dense(1)}, 3);
  model.compile({.device = Device::cpu});
  model.set_column_names({"a", "b"}, {"y"});
  model.fit(Matrix{{1, 2}, {3, 5}, {4, 1}}, Matrix{{1}, {0}, {2}}, {.epochs = 1});
  const std::string path = testing::work_path("named.safetensors");
  model.save(path);
  Versions versions;
  versions.current = read_all(path);
  std::string v2 = with_header(versions.current, R"("ember.version":"3")", R"("ember.version":"2")");
  v2 = with_header(v2, R"({\"type\":\"dense\",\"units\":4)", R"({\"units\":4)");
  versions.v2 = with_header(v2, R"({\"type\":\"dense\",\"units\":1)", R"({\"units\":1)");
  const std::string v1 = with_header(versions.v2, R"("ember.version":"2")", R"("ember.version":"1")");
  versions.v1 =
      with_header(v1,
                  R"("ember.preprocessing":"{\"features\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"targets\":[\"y\"],)"
                  R"(\"missing\":\"error\"}")",
                  R"("ember.columns":"{\"features\":[\"a\",\"b\"],\"targets\":[\"y\"]}")");
  return versions;
}

TEST(Checkpoint, EarlierVersionsStillLoad) {
  const Versions versions = named_checkpoint_all_versions();
  for (const std::string& old_bytes : {versions.v1, versions.v2}) {
    const std::string path = testing::work_path("old.safetensors");
    write_all(path, old_bytes);
    Sequential old = Sequential::load(path);
    EXPECT_EQ(old.layers(), (std::vector<Layer>{Dense(4, Activation::relu), Dense(1)}));
    EXPECT_EQ(old.feature_names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(old.target_names(), std::vector<std::string>{"y"});
    EXPECT_EQ(old.preprocessing().missing, Missing::error);
    // Columns are selected by name: "b" before "a" in the file changes nothing.
    const Matrix rows{{0.5f, -1.0f}, {2.0f, 0.25f}};
    EXPECT_EQ(old.predict(parse_csv("b,a,other\n-1,0.5,x\n0.25,2,y\n", "new.csv")), old.predict(rows));
    // Saved again, it is a file of this version with the same content.
    old.save(path);
    EXPECT_EQ(read_all(path), versions.current);
  }
}

TEST(Checkpoint, RejectsInconsistentPreprocessing) {
  const std::string good = named_checkpoint_all_versions().current;
  EXPECT_EQ(load_error(good), "no error");
  const auto error = [&](const std::string& from, const std::string& to) {
    return load_error(with_header(good, from, to));
  };
  EXPECT_NE(error(R"({\"name\":\"b\"})", R"({\"name\":\"a\"})").find("feature 'a' appears twice"), std::string::npos);
  EXPECT_NE(error(R"(,{\"name\":\"b\"})", "").find("its preprocessing gives 1 inputs, but the architecture takes 2"),
            std::string::npos);
  EXPECT_NE(error(R"({\"name\":\"b\"})", R"({\"name\":\"b\",\"one_hot\":[\"p\",\"q\"]})")
                .find("its preprocessing gives 3 inputs"),
            std::string::npos);
  EXPECT_NE(error(R"({\"name\":\"b\"})", R"({\"name\":\"b\",\"one_hot\":[\"p\",\"p\"]})")
                .find("feature 'b' has no categories or repeats one"),
            std::string::npos);
  EXPECT_NE(error(R"(\"missing\":\"error\")", R"(\"missing\":\"mean\")").find("feature 'a' has 0 fill values"),
            std::string::npos);
  EXPECT_NE(error(R"({\"name\":\"b\"})", R"({\"name\":\"b\",\"fill\":[1.5]})").find("feature 'b' has 1 fill values"),
            std::string::npos);
  EXPECT_NE(error(R"({\"name\":\"b\"})", R"({\"name\":\"b\",\"bin_edges\":[0,1,2]})")
                .find("feature 'b' has bin edges that are not 3 to 257 increasing"),
            std::string::npos);
  EXPECT_NE(error(R"(\"missing\":\"error\")", R"(\"missing\":\"error\",\"bins\":1)").find("its bins (1) are not"),
            std::string::npos);
  EXPECT_NE(error(R"(\"missing\":\"error\")", R"(\"missing\":\"guess\")").find("unknown missing-value policy 'guess'"),
            std::string::npos);
  EXPECT_NE(
      error(R"(\"targets\":[\"y\"])", R"(\"targets\":[\"y\",\"z\"])").find("it names 2 target columns for 1 outputs"),
      std::string::npos);
  EXPECT_NE(
      error(R"("ember.version":"3")", R"("ember.version":"6")").find("format version 6 is not one this Ember reads"),
      std::string::npos);
  EXPECT_NE(error(R"({\"type\":\"dense\",\"units\":4)", R"({\"type\":\"conv\",\"units\":4)")
                .find("unknown layer type 'conv'"),
            std::string::npos);
  EXPECT_NE(
      error(R"({\"type\":\"dense\",\"units\":4,\"activation\":\"relu\"})", R"({\"type\":\"dropout\",\"rate\":1.5})")
          .find("a Dropout layer's rate must be 0 to below 1"),
      std::string::npos);
  // A model that ends with Dropout is no model.
  EXPECT_NE(error(R"({\"type\":\"dense\",\"units\":1,\"activation\":\"linear\"})",
                  R"({\"type\":\"dense\",\"units\":1,\"activation\":\"linear\"},{\"type\":\"dropout\",\"rate\":0.5})")
                .find("ends with a Dense layer"),
            std::string::npos);
}

}  // namespace
}  // namespace ember
