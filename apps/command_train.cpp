// ember train: CSV -> table -> model -> fit -> checkpoint, history, plot, metrics.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <type_traits>
#include <variant>

#include "cli_common.hpp"
#include "ember/ember.hpp"
#include "loss_plot.hpp"
#include "progress.hpp"

namespace ember::cli {
namespace {

struct TrainArguments {
  std::string data, target, device = "auto", init, save, history, plot, metrics_out, val_data, weight;
  std::string layers = fmt::format("{0},{0}", TableDefaults::kHiddenWidth);
  std::string delimiter = ",", comment, matmul = "ember", precision = "fp32", seed = "0", ignore, one_hot, numeric,
              embed, missing = "fill", progress = "auto";
  std::string optimizer = SGD::kName, loss = MeanSquaredError::kName, schedule = ConstantRate::kName;
  std::int64_t epochs = TableDefaults::kEpochs, batch_size = TableDefaults::kBatchSize, step_epochs = 10,
               warmup_epochs = 0, plateau_patience = 10;
  std::int64_t early_stopping = 0, checkpoint_every = 0, members = 1;
  std::size_t bins = 0;
  double decay = 0.1, min_lr_scale = 0.0, min_delta = 0.0;
  bool no_restore_best = false;
  bool deterministic_reduce = false;
  bool shard_data = false;
  std::string comm = "auto";
  double lr = 0.01, momentum = 0.0, weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, alpha = 0.99,
         val_split = 0.0;
  double huber_delta = 1.0, clip_norm = 0.0, label_smoothing = 0.0;
  bool nesterov = false, no_shuffle = false, no_normalize = false, quiet = false, no_cuda_graph = false,
       val_last = false;
};

/// --layers: hidden layers as parse_layer spells them, comma-separated, or "none".
std::vector<Layer> parse_layers(const std::string& text, std::int64_t outputs, bool embedded_columns) {
  std::vector<Layer> layers;
  if (text != "none") {
    for (const std::string& part : split_list(text, "--layers")) try {
        layers.push_back(parse_layer(part));
      } catch (const InputError& error) {
        throw InputError(fmt::format("--layers {}: {}", printable(text), error.what()));
      }
  }
  layers.emplace_back(Dense(outputs));
  if (embedded_columns && !std::holds_alternative<Embedding>(layers.front()))
    layers.insert(layers.begin(), Embedding(Embedding::kFromTable, TableDefaults::kEmbeddingDim));
  return layers;
}

MatmulProvider parse_matmul(const std::string& text) {
  if (text == "ember") return MatmulProvider::ember;
  if (text == "cublas") return MatmulProvider::cublas;
  throw InputError(fmt::format("--matmul {}: use ember or cublas", printable(text)));
}

/// The flags that set an optimizer setting of their name (a number, or --nesterov's switch).
struct OptimizerSettingFlag {
  const char* flag;
  const char* setting;
  double TrainArguments::*number = nullptr;
  bool TrainArguments::*is_on = nullptr;
};
constexpr OptimizerSettingFlag kOptimizerSettingFlags[] = {
    {"--lr", "lr", &TrainArguments::lr},
    {"--momentum", "momentum", &TrainArguments::momentum},
    {"--nesterov", "nesterov", nullptr, &TrainArguments::nesterov},
    {"--weight-decay", "weight_decay", &TrainArguments::weight_decay},
    {"--beta1", "beta1", &TrainArguments::beta1},
    {"--beta2", "beta2", &TrainArguments::beta2},
    {"--eps", "eps", &TrainArguments::eps},
    {"--alpha", "alpha", &TrainArguments::alpha}};

/// "a, b or c".
std::string either(const std::vector<std::string>& names) {
  if (names.size() < 2) return fmt::format("{}", fmt::join(names, ""));
  return fmt::format("{} or {}", fmt::join(names.begin(), names.end() - 1, ", "), names.back());
}

/// The optimizer the flags ask for: --optimizer (else the checkpoint's under --init, else SGD) with
/// its defaults, or the checkpoint's settings for the same optimizer, and each flag given on top,
/// wherever the optimizer has the setting of its name. The library checks the values; its errors
/// name the flags.
Optimizer optimizer_from_flags(const TrainArguments& a, const CLI::App& command, const Optimizer* stored) {
  const auto given = [&](const char* flag) { return command.count(flag) > 0; };
  std::string kind = given("--optimizer") ? a.optimizer : (stored != nullptr ? optimizer_name(*stored) : SGD::kName);
  Optimizer optimizer;
  if (stored != nullptr && optimizer_name(*stored) == kind)
    optimizer = *stored;
  else
    try {
      optimizer = optimizer_named(kind);
    } catch (const InputError&) {
      throw InputError(
          fmt::format("--optimizer {}: use {}", printable(a.optimizer), fmt::join(optimizer_names(), ", ")));
    }
  const std::vector<OptimizerKind> kinds = optimizer_kinds();
  const std::vector<std::string>& names = kinds[optimizer.index()].settings;
  std::vector<std::pair<std::string, double>> settings;
  for (const std::string& name : names) settings.emplace_back(name, optimizer_setting(optimizer, name));
  for (const OptimizerSettingFlag& flag : kOptimizerSettingFlags) {
    if (!given(flag.flag)) continue;
    const auto at =
        std::find_if(settings.begin(), settings.end(), [&](const auto& s) { return s.first == flag.setting; });
    if (at == settings.end()) {
      std::vector<std::string> owners;
      for (const OptimizerKind& other : kinds)
        if (std::find(other.settings.begin(), other.settings.end(), flag.setting) != other.settings.end())
          owners.push_back(other.name);
      throw InputError(fmt::format("{} applies to --optimizer {}, not {}", flag.flag, either(owners), kind));
    }
    at->second = flag.number != nullptr ? to_float(a.*flag.number, flag.flag) : (a.*flag.is_on ? 1.0 : 0.0);
  }
  return make_optimizer(kind, settings);
}

/// CrossEntropy with --label-smoothing, else the checkpoint's smoothing under --init, else none.
CrossEntropy cross_entropy_from_flags(const TrainArguments& a, const CLI::App& command, const Loss* stored) {
  if (command.count("--label-smoothing") > 0)
    return {.label_smoothing = to_float(a.label_smoothing, "--label-smoothing")};
  if (const auto* cross_entropy = stored != nullptr ? std::get_if<CrossEntropy>(stored) : nullptr)
    return *cross_entropy;
  return {};
}

/// --loss's help: each kind's spelling and what it is for, from the library's list.
std::string loss_help() {
  std::string help = "The loss, NAME[:SETTING...]:";
  for (const LossKind& kind : loss_kinds()) {
    help += fmt::format("\n  {}: {}", kind.form, kind.meaning);
  }
  return help + "\n[default: crossentropy for a target of text labels or two values, else mse]";
}

/// The flags that set one loss setting each, beside --loss NAME:VALUE.
struct LossSettingFlag {
  const char* flag;
  const char* setting;
  double TrainArguments::*value;
};
constexpr LossSettingFlag kLossSettingFlags[] = {
    {"--huber-delta", "delta", &TrainArguments::huber_delta},
    {"--label-smoothing", "label_smoothing", &TrainArguments::label_smoothing}};

/// --loss NAME[:VALUE...] (else the checkpoint's under --init, else MSE), its settings from its
/// spelling, then a setting flag (--huber-delta, --label-smoothing), then the --init model's where
/// it names the same kind, else the defaults; the library checks them. Without --loss,
/// --label-smoothing waits for the task's inference.
Loss loss_from_flags(const TrainArguments& a, const CLI::App& command, const Loss* stored) {
  const bool given = command.count("--loss") > 0;
  Loss spelled = stored != nullptr ? *stored : Loss(MeanSquaredError{});
  std::size_t values = 0;  // settings the --loss text gives
  if (given) {
    try {
      spelled = parse_loss(a.loss);
    } catch (const InputError& error) {
      throw InputError(fmt::format("--loss {}", error.what()));
    }
    values = static_cast<std::size_t>(std::count(a.loss.begin(), a.loss.end(), ':'));
  }
  const std::string kind = loss_name(spelled);
  const LossKind described = loss_kinds()[spelled.index()];
  const bool same_as_stored = stored != nullptr && stored->index() == spelled.index();
  std::vector<std::pair<std::string, double>> settings;
  for (std::size_t i = 0; i < described.settings.size(); ++i) {
    const std::string& setting = described.settings[i];
    double value = loss_setting(spelled, setting);
    if (i >= values && same_as_stored) value = loss_setting(*stored, setting);
    for (const auto& [flag, flag_setting, flag_value] : kLossSettingFlags)
      if (setting == flag_setting && command.count(flag) > 0) {
        if (i < values)
          throw InputError(fmt::format("--loss {} and {} both give {}; give one", printable(a.loss), flag, setting));
        value = to_float(a.*flag_value, flag);
      }
    settings.emplace_back(setting, value);
  }
  for (const auto& [flag, flag_setting, flag_value] : kLossSettingFlags) {
    const bool applies =
        std::find(described.settings.begin(), described.settings.end(), flag_setting) != described.settings.end();
    // --label-smoothing without --loss may still meet a classifier: the task's inference decides.
    if (command.count(flag) > 0 && !applies &&
        (std::string(flag) != "--label-smoothing" || given || stored != nullptr)) {
      std::vector<std::string> owners;
      for (const LossKind& other : loss_kinds())
        if (std::find(other.settings.begin(), other.settings.end(), flag_setting) != other.settings.end())
          owners.push_back(other.name);
      throw InputError(fmt::format("{} applies to --loss {}, not {}", flag, fmt::join(owners, ", "), kind));
    }
  }
  Loss loss = make_loss(kind, settings);
  if (stored != nullptr && is_classification(*stored) != is_classification(loss))
    throw InputError(
        fmt::format("--loss {}: the model in --init was trained with {}; a {} model cannot become a {} one", kind,
                    loss_name(*stored), is_classification(*stored) ? "classification" : "regression",
                    is_classification(loss) ? "classification" : "regression"));
  check_loss(loss);
  return loss;
}

/// --schedule and its settings (else the checkpoint's under --init). A cosine decays over the
/// epochs up to --epochs.
Schedule schedule_from_flags(const TrainArguments& a, const CLI::App& command, const Schedule* stored) {
  const auto given = [&](const char* flag) { return command.count(flag) > 0; };
  if (stored != nullptr && !given("--schedule")) {
    for (const ScheduleFlag& entry : schedule_flags())
      if (given(entry.flag) && !entry.shared)
        throw InputError(
            fmt::format("{} needs --schedule with --init (the checkpoint's is kept otherwise)", entry.flag));
    return *stored;
  }
  const std::vector<std::string> names = schedule_names();
  if (std::find(names.begin(), names.end(), a.schedule) == names.end())
    throw InputError(fmt::format("--schedule {}: use {}", printable(a.schedule), fmt::join(names, ", ")));
  // Each flag of the schedule's settings, given or at its default (a cosine's epochs: --epochs).
  std::vector<std::pair<std::string, double>> settings;
  for (const ScheduleFlag& entry : schedule_flags()) {
    const auto setting = std::find_if(entry.settings.begin(), entry.settings.end(),
                                      [&](const auto& owner) { return owner.first == a.schedule; });
    if (setting != entry.settings.end())
      settings.emplace_back(setting->second, command.get_option(entry.flag)->as<double>());
    else if (given(entry.flag) && !entry.shared) {
      std::vector<std::string> owners;
      for (const auto& owner : entry.settings) owners.push_back(owner.first);
      throw InputError(fmt::format("{} applies to --schedule {}, not {}", entry.flag, fmt::join(owners, " or "),
                                   printable(a.schedule)));
    }
  }
  return make_schedule(a.schedule, settings);
}

/// Set by SIGINT and SIGTERM: the first asks training to stop at the end of its batch, a second
/// exits at once.
std::atomic<int> interrupts{0};
extern "C" void on_interrupt(int) {
  if (interrupts.fetch_add(1) >= 1) _exit(exit_interrupted);
}
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free counter");

void validate(const TrainArguments& a) {
  if (a.epochs < 0) throw InputError(fmt::format("--epochs {}: must be 0 or more", a.epochs));
  if (a.batch_size <= 0) throw InputError(fmt::format("--batch-size {}: must be 1 or more", a.batch_size));
  if (!(a.val_split >= 0 && a.val_split < 1))
    throw InputError(fmt::format("--val-split {}: must be in [0, 1)", a.val_split));
  // Every output is checked before the data is read: a failing write must not cost the training.
  if (!a.save.empty()) check_output_path(a.save, "--save");
  if (!a.history.empty()) check_output_path(a.history, "--history");
  if (!a.plot.empty()) check_output_path(a.plot, "--plot");
  if (!a.metrics_out.empty()) check_output_path(a.metrics_out, "--metrics-out");
  // Counts where 0 can mean "off" take it, as documented; below 0 is refused.
  if (a.early_stopping < 0)
    throw InputError(fmt::format("--early-stopping {}: must be 0 (off) or more", a.early_stopping));
  if (a.checkpoint_every < 0)
    throw InputError(fmt::format("--checkpoint-every {}: must be 0 (off) or more", a.checkpoint_every));
  if (a.checkpoint_every > 0 && a.save.empty())
    throw InputError("--checkpoint-every needs --save FILE: the file it writes every few epochs");
}

/// --val-split and --early-stopping as given, or the default for this many rows.
struct Validation {
  double split = 0;
  std::int64_t patience = 0;
  bool by_default = false;
};
Validation validation_for(const TrainArguments& a, const CLI::App& command, std::int64_t rows, bool sharded) {
  const bool split_given = command.count("--val-split") > 0, patience_given = command.count("--early-stopping") > 0;
  // Sharded ranks each see their own row count; the default must not differ between them.
  Validation v{.split = split_given ? a.val_split : 0, .patience = patience_given ? a.early_stopping : 0};
  if (!a.val_data.empty()) {
    if (split_given || a.val_last)
      throw InputError("--val-data FILE gives the rows to validate on; drop --val-split and --val-last");
    if (sharded) throw InputError("--val-data does not go with --shard-data; use --val-split on each rank's shard");
    v.patience = patience_given ? a.early_stopping : TableDefaults::kPatience;
  } else if (const TableDefaults d = table_defaults(rows); !split_given && !sharded && d.validation_split > 0) {
    v = {.split = d.validation_split, .patience = patience_given ? a.early_stopping : d.patience, .by_default = true};
  }
  if (v.patience == 0 && (command.count("--min-delta") > 0 || command.count("--no-restore-best") > 0))
    throw InputError(fmt::format(
        "--min-delta and --no-restore-best go with --early-stopping PATIENCE (1 or more); early stopping is on by "
        "default only for tables of {} rows or more without --val-split",
        TableDefaults::kHeldOutFrom));
  if (a.val_last && v.split == 0)
    throw InputError(fmt::format(
        "--val-last goes with --val-split FRACTION (above 0); a table of {} rows or more holds out {} by default",
        TableDefaults::kHeldOutFrom, TableDefaults::kValidationSplit));
  return v;
}

/// One row per epoch: the epoch, its figures (every record of a run holds the same ones), its
/// learning rate, seconds.
std::string history_csv(const History& history) {
  std::string text = "epoch";
  if (!history.epochs.empty())
    for (const auto& [name, value] : epoch_figures(history.epochs.front())) text += fmt::format(",{}", name);
  text += ",lr,seconds\n";
  for (const EpochRecord& r : history.epochs) {
    text += std::to_string(r.epoch);
    for (const auto& [name, value] : epoch_figures(r)) text += fmt::format(",{}", format_number(value));
    text += fmt::format(",{},{:.6f}\n", format_number(r.lr), r.seconds);
  }
  return text;
}

std::string plural(std::int64_t count, const char* noun) {
  return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

/// The columns to read and how to use them: from the flags, or under --init from the checkpoint
/// with the flags given on top (the library refuses what contradicts the checkpoint).
ColumnSpec column_spec(const TrainArguments& a, const CLI::App& command, const Sequential* resumed) {
  ColumnSpec spec = resumed != nullptr ? resumed->preprocessing().spec() : ColumnSpec{};
  spec.targets = split_list(a.target, "--target");
  if (resumed == nullptr || command.count("--ignore") > 0)
    spec.ignore = a.ignore.empty() ? std::vector<std::string>{} : split_list(a.ignore, "--ignore");
  if (resumed == nullptr || command.count("--one-hot") > 0)
    spec.one_hot = a.one_hot.empty() ? std::vector<std::string>{} : split_list(a.one_hot, "--one-hot");
  if (resumed == nullptr || command.count("--numeric") > 0)
    spec.numeric = a.numeric.empty() ? std::vector<std::string>{} : split_list(a.numeric, "--numeric");
  if (resumed == nullptr || command.count("--embed") > 0)
    spec.embed = a.embed.empty() ? std::vector<std::string>{} : split_list(a.embed, "--embed");
  if (resumed == nullptr || command.count("--missing") > 0) spec.missing = parse_missing(a.missing);
  if (resumed == nullptr || command.count("--bins") > 0) spec.bins = a.bins;
  // The weight column is no feature.
  if (!a.weight.empty()) {
    if (std::find(spec.targets.begin(), spec.targets.end(), a.weight) != spec.targets.end())
      throw InputError(fmt::format("--weight {} is a --target; weights are a column of their own", a.weight));
    if (std::find(spec.ignore.begin(), spec.ignore.end(), a.weight) == spec.ignore.end())
      spec.ignore.push_back(a.weight);
  }
  return spec;
}

/// The --weight column's numbers: a finite weight of 0 or more on every row.
std::vector<float> row_weights(const CsvTable& table, const std::string& name) {
  const std::int64_t c = table.column_index(name, " for --weight");
  const CsvColumn& column = table.columns[static_cast<std::size_t>(c)];
  std::vector<float> weights;
  weights.reserve(static_cast<std::size_t>(table.rows()));
  for (std::int64_t r = 0; r < table.rows(); ++r) {
    if (column.missing(r))
      throw InputError(
          fmt::format("{}: no weight; give every row one (0 leaves a row out of training)", table.where(r, c)));
    // A column of text has a cell that is no number; others may be.
    const std::string cell = column.cell(r);
    char* end = nullptr;
    const float weight = column.type == ColumnType::number ? column.numbers[static_cast<std::size_t>(r)]
                                                           : std::strtof(cell.c_str(), &end);
    if ((end != nullptr && (end == cell.c_str() || *end != '\0')) || !(weight >= 0.0f && std::isfinite(weight)))
      throw InputError(fmt::format("{}: the weight '{}' is not a number of 0 or more (--weight)", table.where(r, c),
                                   printable(cell)));
    weights.push_back(weight);
  }
  return weights;
}

void run_train(const TrainArguments& a, const CLI::App& command) {
  validate(a);
  // Under mpirun or srun every rank trains its slice of each batch; rank 0 alone prints and writes.
  const std::shared_ptr<Communicator> world = distributed::world();
  const bool lead = world->rank() == 0, quiet = a.quiet || !lead;
  const Device device = parse_device_flag(a.device);
  const std::uint64_t seed = parse_seed(a.seed);
  const char delimiter = parse_delimiter(a.delimiter), comment = parse_comment(a.comment);
  std::optional<Sequential> resumed;
  if (!a.init.empty()) resumed.emplace(Sequential::load(a.init));
  // An interrupted ensemble's run trains the members it lacks when repeated.
  const std::int64_t resumed_members = resumed ? resumed->planned_member_count() : 0;
  const bool resumed_model = resumed.has_value();
  if (resumed && command.count("--members") > 0 && a.members < resumed->member_count())
    throw InputError(
        fmt::format("--members {}: the model in --init {} has {} members; a run trains them all and "
                    "drops none",
                    a.members, a.init, resumed->member_count()));
  Optimizer optimizer = optimizer_from_flags(a, command, resumed ? &resumed->compile_options().optimizer : nullptr);
  Loss loss = loss_from_flags(a, command, resumed ? &resumed->compile_options().loss : nullptr);
  bool classification = is_classification(loss);
  ColumnSpec spec = column_spec(a, command, resumed ? &*resumed : nullptr);
  // Only the columns the model uses are read: ignored ones may hold anything. Class labels are
  // read as text, so "01" and "1" stay two labels as they were written.
  CsvOptions reading = reading_options(spec, classification, delimiter);
  if (resumed && !resumed->preprocessing().empty()) reading = resumed->preprocessing().csv_options(delimiter, true);
  reading.comment = comment;
  const bool sharded = a.shard_data && world->size() > 1;
  if (sharded) {
    if (a.data == "-") throw InputError("--shard-data reads each rank's part of a file, not standard input");
    reading.shard = world->rank();
    reading.shards = world->size();
  }
  // --val-data is read as the model's columns; --data also with the weight column.
  const CsvOptions validation_reading_base = reading;
  if (!a.weight.empty()) {
    std::erase(reading.skip_columns, a.weight);
    if (!reading.columns.empty()) reading.columns.push_back(a.weight);
  }
  const CsvTable table = read_data(a.data, reading);
  // Sharded ranks each see their own row count; the default must not differ between them.
  // The defaults by the table's size are the library's, which Python's estimators share.
  const TableDefaults defaults = table_defaults(table.rows());
  const bool columns_by_default = !resumed && command.count("--bins") == 0;
  const bool binned_by_default = columns_by_default && !sharded && defaults.bins > 0;
  if (binned_by_default) spec.bins = defaults.bins;
  // Steps do not depend on the row count: every rank takes them.
  const bool stepped_by_default = columns_by_default && !binned_by_default && defaults.steps;
  if (columns_by_default) {
    spec.steps = defaults.steps;
    spec.levels = defaults.levels;
  }
  // SGD's momentum and the clipping by the table's size, for a new model (not under --shard-data,
  // whose ranks see their own row counts).
  const bool optimizer_by_default = !resumed && !sharded;
  SGD* const sgd = std::get_if<SGD>(&optimizer);
  const bool momentum_by_default = sgd != nullptr && optimizer_by_default && command.count("--momentum") == 0;
  if (momentum_by_default) sgd->momentum = static_cast<float>(defaults.momentum);
  const bool clipped_by_default = optimizer_by_default && command.count("--clip-norm") == 0;
  const std::vector<float> weights = a.weight.empty() ? std::vector<float>{} : row_weights(table, a.weight);
  // Without --loss, a target of text labels or of two values trains a classifier.
  if (!resumed && command.count("--loss") == 0)
    if (const InferredTask task = infer_task(table, spec.targets); task.classification) {
      loss = cross_entropy_from_flags(a, command, nullptr);
      check_loss(loss);
      classification = true;
      if (!quiet)
        std::fprintf(stderr,
                     "note: %s: training a classifier (--loss crossentropy); to train a regression, use --loss "
                     "mse\n",
                     task.reason.c_str());
    }
  if (command.count("--label-smoothing") > 0 && !classification)
    throw InputError(
        "--label-smoothing applies to classification (--loss crossentropy); this target trains a "
        "regression");

  std::vector<std::string> classes;
  if (classification)
    classes = resumed ? resumed->classes() : sharded ? class_labels(table, spec, *world) : class_labels(table, spec);
  const std::int64_t outputs = classification ? outputs_for_classes(static_cast<std::int64_t>(classes.size()))
                                              : static_cast<std::int64_t>(spec.targets.size());
  Sequential model =
      resumed ? std::move(*resumed) : Sequential(parse_layers(a.layers, outputs, !spec.embed.empty()), seed);
  CompileOptions options = model.compile_options();
  options.optimizer = optimizer;
  options.loss = loss;
  options.schedule = schedule_from_flags(a, command, a.init.empty() ? nullptr : &model.compile_options().schedule);
  if (command.count("--clip-norm") > 0) {
    if (!(a.clip_norm >= 0.0)) throw InputError("--clip-norm must be 0 (off) or a positive number");
    options.clip_norm = to_float(a.clip_norm, "--clip-norm");
  } else if (clipped_by_default) {
    options.clip_norm = defaults.clip_norm;
  }
  options.device = device;
  options.backend = {
      .matmul = parse_matmul(a.matmul), .cuda_graph = !a.no_cuda_graph, .precision = parse_precision(a.precision)};
  // An embedding sized by the table compares as the one --init's first training sized.
  const auto as_stored = [&](std::vector<Layer> layers) {
    const auto* parsed = std::get_if<Embedding>(&layers.front());
    const auto* stored = std::get_if<Embedding>(&model.layers().front());
    if (parsed != nullptr && stored != nullptr && parsed->input_dim == Embedding::kFromTable &&
        parsed->output_dim == stored->output_dim)
      layers.front() = *stored;
    return layers;
  };
  if (!a.init.empty() && command.count("--layers") > 0 &&
      !(as_stored(parse_layers(a.layers, model.output_width(), !spec.embed.empty())) == model.layers()))
    throw InputError(fmt::format("--layers {} differs from the architecture stored in --init {}; drop --layers",
                                 printable(a.layers), a.init));
  model.compile(options);
  if (!model.backend_notice().empty() && !quiet) std::fprintf(stderr, "note: %s\n", model.backend_notice().c_str());

  // --epochs is the epoch to train up to (Keras' initial_epoch convention), so that repeating an
  // interrupted command with --init finishes the same run.
  const std::int64_t done = model.epochs_completed(), remaining = std::max<std::int64_t>(0, a.epochs - done);
  // Sharded ranks each see their own row count; the default must not differ between them.
  const std::int64_t members = command.count("--members") > 0 ? a.members
                               : resumed                      ? resumed_members
                               : sharded                      ? 1
                                                              : defaults.members;
  const bool lacks_members = model.member_count() < members;
  if (!a.init.empty() && !quiet) {
    if (remaining == 0 && !lacks_members)
      std::fprintf(stderr,
                   "note: the model in --init is at epoch %lld, already at --epochs %lld: nothing to train; "
                   "--epochs is the epoch to train up to, so raise it to train on\n",
                   static_cast<long long>(done), static_cast<long long>(a.epochs));
    else if (done > 0)
      std::printf("Resuming at epoch %lld: %s to go, up to epoch %lld\n", static_cast<long long>(done),
                  plural(remaining, "epoch").c_str(), static_cast<long long>(a.epochs));
    if (lacks_members)
      std::printf("The model has %lld of %lld members: the other %lld train after it, up to epoch %lld\n",
                  static_cast<long long>(model.member_count()), static_cast<long long>(members),
                  static_cast<long long>(members - model.member_count()), static_cast<long long>(a.epochs));
  }
  const Validation validation = validation_for(a, command, table.rows(), sharded);
  if (validation.by_default && !quiet)
    std::fprintf(stderr,
                 "note: holding out %g%% of the %lld rows for validation%s and stopping after %lld epochs without a "
                 "lower val_loss (the model keeps its best epoch); --val-split 0 trains on every row\n",
                 100 * validation.split, static_cast<long long>(table.rows()),
                 members > 1 ? " (other rows for each network)" : "", static_cast<long long>(validation.patience));
  // What the table's size set of the optimizer's settings, and the flags that undo it.
  std::vector<std::string> set_by_size, undo;
  if (momentum_by_default && defaults.momentum > 0) {
    set_by_size.push_back(fmt::format("SGD takes momentum {}", defaults.momentum));
    undo.emplace_back("--momentum 0");
  }
  if (clipped_by_default && defaults.clip_norm > 0) {
    set_by_size.push_back(fmt::format("the gradients are clipped to norm {}", defaults.clip_norm));
    undo.emplace_back("--clip-norm 0");
  }
  if (!set_by_size.empty() && !quiet)
    std::fprintf(
        stderr, "note: %s, as for every table of %lld rows or more; %s %s\n",
        fmt::format("{}", fmt::join(set_by_size, " and ")).c_str(), static_cast<long long>(TableDefaults::kHeldOutFrom),
        fmt::format("{}", fmt::join(undo, " and ")).c_str(), undo.size() > 1 ? "turn them off" : "turns it off");
  if (binned_by_default && !quiet)
    std::fprintf(stderr,
                 "note: each numeric column also gets up to %zu bins between its quantiles (whole numbers of up to "
                 "%zu values: one between each two values), as for every table of %lld rows or more; --bins 0 leaves "
                 "them out\n",
                 TableDefaults::kBins, kMaxBins + 1, static_cast<long long>(TableDefaults::kBinnedFrom));
  Progress progress(done + 1, remaining, quiet ? ProgressMode::none : parse_progress(a.progress, *world));
  FitOptions fit;
  fit.epochs = remaining;
  fit.batch_size = a.batch_size;
  fit.validation_split = validation.split;
  fit.validation_rows = a.val_last ? ValidationRows::last : ValidationRows::random;
  std::optional<CsvTable> validation_table;
  if (!a.val_data.empty()) {
    CsvOptions validation_reading = validation_reading_base;
    validation_reading.shard = 0;
    validation_reading.shards = 1;
    validation_table = read_data(a.val_data, validation_reading);
    fit.validation_data = ValidationData{.table = &*validation_table};
  }
  fit.sample_weight = weights;
  fit.shuffle = !a.no_shuffle;
  fit.normalize = !a.no_normalize;
  if (validation.patience > 0)
    fit.early_stopping =
        EarlyStopping{.patience = validation.patience, .min_delta = a.min_delta, .restore_best = !a.no_restore_best};
  fit.checkpoint_every = a.checkpoint_every;
  fit.checkpoint_path = a.save;
  fit.communicator = world;
  fit.deterministic_reduction = a.deterministic_reduce;
  fit.sharded_data = sharded;
  fit.gradient_sum = parse_comm(a.comm);
  fit.members = members;
  // The default layers are measured against a linear model on the same validation rows.
  fit.compare_linear = command.count("--layers") == 0 && !resumed_model;
  std::stop_source stop;
  fit.stop = stop.get_token();
  TrainingSummary summary;
  fit.on_train_begin = [&](const TrainingSummary& s) {
    // A further network, or the linear model compared with the layers: a line of its own.
    if (s.member > 0 || s.linear) {
      progress.restart(s.epochs_before + 1, s.epochs);
      if (quiet) return;
      if (s.linear)
        std::printf("%s%s\n", model.linear_share() > 0.0 ? "The blend's linear model" : "Linear model, to compare",
                    s.members > 1 ? fmt::format(": member {} of {}", s.member + 1, s.members).c_str() : "");
      else
        std::printf("Member %lld of %lld (seed %llu)\n", static_cast<long long>(s.member + 1),
                    static_cast<long long>(s.members),
                    static_cast<unsigned long long>(model.member_seed(0) + s.member));
      return;
    }
    summary = s;
    if (quiet) return;
    if (s.members > 1 && !resumed_model && command.count("--members") == 0)
      std::fprintf(stderr,
                   "note: training %lld networks from seeds %llu to %llu and averaging their predictions, as for "
                   "every table of this size (%lld / rows of them, 1 to %lld); --members 1 trains one\n",
                   static_cast<long long>(s.members), static_cast<unsigned long long>(seed),
                   static_cast<unsigned long long>(seed + static_cast<std::uint64_t>(s.members) - 1),
                   static_cast<long long>(TableDefaults::kMemberRows), static_cast<long long>(TableDefaults::kMembers));
    if (fit.compare_linear && s.validation_rows > 0)
      std::fprintf(stderr,
                   "note: a linear model of the same inputs then trains on the same rows (with plain SGD), and the "
                   "layers, the linear model or, where they validate alike, a blend of the two is kept, by the lowest "
                   "mean val_loss; --layers %lld,%lld keeps these layers\n",
                   static_cast<long long>(TableDefaults::kHiddenWidth),
                   static_cast<long long>(TableDefaults::kHiddenWidth));
    for (const FeatureColumn& feature : model.preprocessing().features)
      if ((stepped_by_default && !feature.bin_edges.empty()) || feature.levels)
        std::fprintf(stderr,
                     "note: column '%s' holds %zu whole numbers, read as codes: a bin between each two%s, that the "
                     "network can tell each apart; --bins 0 leaves them out\n",
                     printable(feature.name).c_str(), feature.bin_edges.size(),
                     feature.levels ? " and an indicator for each" : "");
    const auto features = static_cast<std::int64_t>(model.preprocessing().features.size());
    std::string rows = plural(s.training_rows, "training row");
    if (s.validation_rows > 0)
      rows += a.val_data.empty() ? fmt::format(", {} held out for validation", s.validation_rows)
                                 : fmt::format(", {} to validate on from {}", s.validation_rows, a.val_data);
    if (s.dropped_rows > 0) rows += fmt::format(", {} dropped for missing values", s.dropped_rows);
    std::string inputs = plural(features, "feature");
    if (s.inputs != features) inputs += fmt::format(" ({} inputs)", s.inputs);
    const std::string targets =
        classification ? fmt::format("target '{}' with {} classes", model.target_names().at(0), classes.size())
                       : plural(s.outputs, "target");
    std::printf("Training on %s: %s; %s, %s, %s\n", s.backend.c_str(), rows.c_str(), inputs.c_str(), targets.c_str(),
                plural(s.parameters, "parameter").c_str());
    if (!s.data_parallel.empty()) std::printf("Data parallel: %s\n", s.data_parallel.c_str());
  };
  fit.on_batch = [&](std::int64_t b, std::int64_t n) {
    progress.on_batch(b, n);
    if (interrupts.load() > 0) stop.request_stop();
  };
  fit.on_epoch_end = [&](const EpochRecord& r) { progress.on_epoch_end(r); };
  fit.on_warning = [&](const std::string& message) {
    if (lead) std::fprintf(stderr, "warning: %s: %s\n", table.path.c_str(), in_flags(message).c_str());
  };
  // Ctrl-C or SIGTERM: the epochs completed so far are kept and written below.
  interrupts = 0;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  // DivergenceError leaves every output untouched.
  const History history = model.fit(table, spec, fit);
  // Every rank stops at the batch where any rank was interrupted.
  const bool interrupted = interrupts.load() > 0 || history.stopped == "stop requested";
  // The figures reported: those of the epoch the model ends at (the best one with early stopping).
  const EpochRecord* reported = history.epochs.empty() ? nullptr : &history.epochs.back();
  for (const EpochRecord& r : history.epochs)
    if (r.epoch == model.epochs_completed()) reported = &r;

  double seconds = 0;
  for (const EpochRecord& r : history.epochs) seconds += r.seconds;
  double member_seconds = 0;
  std::string member_epochs;
  for (const History& member : history.members) {
    for (const EpochRecord& r : member.epochs) member_seconds += r.seconds;
    member_epochs += fmt::format("{}{}", member_epochs.empty() ? "" : ", ", member.epochs.size());
  }
  if (!quiet && reported != nullptr) {
    std::string figures;
    for (const auto& [name, value] : epoch_figures(*reported))
      figures += fmt::format("{}{} {:.6g}", figures.empty() ? "" : ", ", name, value);
    std::printf("%s %s in %s%s; epoch %lld: %s\n", history.members.empty() ? "Trained" : "Member 1: trained",
                plural(static_cast<std::int64_t>(history.epochs.size()), "epoch").c_str(),
                format_seconds(seconds).c_str(),
                history.stopped.empty() ? "" : fmt::format(" ({})", history.stopped).c_str(),
                static_cast<long long>(reported->epoch), figures.c_str());
    if (history.best_epoch)
      std::printf("Best epoch: %lld (lowest %s)%s\n", static_cast<long long>(*history.best_epoch),
                  reported->val_loss ? "val_loss" : "loss",
                  fit.early_stopping->restore_best ? "; the model keeps its weights" : "");
    if (!history.members.empty())
      std::printf("Trained %s more (%s epochs) in %s; the model predicts the mean of %lld\n",
                  plural(static_cast<std::int64_t>(history.members.size()), "member").c_str(), member_epochs.c_str(),
                  format_seconds(member_seconds).c_str(), static_cast<long long>(model.member_count()));
    if (history.linear) {
      const LinearComparison& c = *history.linear;
      const double share = c.linear_share;
      const bool blend = share > 0.0 && share < 1.0;
      std::string blended;
      if (blend)
        for (std::size_t i = 0; i < c.shares.size(); ++i)
          if (c.shares[i] == share)
            blended = fmt::format(", {:.6g} with a blend of {:g}% linear", c.blend_losses[i], 100.0 * share);
      std::printf("Mean val_loss: %.6g with the layers, %s with a linear model%s; the model is the %s\n",
                  c.network_loss, std::isinf(c.linear_loss) ? "diverged" : fmt::format("{:.6g}", c.linear_loss).c_str(),
                  blended.c_str(),
                  blend           ? "blend"
                  : c.kept_linear ? "linear one"
                                  : "layers");
    }
  }
  if (!lead) {
    if (interrupted) throw Interrupted{};
    return;
  }
  if (!a.save.empty()) {
    model.save(a.save);
    if (!quiet) std::printf("Saved the model to %s\n", a.save.c_str());
  }
  if (!a.history.empty()) write_file_atomically(a.history, history_csv(history));
  if (!a.plot.empty())
    write_file_atomically(a.plot, loss_plot_svg(history, fmt::format("Training loss: {}", table.path)));
  if (!a.metrics_out.empty()) {
    nlohmann::ordered_json metrics = {{"epochs", model.epochs_completed()},
                                      {"epochs_run", history.epochs.size()},
                                      {"rows", summary.training_rows + summary.validation_rows},
                                      {"training_rows", summary.training_rows},
                                      {"validation_rows", summary.validation_rows},
                                      {"dropped_rows", summary.dropped_rows},
                                      {"seconds", seconds + member_seconds},
                                      {"members", model.member_count()},
                                      {"backend", model.backend_name()}};
    if (reported != nullptr)
      for (const auto& [name, value] : epoch_figures(*reported)) metrics[name] = value;
    if (history.best_epoch) metrics["best_epoch"] = *history.best_epoch;
    if (!history.stopped.empty()) metrics["stopped"] = history.stopped;
    if (history.linear) {
      nlohmann::ordered_json blends = nlohmann::ordered_json::array();
      for (std::size_t i = 0; i < history.linear->shares.size(); ++i)
        blends.push_back({{"linear_share", history.linear->shares[i]}, {"val_loss", history.linear->blend_losses[i]}});
      metrics["compared_linear"] = {{"val_loss", history.linear->network_loss},
                                    {"linear_val_loss", history.linear->linear_loss},
                                    {"linear_share", history.linear->linear_share},
                                    {"kept", history.linear->kept_linear          ? "linear"
                                             : history.linear->linear_share > 0.0 ? "blend"
                                                                                  : "layers"},
                                    {"blends", blends}};
    }
    write_file_atomically(a.metrics_out, metrics.dump(2) + "\n");
  }
  if (interrupted) {
    std::fprintf(
        stderr, "Interrupted: the model is at epoch %lld%s%s\n", static_cast<long long>(model.epochs_completed()),
        fit.members > 1 ? fmt::format(", with {} of {} members", model.member_count(), fit.members).c_str() : "",
        a.save.empty()
            ? "; nothing was saved (no --save)"
            : fmt::format("; saved to {} (to resume, repeat the command with --init {})", a.save, a.save).c_str());
    throw Interrupted{};
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto arguments = std::make_shared<TrainArguments>();
  CLI::App* command = app.add_subcommand("train", "Train a model on a CSV file");
  command->footer(
      "With --init, the architecture, loss, optimizer and its settings (--optimizer, --lr, --momentum, --nesterov, "
      "--weight-decay, --beta1, --beta2, --eps, --alpha), column handling (--one-hot, --missing, --bins) and scaler "
      "come from "
      "the "
      "checkpoint; the defaults shown apply to new models, and a flag given on the command line overrides the "
      "checkpoint's setting (another --optimizer starts from fresh optimizer state; --schedule likewise). "
      "--epochs is the epoch to train up to: a checkpoint at epoch 30 trained with --epochs 100 runs 70 more.\n"
      "Ctrl-C or SIGTERM stops at the end of the current batch, writes --save, --history, --plot and "
      "--metrics-out with the epochs completed, and exits with code 130; a second one exits at once.");
  command->add_option("--data", arguments->data, "CSV file with a header row (RFC 4180); - reads standard input")
      ->required();
  command
      ->add_option("--target", arguments->target,
                   "Target column name(s), comma-separated; every other column is a feature")
      ->required();
  command->add_option("--ignore", arguments->ignore,
                      "Columns to leave out (ids, free text), comma-separated; they are not parsed");
  command->add_option("--one-hot", arguments->one_hot,
                      "Categorical feature columns, comma-separated: one indicator input per category seen in "
                      "training. Unnamed columns of text are categorical too, unless every row differs (an "
                      "identifier) or they hold over 200 values: those are left out, with a warning");
  command->add_option("--embed", arguments->embed,
                      fmt::format("Categorical feature columns, comma-separated, each given to a learned embedding "
                                  "rather than one indicator per category: a vector of DIM values per category seen in "
                                  "training (--layers embedding:DIM first; {} unless given), and one for a missing or "
                                  "unseen category. For columns of many categories",
                                  TableDefaults::kEmbeddingDim));
  command->add_option("--numeric", arguments->numeric,
                      "Numeric feature columns, comma-separated, whatever their cells look like (a cell that is "
                      "not a number is then an error)");
  command
      ->add_option("--missing", arguments->missing,
                   "Missing cells (empty, NA, NaN, null, ...): fill (a number takes its training mean, a category "
                   "none, each with an indicator input; rows without a target are left out), error, drop (leave "
                   "such rows out) or mean (fill features with their training mean)")
      ->capture_default_str();
  command->add_option(
      "--bins", arguments->bins,
      fmt::format("Piecewise-linear encoding of numbers: each numeric column also gets one input per bin between its "
                  "training quantiles (N bins, 2 to {}), 0 below the bin, 1 above, the value's place in between, so "
                  "that the network can cut a number into steps as a tree does (whole numbers of up to {} values: "
                  "a bin between each two neighbouring values); 0: off [default: {} for a table of {} "
                  "rows or more (not with --shard-data), else 0 but for whole numbers of {} to {} values, which "
                  "get those steps; or the --init model's]",
                  kMaxBins, kMaxBins + 1, TableDefaults::kBins, TableDefaults::kBinnedFrom, kFewestSteps,
                  kMaxBins + 1));
  command
      ->add_option(
          "--layers", arguments->layers,
          "Hidden layers, comma-separated, e.g. 64,64 or 256:gelu,dropout:0.1,layernorm,128:tanh. " +
              [] {
                std::string kinds;
                for (const LayerKind& kind : layer_kinds())
                  kinds += fmt::format("{}{}: {}", kinds.empty() ? "" : "; ", kind.form, kind.meaning);
                return kinds;
              }() +
              "; "
              "'none' for a linear model. Without --layers (and with validation rows), a linear model also "
              "trains, and the layers, the linear model or a blend of the two (a quarter, half or three "
              "quarters linear), whichever has the lowest mean val_loss, is kept. Activations: " +
              [] {
                std::string names;
                for (const std::string& name : activation_names()) names += (names.empty() ? "" : ", ") + name;
                return names;
              }())
      ->capture_default_str();
  command
      ->add_option("--epochs", arguments->epochs,
                   "The epoch to train up to (passes over the training rows; with --init, counting the "
                   "checkpoint's epochs, so that repeating an interrupted command finishes it; 0: only initialize)")
      ->capture_default_str();
  command->add_option("--batch-size", arguments->batch_size, "Rows per step; a final partial batch is used")
      ->capture_default_str();
  command->add_option("--loss", arguments->loss, loss_help());
  command
      ->add_option("--huber-delta", arguments->huber_delta,
                   "Huber's delta, in standardized target units when normalizing")
      ->capture_default_str();
  command->add_option("--label-smoothing", arguments->label_smoothing,
                      "crossentropy: train on targets (1 - X) for the label and X / classes spread over every class "
                      "(torch's CrossEntropyLoss(label_smoothing)), in [0, 1) [default: 0, or the --init model's]");
  command->add_option("--optimizer", arguments->optimizer, either(optimizer_names()) + " (torch.optim's formulas)")
      ->capture_default_str();
  command->add_option("--lr", arguments->lr,
                      "Learning rate [default: 0.01 for sgd, rmsprop and adagrad, 0.001 for adam and adamw]");
  command->add_option("--momentum", arguments->momentum,
                      fmt::format("SGD and RMSprop momentum [default: {} for sgd on a table of {} rows or more, which "
                                  "holds out rows to stop at the best epoch; else 0, or the --init model's]",
                                  TableDefaults::kMomentum, TableDefaults::kHeldOutFrom));
  command->add_flag("--nesterov", arguments->nesterov, "SGD: Nesterov momentum");
  command->add_option("--weight-decay", arguments->weight_decay,
                      "Weight decay: L2 added to the gradient (sgd, adam, rmsprop, adagrad), decoupled (adamw) "
                      "[default: 0; adamw 0.01]");
  command->add_option("--beta1", arguments->beta1, "Adam: first-moment decay [default: 0.9]");
  command->add_option("--beta2", arguments->beta2, "Adam: second-moment decay [default: 0.999]");
  command->add_option(
      "--eps", arguments->eps,
      "Adam, AdamW, RMSprop, Adagrad: added to the root in the step's denominator [default: 1e-8; adagrad 1e-10]");
  command->add_option("--alpha", arguments->alpha, "RMSprop: decay of the squared gradients' average [default: 0.99]");
  command->add_option("--clip-norm", arguments->clip_norm,
                      fmt::format("Scale the gradients down together before each update so that their L2 norm is "
                                  "at most this (torch's clip_grad_norm_): a batch of extreme rows then cannot throw "
                                  "the weights far; 0: off [default: {} for a table of {} rows or more, else 0, or the "
                                  "--init model's]",
                                  TableDefaults::kClipNorm, TableDefaults::kHeldOutFrom));
  command->add_option("--val-split", arguments->val_split,
                      "Fraction of the rows held out for validation, in [0, 1): drawn at random with --seed (the same "
                      "fraction of every class for a classifier) [default: 0.2 for a table of 1000 rows or more, with "
                      "--early-stopping 20; else 0]");
  command->add_option("--val-data", arguments->val_data,
                      "Validate on this CSV file's rows (the same columns as --data) instead of a split of --data, "
                      "with --early-stopping 20 unless given");
  command->add_option("--weight", arguments->weight,
                      "A column of row weights (numbers, 0 or more; not a feature): each step minimizes the weighted "
                      "mean of its rows' losses, as scikit-learn's sample_weight");
  command->add_flag("--val-last", arguments->val_last,
                    "--val-split holds out the last rows instead (rows in time order: validate on the latest)");
  command->add_flag("--no-shuffle", arguments->no_shuffle, "Keep the row order in every epoch");
  command->add_flag("--no-normalize", arguments->no_normalize, "Do not standardize features and targets");
  command->add_option("--seed", arguments->seed, "Seed for the initial weights and the shuffling (0 to 2^64-1)")
      ->capture_default_str();
  command->add_option("--device", arguments->device, "auto, cpu or cuda")->capture_default_str();
  command->add_option("--matmul", arguments->matmul, "Matmul provider on the GPU: ember or cublas")
      ->capture_default_str();
  command
      ->add_option("--precision", arguments->precision,
                   "Matmul arithmetic on the GPU: fp32, or tf32 (tensor cores, compute capability 8.0+); "
                   "the CPU always computes in FP32")
      ->capture_default_str();
  command->add_flag("--no-cuda-graph", arguments->no_cuda_graph,
                    "Launch each step's kernels one by one instead of replaying a CUDA graph");
  add_csv_options(*command, arguments->delimiter, arguments->comment);
  command
      ->add_option("--schedule", arguments->schedule,
                   "Learning-rate schedule: constant, step (--step-epochs, --decay), cosine (over the epochs this "
                   "run ends at; --warmup-epochs, --min-lr-scale) or plateau (on val_loss; --plateau-patience, "
                   "--decay, --min-lr-scale)")
      ->capture_default_str();
  command->add_option("--step-epochs", arguments->step_epochs, "step: epochs between decays")->capture_default_str();
  command->add_option("--decay", arguments->decay, "step and plateau: the factor applied at each decay")
      ->capture_default_str();
  command->add_option("--warmup-epochs", arguments->warmup_epochs, "cosine: epochs of linear warm-up first")
      ->capture_default_str();
  command->add_option("--min-lr-scale", arguments->min_lr_scale, "cosine and plateau: the lowest factor of the rate")
      ->capture_default_str();
  command
      ->add_option("--plateau-patience", arguments->plateau_patience,
                   "plateau: epochs without improvement before a decay")
      ->capture_default_str();
  command->add_option("--early-stopping", arguments->early_stopping,
                      "Stop after this many epochs without a lower val_loss (loss without --val-split); the model "
                      "returns to its best epoch; 0: off [default: 20 where --val-split is 0.2 by default; else 0]");
  command->add_option("--min-delta", arguments->min_delta, "Early stopping: the least decrease that counts")
      ->capture_default_str();
  command->add_flag("--no-restore-best", arguments->no_restore_best, "Early stopping: keep the last epoch's weights");
  command
      ->add_option("--members", arguments->members,
                   fmt::format("Train N networks, from --seed, --seed + 1, ..., on the same rows and validation "
                               "split, each shuffling its own order, and predict the mean of their predictions "
                               "(values, or class probabilities): a deep ensemble, whose errors partly cancel; "
                               "each costs one training (1 to {}) [default: {} / rows, from 1 to {}; 1 with --init "
                               "or --shard-data]",
                               FitOptions::kMaxMembers, TableDefaults::kMemberRows, TableDefaults::kMembers))
      ->check(CLI::Range(std::int64_t{1}, FitOptions::kMaxMembers));
  command
      ->add_option("--checkpoint-every", arguments->checkpoint_every,
                   "Write --save every N epochs (atomically), so a crash loses at most N epochs; 0: off")
      ->capture_default_str();
  command->add_option("--init", arguments->init,
                      "Start from this checkpoint's weights, optimizer state, scaler and column handling (resume; "
                      "--epochs counts its epochs)");
  command->add_option("--save", arguments->save, "Write the trained model to this safetensors file");
  command->add_option("--history", arguments->history, "Write per-epoch loss and metrics to this CSV file");
  command->add_option("--plot", arguments->plot, "Write an SVG loss curve to this file");
  command->add_option("--metrics-out", arguments->metrics_out, "Write the final figures to this JSON file");
  command->add_flag("--deterministic-reduce", arguments->deterministic_reduce,
                    "Under mpirun: add the ranks' gradients in rank order, so that reruns are bit-identical "
                    "(sends N times the bytes)");
  command->add_flag("--shard-data", arguments->shard_data,
                    "Under mpirun: each rank reads only its 1/N of the file's rows (for data beyond one machine's "
                    "memory); not bit-identical to one process");
  add_comm_option(*command, arguments->comm, "Under mpirun: where GPU ranks sum their gradients");
  command
      ->add_option("--progress", arguments->progress,
                   "auto (a live bar on a terminal, else one line per epoch, as in logs and under mpirun), bar, "
                   "lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();
  command->add_flag("--quiet,-q", arguments->quiet, "Print nothing but errors and warnings");
  command->callback([arguments, command] { run_train(*arguments, *command); });
}

}  // namespace ember::cli
