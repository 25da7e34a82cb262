// safetensors checkpoints (docs/formats.md): 8-byte little-endian header length N, N bytes of JSON
// header, then raw little-endian float32 data. Written through a temporary file and a rename.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>
#include <variant>

#include "atomic_file.hpp"
#include "ember/error.hpp"
#include "ember/model.hpp"
#include "layer_part.hpp"
#include "parameter_layout.hpp"
#include "preprocessing_ops.hpp"
#include "settings_json.hpp"

static_assert(std::endian::native == std::endian::little, "checkpoint I/O assumes a little-endian host");

namespace ember {

using Json = nlohmann::ordered_json;

namespace {

/// A preprocessing figure that a float32 input can hold.
bool finite_float32(double value) {
  return std::isfinite(value) && std::abs(value) <= std::numeric_limits<float>::max();
}

constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  // the safetensors reference limit
// Version 2 replaced "ember.columns" (feature and target names) with "ember.preprocessing" and named
// the optimizer state as PyTorch does ("optimizer.velocity" became "optimizer.momentum_buffer",
// written only with momentum). Version 3 gave each architecture entry its layer type ("dense",
// "dropout"). Version 4 added an ensemble's further members ("ember.members", tensors under
// "members.{k}."); a model of one member is still written as version 3, which earlier readers
// load. Version 5 added a blend's linear model ("ember.linear", tensors under "linear."), and is
// written only for a blend. Version 1 to 4 files still load.
constexpr int kFormatVersion = 5;
constexpr int kEnsembleVersion = 4;
constexpr int kOneMemberVersion = 3;

struct TensorEntry {
  std::string name;
  std::vector<std::int64_t> shape;
  const float* data;  // the values written
  std::int64_t count;
};

}  // namespace

class CheckpointIo {
 public:
  static std::vector<ParameterLayout::Tensor> ranges(const Sequential& model) {
    return ParameterLayout(model.layers_, model.input_width_).tensors();
  }

  static Json metadata(const Sequential& model) {
    Json layers = Json::array();
    for (const Layer& layer : model.layers_) layers.push_back(layer_part::to_json(layer));
    const Json architecture = {{"inputs", model.input_width_}, {"layers", layers}, {"seed", model.seed_}};
    const Scaler& s = model.scaler_;
    const Json scaler = {{"enabled", s.enabled}, {"fitted", model.scaler_fitted_},
                         {"x_mean", s.x.mean},   {"x_std", s.x.std},
                         {"y_mean", s.y.mean},   {"y_std", s.y.std}};
    Json optimizer = to_json(model.options_.optimizer);
    optimizer.update({{"step", model.optimizer_step_}, {"epochs_completed", model.epochs_completed_}});
    if (model.options_.clip_norm > 0.0f) optimizer["clip_norm"] = model.options_.clip_norm;
    Json features = Json::array();
    for (const FeatureColumn& feature : model.preprocessing_.features) {
      Json entry = {{"name", feature.name}};
      if (feature.one_hot) entry["one_hot"] = feature.categories;
      if (feature.embedded) entry["embedded"] = true;
      if (!feature.fill.empty()) entry["fill"] = feature.fill;
      if (feature.missing_indicator) entry["missing_indicator"] = true;
      if (!feature.bin_edges.empty()) entry["bin_edges"] = feature.bin_edges;
      if (feature.levels) entry["levels"] = true;
      features.push_back(std::move(entry));
    }
    Json preprocessing = {{"features", features},
                          {"targets", model.preprocessing_.targets},
                          {"missing", to_string(model.preprocessing_.missing)}};
    if (model.preprocessing_.bins > 0) preprocessing["bins"] = model.preprocessing_.bins;
    if (model.preprocessing_.steps) preprocessing["steps"] = true;
    if (model.preprocessing_.levels) preprocessing["levels"] = true;
    if (!model.preprocessing_.classes.empty()) preprocessing["classes"] = model.preprocessing_.classes;
    const Json loss = to_json(model.options_.loss);
    Json schedule = to_json(model.options_.schedule);
    schedule["state"] = schedule_state_json(model.schedule_state_);
    Json meta = {
        {"format", "ember"},
        {"ember.version", std::to_string(!model.linear_.empty()                                  ? kFormatVersion
                                         : model.members_.empty() && model.planned_members_ == 1 ? kOneMemberVersion
                                                                                                 : kEnsembleVersion)},
        {"ember.architecture", architecture.dump()},
        {"ember.scaler", scaler.dump()},
        {"ember.optimizer", optimizer.dump()},
        {"ember.loss", loss.dump()},
        {"ember.schedule", schedule.dump()},
        {"ember.preprocessing", preprocessing.dump()}};
    if (model.epoch_record_) meta["ember.figures"] = figures_json(*model.epoch_record_).dump();
    if (!model.members_.empty() || model.planned_members_ > 1) meta["ember.members"] = members_json(model).dump();
    if (!model.linear_.empty()) {
      const Sequential& linear = model.linear_.front();
      Json entry = network_json(linear);
      entry.update({{"share", model.linear_share_}, {"optimizer", to_json(linear.options_.optimizer)}});
      if (!linear.members_.empty() || linear.planned_members_ > 1) entry["members"] = members_json(linear);
      meta["ember.linear"] = entry.dump();
    }
    return meta;
  }

  /// A further network's seed and counts: an ensemble's member, or a blend's linear model.
  static Json network_json(const Sequential& network) {
    Json entry = {{"seed", network.seed_},
                  {"step", network.optimizer_step_},
                  {"epochs_completed", network.epochs_completed_},
                  {"schedule_state", schedule_state_json(network.schedule_state_)}};
    if (network.epoch_record_) entry["figures"] = figures_json(*network.epoch_record_);
    return entry;
  }

  /// "ember.members": the planned count and each further member's network_json.
  static Json members_json(const Sequential& model) {
    Json members = Json::array();
    for (const Sequential& member : model.members_) members.push_back(network_json(member));
    return {{"planned", model.planned_members_}, {"members", members}};
  }

  static Json schedule_state_json(const ScheduleState& state) {
    // JSON has no infinity: a best loss not seen yet is written as null.
    return {{"scale", state.scale},
            {"best", std::isfinite(state.best) ? Json(state.best) : Json(nullptr)},
            {"bad_epochs", state.bad_epochs}};
  }

  /// "ember.figures": the epoch record the model is at (what `ember inspect` shows). Optional in
  /// the format: a checkpoint without it (or from before it) loads without figures.
  static Json figures_json(const EpochRecord& r) {
    Json json = {{"epoch", r.epoch}};
    for (const auto& [name, value] : epoch_figures(r))
      if (std::isfinite(value)) json[name] = value;
    json["lr"] = r.lr;  // not the epoch's seconds: the same training writes the same bytes
    return json;
  }

  template <typename Fail>
  static EpochRecord figures_from_json(const Json& json, const Fail& fail) {
    EpochRecord r;
    r.loss = std::numeric_limits<double>::quiet_NaN();
    for (const auto& item : json.items()) {
      const std::string& name = item.key();
      const Json& value = item.value();
      if (name == "epoch")
        r.epoch = value.get<std::int64_t>();
      else if (name == "lr")
        r.lr = value.get<double>();
      else if (!set_epoch_figure(r, name, value.get<double>()))
        throw fail(fmt::format("its figures name an unknown figure '{}'", printable(name)));
    }
    return r;
  }

  /// Where the tensors of the ensemble's network k lie: "" for the model's own (k = 0), else
  /// "members.{k}.".
  static std::string member_prefix(std::size_t k) { return k == 0 ? "" : fmt::format("members.{}.", k); }
  /// A blend's linear model's: "linear.", then as the model's.
  static constexpr const char* kLinearPrefix = "linear.";

  /// A network's parameters, then its optimizer state, named after prefix.
  static void add_tensors(const Sequential& network, const std::string& prefix, std::vector<TensorEntry>& tensors) {
    for (const ParameterLayout::Tensor& range : ranges(network))
      tensors.push_back({prefix + range.name, range.shape, network.parameters_.data() + range.offset, range.count});
    const std::vector<std::string> state = optimizer_state_names(network.options_.optimizer);
    for (std::size_t b = 0; b < state.size(); ++b)
      for (const ParameterLayout::Tensor& range : ranges(network))
        if (!range.state)  // the optimizer keeps nothing for state, which it does not update
          tensors.push_back({prefix + "optimizer." + state[b] + "." + range.name, range.shape,
                             network.optimizer_state_.data() + b * network.parameters_.size() + range.offset,
                             range.count});
  }

  static void save(const Sequential& model, const std::string& path) {
    if (!model.built()) throw InputError("the model has no weights yet; fit or build it before save");
    std::vector<TensorEntry> tensors;
    add_tensors(model, "", tensors);
    for (std::size_t k = 0; k < model.members_.size(); ++k)
      add_tensors(model.members_[k], member_prefix(k + 1), tensors);
    for (const Sequential& linear : model.linear_) {
      add_tensors(linear, kLinearPrefix, tensors);
      for (std::size_t k = 0; k < linear.members_.size(); ++k)
        add_tensors(linear.members_[k], kLinearPrefix + member_prefix(k + 1), tensors);
    }
    Json header = {{"__metadata__", metadata(model)}};
    std::int64_t offset = 0;
    for (const TensorEntry& tensor : tensors) {
      const std::int64_t bytes = tensor.count * static_cast<std::int64_t>(sizeof(float));
      header[tensor.name] = {{"dtype", "F32"}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
    }
    std::string header_text = header.dump();
    header_text.append((8 - header_text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned

    AtomicFile file(path);
    const std::uint64_t length = header_text.size();
    file.write(&length, sizeof(length));
    file.write(header_text);
    for (const TensorEntry& tensor : tensors)
      file.write(tensor.data, static_cast<std::size_t>(tensor.count) * sizeof(float));
    file.commit();
  }

  /// The "ember.preprocessing" metadata, checked: unique feature names, categories unique and not
  /// empty, fill values (finite) as the policy has them: one per input under "mean", one per
  /// numeric feature under "fill", none otherwise; missing-value indicators only under "fill".
  template <typename Fail>
  static Preprocessing read_preprocessing(const Json& json, const Fail& fail) {
    Preprocessing p;
    const auto missing = json.at("missing").get<std::string>();
    if (missing != "fill" && missing != "error" && missing != "drop" && missing != "mean")
      throw fail(fmt::format("unknown missing-value policy '{}'", printable(missing)));
    p.missing = parse_missing(missing);
    p.targets = json.at("targets").get<std::vector<std::string>>();
    if (json.contains("bins")) p.bins = json.at("bins").get<std::size_t>();
    if (json.contains("steps")) p.steps = json.at("steps").get<bool>();
    if (json.contains("levels")) p.levels = json.at("levels").get<bool>();
    if (!bins_allowed(p.bins)) throw fail(fmt::format("its bins ({}) are not 0 or 2 to {}", p.bins, kMaxBins));
    if (json.contains("classes")) {
      p.classes = json.at("classes").get<std::vector<std::string>>();
      const std::set<std::string> unique(p.classes.begin(), p.classes.end());
      if (p.classes.size() < 2 || unique.size() != p.classes.size())
        throw fail("its classes are fewer than two or repeat one");
    }
    std::set<std::string> names;
    for (const Json& entry : json.at("features")) {
      FeatureColumn feature{.name = entry.at("name").get<std::string>()};
      if (!names.insert(feature.name).second)
        throw fail(fmt::format("feature '{}' appears twice", printable(feature.name)));
      if (entry.contains("one_hot")) {
        feature.one_hot = true;
        feature.categories = entry.at("one_hot").get<std::vector<std::string>>();
        const std::set<std::string> unique(feature.categories.begin(), feature.categories.end());
        if (feature.categories.empty() || unique.size() != feature.categories.size())
          throw fail(fmt::format("feature '{}' has no categories or repeats one", printable(feature.name)));
      }
      feature.embedded = entry.value("embedded", false);
      if (feature.embedded && !feature.one_hot)
        throw fail(fmt::format("feature '{}' is embedded but has no categories", printable(feature.name)));
      if (!feature.embedded && !p.features.empty() && p.features.back().embedded)
        throw fail(
            fmt::format("feature '{}' follows an embedded one; embedded features come last", printable(feature.name)));
      if (entry.contains("fill")) feature.fill = entry.at("fill").get<std::vector<double>>();
      if (entry.contains("missing_indicator")) feature.missing_indicator = entry.at("missing_indicator").get<bool>();
      if (entry.contains("bin_edges")) {
        feature.bin_edges = entry.at("bin_edges").get<std::vector<double>>();
        const bool increasing = std::adjacent_find(feature.bin_edges.begin(), feature.bin_edges.end(),
                                                   std::greater_equal<>()) == feature.bin_edges.end();
        const bool finite = std::all_of(feature.bin_edges.begin(), feature.bin_edges.end(), finite_float32);
        if ((p.bins == 0 && !p.steps) || feature.one_hot || feature.bin_edges.size() < 3 ||
            feature.bin_edges.size() > kMaxBins + 1 || !increasing || !finite)
          throw fail(
              fmt::format("feature '{}' has bin edges that are not 3 to {} increasing finite numbers of a "
                          "numeric feature of a model with bins or steps",
                          printable(feature.name), kMaxBins + 1));
      }
      feature.levels = entry.value("levels", false);
      if (feature.levels && (!p.levels || feature.bin_edges.empty() ||
                             !std::all_of(feature.bin_edges.begin(), feature.bin_edges.end(),
                                          [](double v) { return v == std::floor(v); })))
        throw fail(fmt::format("feature '{}' has levels but no whole-number bin edges, or the model no levels",
                               printable(feature.name)));
      const std::size_t inputs = feature.one_hot ? feature.categories.size() : 1;
      const std::size_t fills = feature.embedded             ? 0
                                : p.missing == Missing::mean ? inputs
                                : p.missing == Missing::fill ? (feature.one_hot ? 0 : 1)
                                                             : 0;
      if (feature.fill.size() != fills)
        throw fail(
            fmt::format("feature '{}' has {} fill values; \"missing\": \"mean\" needs one per input, \"fill\" "
                        "one per numeric feature, other policies none",
                        printable(feature.name), feature.fill.size()));
      if (feature.missing_indicator && (p.missing != Missing::fill || feature.embedded))
        throw fail(fmt::format("feature '{}' has a missing-value indicator, which only \"missing\": \"fill\" has",
                               printable(feature.name)));
      for (const double value : feature.fill)
        if (!finite_float32(value))
          throw fail(fmt::format("feature '{}' has a fill value that is not a finite float32 number",
                                 printable(feature.name)));
      p.features.push_back(std::move(feature));
    }
    return p;
  }

  static Sequential load(const std::string& path) {
    const auto fail = [&](const std::string& why) {
      return InputError(fmt::format("{}: not a valid Ember checkpoint: {}", path, why));
    };
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored))
      throw InputError(fmt::format("{}: is a directory; give a checkpoint file", path));
    std::ifstream file(path, std::ios::binary);
    if (!file)
      throw InputError(fmt::format("{}: cannot open the checkpoint ({}); check the path", path, std::strerror(errno)));
    file.seekg(0, std::ios::end);
    const auto file_size = static_cast<std::uint64_t>(file.tellg());
    file.seekg(0);
    std::uint64_t header_length = 0;
    if (file_size < sizeof(header_length)) throw fail("shorter than the 8-byte header length");
    file.read(reinterpret_cast<char*>(&header_length), sizeof(header_length));
    // A safetensors header is JSON: its first byte after the length is '{'. A text file (a CSV given
    // as the model) is named as such rather than by the length its first bytes would spell.
    if (file_size == sizeof(header_length) || file.peek() != '{') {
      std::string start(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, 24)), '\0');
      file.seekg(0);
      file.read(start.data(), static_cast<std::streamsize>(start.size()));
      const bool text = std::all_of(start.begin(), start.end(), [](char c) {
        return c == '\n' || c == '\r' || c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
      });
      throw InputError(
          fmt::format("{}: not an Ember checkpoint: {}; give the safetensors file that Sequential::save wrote", path,
                      text ? fmt::format("it starts with text ('{}...'), as a CSV file does",
                                         printable(start.substr(0, start.find_first_of("\r\n"))))
                           : std::string("it is not a safetensors file (no JSON header after the 8-byte length)")));
    }
    if (header_length > kMaxHeaderBytes)
      throw fail(fmt::format("header length {} exceeds {} bytes", header_length, kMaxHeaderBytes));
    if (header_length > file_size - sizeof(header_length))
      throw fail(fmt::format("header length {} runs past the end of the {}-byte file", header_length, file_size));
    std::string header_text(header_length, '\0');
    file.read(header_text.data(), static_cast<std::streamsize>(header_length));
    const std::uint64_t data_size = file_size - sizeof(header_length) - header_length;
    std::vector<char> data(data_size);
    file.read(data.data(), static_cast<std::streamsize>(data_size));
    if (!file) throw fail("the file could not be read to its end");

    // Checkpoints older than losses and schedules in the file: the defaults.
    Json header, architecture, scaler_json, optimizer, columns, figures, members, linear_json,
        loss_json = {{"type", MeanSquaredError::kName}}, schedule_json = {{"type", ConstantRate::kName}};
    int version = 0;
    try {
      header = Json::parse(header_text);
      const Json& meta = header.at("__metadata__");
      if (meta.value("format", "") != "ember") throw fail("its metadata has no \"format\": \"ember\"");
      const std::string version_text = meta.value("ember.version", "");
      if (version_text.size() == 1 && version_text[0] >= '1' && version_text[0] <= '0' + kFormatVersion)
        version = std::stoi(version_text);
      else
        throw fail(fmt::format("format version {} is not one this Ember reads (1 to {})",
                               version_text.empty() ? "?" : version_text, kFormatVersion));
      architecture = Json::parse(meta.at("ember.architecture").get<std::string>());
      scaler_json = Json::parse(meta.at("ember.scaler").get<std::string>());
      optimizer = Json::parse(meta.at("ember.optimizer").get<std::string>());
      columns = Json::parse(meta.at(version == 1 ? "ember.columns" : "ember.preprocessing").get<std::string>());
      if (version > 1) loss_json = Json::parse(meta.at("ember.loss").get<std::string>());
      if (version > 1) schedule_json = Json::parse(meta.at("ember.schedule").get<std::string>());
      if (meta.contains("ember.figures")) figures = Json::parse(meta.at("ember.figures").get<std::string>());
      if (version >= 4 && meta.contains("ember.members"))
        members = Json::parse(meta.at("ember.members").get<std::string>());
      if (version >= 5 && meta.contains("ember.linear"))
        linear_json = Json::parse(meta.at("ember.linear").get<std::string>());
    } catch (const Json::exception& error) {
      throw fail(fmt::format("bad header: {}", error.what()));
    }

    try {
      std::vector<Layer> layers;
      for (const Json& layer : architecture.at("layers")) layers.push_back(layer_part::from_json(layer));
      Sequential model(std::move(layers), architecture.at("seed").get<std::uint64_t>());
      // The weights must be in the file: check that before allocating what the header claims.
      const auto input_width = architecture.at("inputs").get<std::int64_t>();
      const std::int64_t parameters = model.parameter_count_for(input_width);
      if (static_cast<std::uint64_t>(parameters) > data_size / sizeof(float))
        throw fail(fmt::format("its architecture has {} parameters, more than the {}-byte data area holds", parameters,
                               data_size));
      model.build(input_width);
      CompileOptions options;
      try {
        options.optimizer = optimizer_from_json(optimizer);
        if (optimizer.contains("clip_norm")) options.clip_norm = settings_float(optimizer, "clip_norm");
        options.loss = loss_from_json(loss_json);
        options.schedule = schedule_from_json(schedule_json);
      } catch (const InputError& error) {
        throw fail(fmt::format("its optimizer, loss or schedule: {}", error.what()));
      }
      // Compiled with the stored optimizer (which sizes its state), but no backend yet: the first
      // fit or predict creates it, on the device the caller may still choose with compile.
      try {
        model.set_options(options);
      } catch (const InputError& error) {
        throw fail(fmt::format("its optimizer or loss: {}", error.what()));
      }
      // A network's counts: the model's own from "ember.optimizer" and "ember.schedule", each further
      // member's from its entry in "ember.members".
      const auto read_counts = [&](Sequential& network, const Json* schedule_state, std::int64_t step,
                                   std::int64_t epochs, const Json& record) {
        if (schedule_state != nullptr) {
          ScheduleState& kept = network.schedule_state_;
          kept.scale = static_cast<float>(schedule_state->at("scale").get<double>());
          kept.best = schedule_state->at("best").is_null() ? std::numeric_limits<double>::infinity()
                                                           : schedule_state->at("best").get<double>();
          kept.bad_epochs = schedule_state->at("bad_epochs").get<std::int64_t>();
          if (!(kept.scale >= 0.0f && kept.scale <= 1.0f) || kept.bad_epochs < 0 || std::isnan(kept.best))
            throw fail("its schedule's state is out of range");
        }
        if (step < 0 || step > std::numeric_limits<std::int32_t>::max())
          throw fail(fmt::format("its optimizer's step {} is outside 0 to 2^31 - 1", step));
        network.optimizer_step_ = static_cast<std::int32_t>(step);
        network.epochs_completed_ = epochs;
        if (network.epochs_completed_ < 0) throw fail("its optimizer's epochs_completed is negative");
        if (!record.is_null()) {
          network.epoch_record_ = figures_from_json(record, fail);
          if (network.epoch_record_->epoch != network.epochs_completed_)
            throw fail(fmt::format("its figures are of epoch {}, but the model is at epoch {}",
                                   network.epoch_record_->epoch, network.epochs_completed_));
        }
      };
      read_counts(model, schedule_json.contains("state") ? &schedule_json.at("state") : nullptr,
                  optimizer.value("step", std::int64_t{0}), optimizer.at("epochs_completed").get<std::int64_t>(),
                  figures);
      model.scaler_.enabled = scaler_json.at("enabled").get<bool>();
      model.scaler_fitted_ = scaler_json.at("fitted").get<bool>();
      model.scaler_.x.mean = scaler_json.at("x_mean").get<std::vector<double>>();
      model.scaler_.x.std = scaler_json.at("x_std").get<std::vector<double>>();
      model.scaler_.y.mean = scaler_json.at("y_mean").get<std::vector<double>>();
      model.scaler_.y.std = scaler_json.at("y_std").get<std::vector<double>>();
      const auto inputs = static_cast<std::size_t>(model.input_width_);
      const auto outputs = static_cast<std::size_t>(model.output_width());
      if (model.scaler_fitted_ && (model.scaler_.x.mean.size() != inputs || model.scaler_.x.std.size() != inputs ||
                                   model.scaler_.y.mean.size() != outputs || model.scaler_.y.std.size() != outputs))
        throw fail("the scaler's sizes do not match the architecture");
      for (const auto* stds : {&model.scaler_.x.std, &model.scaler_.y.std})
        if (std::any_of(stds->begin(), stds->end(), [](double s) { return !(s > 0.0); }))
          throw fail("a standard deviation of its scaler is not positive");
      if (!model.scaler_fitted_) {
        model.scaler_.x = ColumnStatistics::identity(model.input_width_);
        model.scaler_.y = ColumnStatistics::identity(model.output_width());
      }
      model.preprocessing_ = version == 1
                                 ? preprocessing::numeric(columns.at("features").get<std::vector<std::string>>(),
                                                          columns.at("targets").get<std::vector<std::string>>())
                                 : read_preprocessing(columns, fail);
      const Preprocessing& p = model.preprocessing_;
      if (!p.empty() && p.input_width() != model.input_width_)
        throw fail(fmt::format("its preprocessing gives {} inputs, but the architecture takes {}", p.input_width(),
                               model.input_width_));
      if (p.embedded_columns() > 0) {
        const layer_part::Indices indices = layer_part::indices(model.layers_.front(), model.input_width_);
        if (indices.count != p.embedded_columns() || indices.categories < p.embedding_categories())
          throw fail(fmt::format("its {} embedded columns need a first layer that embeds them in {} categories",
                                 p.embedded_columns(), p.embedding_categories()));
      }
      const bool classification = is_classification(options.loss);
      if (!classification && !p.targets.empty() && static_cast<std::int64_t>(p.targets.size()) != model.output_width())
        throw fail(fmt::format("it names {} target columns for {} outputs", p.targets.size(), model.output_width()));
      if (!p.classes.empty() &&
          (!classification || p.targets.size() > 1 ||
           outputs_for_classes(static_cast<std::int64_t>(p.classes.size())) != model.output_width()))
        throw fail(
            fmt::format("its {} classes do not fit its loss and {} outputs", p.classes.size(), model.output_width()));
      if (classification && p.classes.empty() && !p.targets.empty())
        throw fail("a classification model that names its target needs its classes");

      // Every tensor: F32, the expected shape, inside the data area, no two overlapping.
      std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
      const auto read_tensor = [&](const std::string& name, const std::vector<std::int64_t>& shape, float* out,
                                   bool required) {
        if (!header.contains(name)) {
          if (required) throw fail(fmt::format("tensor '{}' is missing", name));
          return;
        }
        const Json& entry = header.at(name);
        if (entry.at("dtype").get<std::string>() != "F32")
          throw fail(fmt::format("tensor '{}' has dtype {}, expected F32", name, entry.at("dtype").get<std::string>()));
        if (entry.at("shape").get<std::vector<std::int64_t>>() != shape)
          throw fail(fmt::format("tensor '{}' has shape {}, expected {} for this architecture", name,
                                 entry.at("shape").dump(), Json(shape).dump()));
        const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
        std::uint64_t count = 1;
        for (std::int64_t d : shape) count *= static_cast<std::uint64_t>(d);
        if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size ||
            offsets[1] - offsets[0] != count * sizeof(float))
          throw fail(fmt::format("tensor '{}' has data offsets {} outside the {}-byte data area or of the wrong size",
                                 name, entry.at("data_offsets").dump(), data_size));
        spans.emplace_back(offsets[0], offsets[1]);
        std::memcpy(out, data.data() + offsets[0], offsets[1] - offsets[0]);
      };
      // Version 1 called SGD's momentum buffer "velocity" and wrote it even without momentum.
      const auto read_network = [&](Sequential& network, const std::string& prefix) {
        const std::vector<std::string> state = optimizer_state_names(network.options_.optimizer);
        for (const ParameterLayout::Tensor& range : ranges(network)) {
          read_tensor(prefix + range.name, range.shape, network.parameters_.data() + range.offset, true);
          for (std::size_t b = 0; b < state.size() && !range.state; ++b)
            read_tensor(fmt::format("{}optimizer.{}.{}", prefix, version == 1 ? "velocity" : state[b], range.name),
                        range.shape, network.optimizer_state_.data() + b * network.parameters_.size() + range.offset,
                        version > 1);
          if (version == 1 && state.empty()) {
            std::vector<float> ignored(static_cast<std::size_t>(range.count));
            read_tensor("optimizer.velocity." + range.name, range.shape, ignored.data(), false);
          }
        }
      };
      // An ensemble's further members: copies of the network so far, with their own counts and
      // tensors.
      const auto read_members = [&](Sequential& network, const Json& entries, const std::string& prefix) {
        const Json& list = entries.at("members");
        network.planned_members_ = entries.at("planned").get<std::int64_t>();
        // The network is one of them: with its further members, at most the planned count.
        if (!list.is_array() || network.planned_members_ < 1 || network.planned_members_ > FitOptions::kMaxMembers ||
            static_cast<std::int64_t>(list.size()) + 1 > network.planned_members_)
          throw fail(fmt::format("its members are not a list of fewer than its planned count (1 to {})",
                                 FitOptions::kMaxMembers));
        for (std::size_t k = 0; k < list.size(); ++k) {
          const Json& entry = list[k];
          Sequential member = network;
          member.members_.clear();
          member.planned_members_ = 1;
          member.seed_ = entry.at("seed").get<std::uint64_t>();
          member.member_index_ = k + 1;
          read_counts(member, &entry.at("schedule_state"), entry.at("step").get<std::int64_t>(),
                      entry.at("epochs_completed").get<std::int64_t>(), entry.value("figures", Json()));
          read_network(member, prefix + member_prefix(k + 1));
          network.members_.push_back(std::move(member));
        }
      };
      read_network(model, "");
      if (!members.is_null()) read_members(model, members, "");
      // A blend's linear model: the model's last layer alone, with its own optimizer, counts,
      // tensors and members; the model's other settings, preprocessing and scaler.
      if (!linear_json.is_null()) {
        const double share = linear_json.at("share").get<double>();
        if (!(share > 0.0 && share < 1.0))
          throw fail(fmt::format("its linear model's share {} is not between 0 and 1", share));
        if (!std::holds_alternative<Dense>(model.layers_.back()) || model.layers_.size() < 2)
          throw fail("it blends a linear model with layers that do not end in a Dense layer");
        Sequential linear({model.layers_.back()}, linear_json.at("seed").get<std::uint64_t>());
        linear.build(model.input_width_);
        CompileOptions linear_options = options;
        try {
          linear_options.optimizer = optimizer_from_json(linear_json.at("optimizer"));
          linear.set_options(linear_options);
        } catch (const InputError& error) {
          throw fail(fmt::format("its linear model's optimizer: {}", error.what()));
        }
        linear.scaler_ = model.scaler_;
        linear.scaler_fitted_ = model.scaler_fitted_;
        linear.preprocessing_ = model.preprocessing_;
        read_counts(linear, &linear_json.at("schedule_state"), linear_json.at("step").get<std::int64_t>(),
                    linear_json.at("epochs_completed").get<std::int64_t>(), linear_json.value("figures", Json()));
        read_network(linear, kLinearPrefix);
        if (linear_json.contains("members")) read_members(linear, linear_json.at("members"), kLinearPrefix);
        model.linear_.push_back(std::move(linear));
        model.linear_share_ = share;
      }
      // Every member's values as its layer allows (a BatchNorm's running variance above 0, ...).
      for (std::size_t m = 0; m <= model.members_.size(); ++m) {
        const std::vector<float>& parameters = m == 0 ? model.parameters_ : model.members_[m - 1].parameters_;
        const ParameterLayout layout(model.layers_, model.input_width_);
        for (std::size_t l = 0; l < model.layers_.size(); ++l)
          for (const ParameterLayout::Tensor& range : layout.layers()[l].tensors) {
            const std::string name = range.name.substr(fmt::format("layers.{}.", l).size());
            try {
              layer_part::check_values(model.layers_[l], name,
                                       std::span<const float>(parameters.data() + range.offset, range.count));
            } catch (const InputError& error) {
              throw fail(fmt::format("{}layer {}'s {}: {}", m == 0 ? "" : fmt::format("member {}'s ", m), l, name,
                                     error.what()));
            }
          }
      }
      std::sort(spans.begin(), spans.end());
      for (std::size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second) throw fail("two tensors' data overlap");
      return model;
    } catch (const Json::exception& error) {
      throw fail(fmt::format("bad metadata: {}", error.what()));
    }
  }
};

void Sequential::save(const std::string& path) const {
  CheckpointIo::save(*this, path);
}
Sequential Sequential::load(const std::string& path) {
  return CheckpointIo::load(path);
}

}  // namespace ember
