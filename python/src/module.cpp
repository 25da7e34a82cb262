// ember._core: the C++ library for Python (nanobind). numpy arrays of float32, C-contiguous, are
// read where they lie; the GIL is released while the engine trains, evaluates or predicts; Ember's
// exceptions arrive as Python ones with the same messages. ember/__init__.py adds the Keras-style
// string settings and ember/sklearn.py the scikit-learn estimators on top.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stop_token>
#include <string_view>

#include "ember/ember.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using Input = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Output = nb::ndarray<nb::numpy, float, nb::ndim<2>>;
using Weights = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

ember::ConstView view_of(const Input& array) {
  return {array.data(), static_cast<std::int64_t>(array.shape(0)), static_cast<std::int64_t>(array.shape(1))};
}

/// A table from Python (a DataFrame written as CSV text), read as `ember train` reads a file, and
/// how a first fit uses its columns.
struct Table {
  ember::CsvTable table;
  ember::ColumnSpec spec;  // for fit (for_training); predict and evaluate use the model's columns
};
/// What fit, predict and evaluate take: a table or arrays.
using Data = std::variant<const Table*, Input>;

/// The Python frames between here and the first one outside the ember package, plus one: the
/// stacklevel at which a warning names the user's line, not the package's.
int caller_stack_level() {
  static const std::string package = [] {
    const auto file = nb::cast<std::string>(nb::module_::import_("ember._core").attr("__file__"));
    return file.substr(0, file.rfind('/') + 1);
  }();
  int level = 1;
  PyFrameObject* frame = PyEval_GetFrame();  // borrowed
  Py_XINCREF(frame);
  while (frame != nullptr) {
    PyCodeObject* code = PyFrame_GetCode(frame);
    const char* name = PyUnicode_AsUTF8(code->co_filename);
    const bool inside = name != nullptr && std::string_view(name).starts_with(package);
    Py_DECREF(code);
    if (!inside) break;
    PyFrameObject* back = PyFrame_GetBack(frame);
    Py_DECREF(frame);
    frame = back;
    ++level;
  }
  Py_XDECREF(frame);
  if (PyErr_Occurred() != nullptr) PyErr_Clear();  // a file name that is no UTF-8: the default level
  return level;
}

/// A message of the engine in Python's words: settings by the names the Python API gives them
/// (SGD::lr is lr, Device::cpu is device="cpu"), rows and columns of arrays and DataFrames counted
/// from 0 (the engine counts from 1 and a DataFrame's rows from its CSV text's first line).
/// value to 7 significant digits (float32's), as Python prints a short float.
std::string short_number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.7g", value);
  return text;
}

std::string python_words(std::string text) {
  // Renamed before the general rule below.
  static const std::pair<std::regex, std::string> named[] = {
      {std::regex(R"(EarlyStopping::patience)"), "early_stopping"},
      {std::regex(R"(FitOptions::on_epoch_begin)"), "the learning_rate a callback set"},
      {std::regex(R"(Device::automatic)"), "device=\"auto\""},
      {std::regex(R"(Device::(cpu|cuda))"), "device=\"$1\""},
      {std::regex(R"(the loss CrossEntropy)"), "loss=\"crossentropy\""},
      // A struct's setting (SGD::lr, Huber::delta, any part's): the keyword's name.
      {std::regex(R"(\b[A-Z][A-Za-z]*::([a-z_]\w*))"), "$1"},
  };
  for (const auto& [pattern, words] : named) text = std::regex_replace(text, pattern, words);
  // Numbers to shift: "input row 4 column 3" of an array, "target column 2", "DataFrame:3:1".
  const auto shift = [&](const std::regex& pattern, auto&& write) {
    std::string out;
    auto last = text.cbegin();
    for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
      out.append(last, (*it)[0].first);
      out += write(*it);
      last = (*it)[0].second;
    }
    out.append(last, text.cend());
    text = std::move(out);
  };
  const auto minus = [](const std::ssub_match& number, long by) {
    return std::to_string(std::stol(number.str()) - by);
  };
  shift(std::regex(R"(\brow (\d+) column (\d+)\b)"),
        [&](const std::smatch& m) { return "row " + minus(m[1], 1) + " column " + minus(m[2], 1); });
  shift(std::regex(R"(\b(input|target) column (\d+)\b)"),
        [&](const std::smatch& m) { return m[1].str() + " column " + minus(m[2], 1); });
  // DataFrame:LINE:FIELD: the header is line 1, so the frame's row is LINE - 2.
  shift(std::regex(R"(\bDataFrame:(\d+)(?::\d+)?)"),
        [&](const std::smatch& m) { return "DataFrame row " + minus(m[1], 2); });
  return text;
}

/// The library's warnings as Python's UserWarning at the caller's line (an error if the filters
/// make it one, raised when the call returns).
void warn_in_python(const std::string& message) {
  nb::gil_scoped_acquire gil;
  if (PyErr_Occurred() == nullptr) PyErr_WarnEx(PyExc_UserWarning, python_words(message).c_str(), caller_stack_level());
}

/// A Matrix handed to numpy without a copy: the array owns it.
Output to_numpy(ember::Matrix&& matrix) {
  auto* owned = new ember::Matrix(std::move(matrix));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<ember::Matrix*>(p); });
  const std::size_t shape[2] = {static_cast<std::size_t>(owned->rows()), static_cast<std::size_t>(owned->cols())};
  return Output(owned->data(), 2, shape, owner);
}

PyObject* error_type = nullptr;
PyObject* input_error_type = nullptr;
PyObject* divergence_error_type = nullptr;

/// The epoch's figures under Keras' names.
nb::dict figures(const ember::EpochRecord& r) {
  nb::dict d;
  d["loss"] = r.loss;
  if (r.mae) d["mae"] = *r.mae;
  if (r.r2) d["r2"] = *r.r2;
  if (r.accuracy) d["accuracy"] = *r.accuracy;
  if (r.val_loss) d["val_loss"] = *r.val_loss;
  if (r.val_mae) d["val_mae"] = *r.val_mae;
  if (r.val_r2) d["val_r2"] = *r.val_r2;
  if (r.val_accuracy) d["val_accuracy"] = *r.val_accuracy;
  d["lr"] = r.lr;
  return d;
}

/// What the engine's fit returns, for the Python History: the figures of each epoch, its number
/// (from 1, counting earlier fits), the best epoch and why training stopped early.
struct FitResult {
  nb::list epochs;
  nb::dict history;
  std::optional<std::int64_t> best_epoch;
  std::string stopped;
  std::optional<nb::dict> linear;  // History::linear: val_loss, linear_val_loss, kept
};

/// Trains; the Python hooks (ember/__init__.py's fit composes them from its callbacks and progress
/// display) run with the GIL: on_epoch_begin(epoch, rate) -> the epoch's rate;
/// on_epoch_end(epoch, figures, batches, seconds) -> whether to stop; on_batch(batch, batches), at
/// most every 50 ms, when Python's signal handlers run too (Ctrl-C raises KeyboardInterrupt at a
/// batch boundary, with the model at its last completed epoch). An exception from a hook ends
/// training the same way and is raised.
FitResult fit(ember::Sequential& model, const Data& x, const std::optional<Input>& y, std::int64_t epochs,
              std::int64_t batch_size, double validation_split, bool validation_last, bool shuffle,
              std::optional<std::uint64_t> seed, bool normalize, std::optional<std::int64_t> early_stopping,
              double min_delta, bool restore_best, std::int64_t checkpoint_every, const std::string& checkpoint_path,
              const std::optional<Data>& validation_x, const std::optional<Input>& validation_y,
              const std::optional<nb::callable>& on_epoch_begin, const std::optional<nb::callable>& on_epoch_end,
              const std::optional<nb::callable>& on_batch, const std::optional<Weights>& sample_weight,
              std::int64_t members, bool compare_linear) {
  ember::FitOptions options;
  options.members = members;
  options.compare_linear = compare_linear;
  if (sample_weight) options.sample_weight = {sample_weight->data(), sample_weight->shape(0)};
  if (validation_x) {
    ember::ValidationData v;
    if (const auto* table = std::get_if<const Table*>(&*validation_x)) {
      v.table = &(*table)->table;
    } else {
      if (!validation_y) throw ember::InputError("validation_data on arrays needs (x, y)");
      v.x = view_of(std::get<Input>(*validation_x));
      v.y = view_of(*validation_y);
    }
    options.validation_data = v;
  }
  options.epochs = epochs;
  options.batch_size = batch_size;
  options.validation_split = validation_split;
  options.validation_rows = validation_last ? ember::ValidationRows::last : ember::ValidationRows::random;
  options.shuffle = shuffle;
  options.seed = seed;
  options.normalize = normalize;
  if (early_stopping)
    options.early_stopping =
        ember::EarlyStopping{.patience = *early_stopping, .min_delta = min_delta, .restore_best = restore_best};
  options.checkpoint_every = checkpoint_every;
  options.checkpoint_path = checkpoint_path;
  std::stop_source stop;
  options.stop = stop.get_token();
  bool interrupted = false;
  auto last_check = std::chrono::steady_clock::now();
  std::int64_t epoch_batches = 0;
  options.on_batch = [&](std::int64_t batch, std::int64_t batches) {
    epoch_batches = batches;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_check < std::chrono::milliseconds(50)) return;
    last_check = now;
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      interrupted = true;
      stop.request_stop();
      return;
    }
    if (on_batch) (*on_batch)(batch, batches);
  };
  if (on_epoch_begin)
    options.on_epoch_begin = [&](std::int64_t epoch, double rate) {
      nb::gil_scoped_acquire gil;
      return nb::cast<double>((*on_epoch_begin)(epoch, rate));
    };
  if (on_epoch_end)
    options.on_epoch_end = [&](const ember::EpochRecord& r) {
      nb::gil_scoped_acquire gil;
      if (nb::cast<bool>((*on_epoch_end)(r.epoch, figures(r), epoch_batches, r.seconds))) stop.request_stop();
    };
  options.on_warning = warn_in_python;
  if (std::holds_alternative<Input>(x) && !y) throw ember::InputError("fit on arrays needs y, the targets");
  ember::History history;
  {
    nb::gil_scoped_release release;
    if (const auto* table = std::get_if<const Table*>(&x))
      history = model.fit((*table)->table, (*table)->spec, options);
    else
      history = model.fit(view_of(std::get<Input>(x)), view_of(*y), options);
  }
  if (PyErr_Occurred() != nullptr) throw nb::python_error();  // a warning turned into an error
  if (interrupted) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw nb::python_error();
  }
  FitResult result;
  for (const ember::EpochRecord& r : history.epochs) {
    result.epochs.append(r.epoch);
    for (auto [key, value] : figures(r)) {
      if (!result.history.contains(key)) result.history[key] = nb::list();
      nb::cast<nb::list>(result.history[key]).append(value);
    }
  }
  result.best_epoch = history.best_epoch;
  result.stopped = history.stopped;
  if (history.linear) {
    nb::dict linear;
    linear["val_loss"] = history.linear->network_loss;
    linear["linear_val_loss"] = history.linear->linear_loss;
    linear["linear_share"] = history.linear->linear_share;
    linear["kept"] = history.linear->kept_linear ? "linear" : history.linear->linear_share > 0.0 ? "blend" : "layers";
    nb::dict blends;  // each share tried: its validation loss
    for (std::size_t i = 0; i < history.linear->shares.size(); ++i)
      blends[nb::float_(history.linear->shares[i])] = history.linear->blend_losses[i];
    linear["blends"] = blends;
    result.linear = linear;
  }
  return result;
}

nb::dict metrics_dict(const ember::Metrics& m, bool classification) {
  nb::dict d;
  if (classification) {
    d["accuracy"] = m.accuracy;
    d["log_loss"] = m.log_loss;
    d["macro_f1"] = m.macro_f1;
    d["classes"] = m.classes;
    d["confusion"] = m.confusion;
  } else {
    d["mse"] = m.mse;
    d["mae"] = m.mae;
    d["r2"] = m.r2;
  }
  d["rows"] = m.rows;
  return d;
}

/// The checkpoint's bytes (pickling): written through a temporary file, as save does.
nb::bytes to_bytes(const ember::Sequential& model) {
  char name[] = "/tmp/ember-pickle-XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) throw ember::Error("cannot create a temporary file to serialize the model");
  close(fd);
  const std::string path = std::string(name) + ".safetensors";
  std::filesystem::remove(name);
  try {
    model.save(path);
    std::ifstream file(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::filesystem::remove(path);
    return nb::bytes(bytes.data(), bytes.size());
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
}

ember::Sequential from_bytes(nb::bytes bytes) {
  char name[] = "/tmp/ember-pickle-XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) throw ember::Error("cannot create a temporary file to read the model");
  const bool written = write(fd, bytes.c_str(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  close(fd);
  const std::string path = std::string(name) + ".safetensors";
  std::filesystem::rename(name, path);
  try {
    if (!written) throw ember::Error("cannot write a temporary file to read the model");
    ember::Sequential model = ember::Sequential::load(path);
    std::filesystem::remove(path);
    return model;
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
}

/// A generated class's constructor arguments as named settings: the positional ones in names'
/// order, then the keywords; each a number, or True or False for a name switches lists (as 1 or
/// 0). TypeError, as Python words it, for too many, an unknown keyword or a value of another type.
std::vector<std::pair<std::string, double>> named_settings(const std::string& class_name,
                                                           const std::vector<std::string>& names,
                                                           const std::vector<std::string>& switches,
                                                           const nb::args& args, const nb::kwargs& kwargs) {
  if (args.size() > names.size())
    throw nb::type_error(fmt::format("{}() takes {} positional argument{}{}, got {}", class_name, names.size(),
                                     names.size() == 1 ? "" : "s",
                                     names.empty() ? "" : fmt::format(" ({})", fmt::join(names, ", ")), args.size())
                             .c_str());
  std::vector<std::pair<std::string, double>> settings;
  const auto add = [&](const std::string& name, nb::handle value) {
    const bool is_switch = std::find(switches.begin(), switches.end(), name) != switches.end();
    double number = 0.0;
    bool flag = false;
    if (is_switch ? !nb::try_cast(value, flag) : !nb::try_cast(value, number))
      throw nb::type_error(fmt::format("{}(): {} must be {}, not {}", class_name, name,
                                       is_switch ? "True or False" : "a number", nb::cast<std::string>(nb::repr(value)))
                               .c_str());
    settings.emplace_back(name, is_switch ? (flag ? 1.0 : 0.0) : number);
  };
  for (std::size_t i = 0; i < args.size(); ++i) add(names[i], args[i]);
  for (const auto& [key, value] : kwargs) {
    const std::string name = nb::cast<std::string>(key);
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw nb::type_error(fmt::format("{}() got an unexpected keyword argument '{}'; it takes {}", class_name, name,
                                       names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", ")))
                               .c_str());
    add(name, value);
  }
  return settings;
}

/// The library's kinds of layer, kept for the bindings' names.
const std::vector<ember::LayerKind>& layer_kinds() {
  static const std::vector<ember::LayerKind> kinds = ember::layer_kinds();
  return kinds;
}

/// The same for the losses.
const std::vector<ember::LossKind>& loss_kinds() {
  static const std::vector<ember::LossKind> kinds = ember::loss_kinds();
  return kinds;
}

/// The same for the optimizers.
const std::vector<ember::OptimizerKind>& optimizer_kinds() {
  static const std::vector<ember::OptimizerKind> kinds = ember::optimizer_kinds();
  return kinds;
}

/// The same for the schedules.
const std::vector<ember::ScheduleKind>& schedule_kinds() {
  static const std::vector<ember::ScheduleKind> kinds = ember::schedule_kinds();
  return kinds;
}

/// An optimizer's class from its kind (ember::optimizer_kinds()): its settings (numbers) and
/// switches (booleans) as keyword or positional arguments in its struct's order, each a property;
/// checked as it is made.
template <typename Optimizer>
void bind_optimizer(nb::module_& m, const ember::OptimizerKind& kind) {
  const std::vector<std::string>& all = kind.settings;
  const auto is_switch = [&kind](const std::string& name) {
    return std::find(kind.switches.begin(), kind.switches.end(), name) != kind.switches.end();
  };
  nb::class_<Optimizer> optimizer(m, kind.class_name.c_str());
  optimizer.def("__init__", [&kind](Optimizer* self, nb::args args, nb::kwargs kwargs) {
    const auto settings = named_settings(kind.class_name, kind.settings, kind.switches, args, kwargs);
    new (self) Optimizer(std::get<Optimizer>(ember::make_optimizer(kind.name, settings)));
  });
  for (const std::string& setting : all) {
    const auto set = [&kind, &all, &setting](Optimizer& self, double value) {
      std::vector<std::pair<std::string, double>> settings;
      for (const std::string& other : all)
        settings.emplace_back(other,
                              other == setting ? value : ember::optimizer_setting(ember::Optimizer(self), other));
      self = std::get<Optimizer>(ember::make_optimizer(kind.name, settings));
    };
    if (is_switch(setting))
      optimizer.def_prop_rw(
          setting.c_str(),
          [&setting](const Optimizer& self) {
            return ember::optimizer_setting(ember::Optimizer(self), setting) != 0.0;
          },
          [set](Optimizer& self, bool value) { set(self, value ? 1.0 : 0.0); });
    else
      optimizer.def_prop_rw(
          setting.c_str(),
          [&setting](const Optimizer& self) { return ember::optimizer_setting(ember::Optimizer(self), setting); }, set);
  }
  optimizer.def("__repr__", [](const Optimizer& self) { return ember::describe(ember::Optimizer(self)); });
  optimizer.def("__eq__", [](const Optimizer& self, const Optimizer& other) { return self == other; });
  optimizer.doc() =
      (kind.class_name + ": torch.optim." + kind.class_name + "'s formula (ember/optimizers.hpp).").c_str();
}

/// A class for a kind of layer made from its settings alone (LayerKind::settings): Keras' name,
/// the settings as positional or keyword arguments (the others at their defaults) and as read-only
/// properties. Dense, BatchNormalization and Embedding are bound by hand.
template <typename Settings>
void bind_layer(nb::module_& m, const ember::LayerKind& kind) {
  if constexpr (std::is_same_v<Settings, ember::Dense> || std::is_same_v<Settings, ember::BatchNorm> ||
                std::is_same_v<Settings, ember::Embedding>) {
    return;
  } else {
    nb::class_<Settings> layer(m, kind.keras_name.c_str());
    layer.def("__init__", [&kind](Settings* self, nb::args args, nb::kwargs kwargs) {
      const auto settings = named_settings(kind.keras_name, kind.settings, {}, args, kwargs);
      new (self) Settings(std::get<Settings>(ember::make_layer(kind.name, settings)));
    });
    for (const std::string& setting : kind.settings)
      layer.def_prop_ro(setting.c_str(),
                        [&setting](const Settings& self) { return ember::layer_setting(ember::Layer(self), setting); });
    layer.def("__repr__", [](const Settings& self) { return ember::describe(ember::Layer(self)); });
    layer.doc() = (kind.keras_name + ": " + kind.meaning + ".").c_str();
  }
}

/// A loss's class from its kind (ember::loss_kinds()): its settings as keyword (or positional)
/// arguments, each a property; checked as it is made.
template <typename Settings>
void bind_loss(nb::module_& m, const ember::LossKind& kind) {
  nb::class_<Settings> loss(m, kind.keras_name.c_str());
  loss.def("__init__", [&kind](Settings* self, nb::args args, nb::kwargs kwargs) {
    const auto settings = named_settings(kind.keras_name, kind.settings, {}, args, kwargs);
    new (self) Settings(std::get<Settings>(ember::make_loss(kind.name, settings)));
  });
  for (const std::string& setting : kind.settings)
    loss.def_prop_rw(
        setting.c_str(), [&setting](const Settings& self) { return ember::loss_setting(ember::Loss(self), setting); },
        [&kind, &setting](Settings& self, double value) {
          std::vector<std::pair<std::string, double>> settings;
          for (const std::string& other : kind.settings)
            settings.emplace_back(other, other == setting ? value : ember::loss_setting(ember::Loss(self), other));
          self = std::get<Settings>(ember::make_loss(kind.name, settings));
        });
  loss.def("__repr__", [](const Settings& self) { return ember::describe(ember::Loss(self)); });
  loss.def("__eq__", [](const Settings& self, const Settings& other) { return self == other; });
  loss.doc() = (kind.keras_name + ": " + kind.meaning + ".").c_str();
}

/// A schedule's class from its kind (ember::schedule_kinds()): its settings as keyword (or
/// positional) arguments, each a read-only property (an int for a count); checked as it is made.
template <typename Settings>
void bind_schedule(nb::module_& m, const ember::ScheduleKind& kind) {
  nb::class_<Settings> schedule(m, kind.class_name.c_str());
  schedule.def("__init__", [&kind](Settings* self, nb::args args, nb::kwargs kwargs) {
    const auto settings = named_settings(kind.class_name, kind.settings, {}, args, kwargs);
    new (self) Settings(std::get<Settings>(ember::make_schedule(kind.name, settings)));
  });
  for (const std::string& setting : kind.settings) {
    if (std::find(kind.whole.begin(), kind.whole.end(), setting) != kind.whole.end())
      schedule.def_prop_ro(setting.c_str(), [&setting](const Settings& self) {
        return static_cast<std::int64_t>(ember::schedule_setting(ember::Schedule(self), setting));
      });
    else
      schedule.def_prop_ro(setting.c_str(), [&setting](const Settings& self) {
        return ember::schedule_setting(ember::Schedule(self), setting);
      });
  }
  schedule.def("__repr__", [](const Settings& self) { return ember::describe(ember::Schedule(self)); });
  schedule.def("__eq__", [](const Settings& self, const Settings& other) { return self == other; });
  schedule.doc() = (kind.class_name + ": " + kind.meaning + ".").c_str();
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "Ember's C++ engine (use the ember package)";
  error_type = PyErr_NewExceptionWithDoc("ember.Error", "An error from Ember's engine.", PyExc_RuntimeError, nullptr);
  input_error_type =
      PyErr_NewExceptionWithDoc("ember.InputError", "Bad input: data, a setting, a file.", PyExc_ValueError, nullptr);
  divergence_error_type = PyErr_NewExceptionWithDoc(
      "ember.DivergenceError", "Training produced a non-finite loss; the model keeps its last finite epoch.",
      error_type, nullptr);
  m.attr("Error") = nb::handle(error_type);
  m.attr("InputError") = nb::handle(input_error_type);
  m.attr("DivergenceError") = nb::handle(divergence_error_type);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ember::InputError& e) {
      PyErr_SetString(input_error_type, python_words(e.what()).c_str());
    } catch (const ember::DivergenceError& e) {
      PyErr_SetString(divergence_error_type, python_words(e.what()).c_str());
    } catch (const ember::Error& e) {
      PyErr_SetString(error_type, python_words(e.what()).c_str());
    }
  });

  nb::class_<ember::Dense>(m, "Dense")
      .def(
          "__init__",
          [](ember::Dense* self, std::int64_t units, const std::string& activation) {
            // "none" stays accepted as linear, as before parse_activation named every kind.
            new (self) ember::Dense(
                units, activation == "none" ? ember::Activation::linear : ember::parse_activation(activation));
          },
          "units"_a, "activation"_a = "linear")
      .def_prop_ro("units", [](const ember::Dense& d) { return d.units; })
      .def_prop_ro("activation", [](const ember::Dense& d) { return ember::to_string(d.activation); })
      .def("__repr__", [](const ember::Dense& d) {
        return "Dense(" + std::to_string(d.units) + ", '" + ember::to_string(d.activation) + "')";
      });

  // Every kind made from its settings alone, by its Keras name, as the library lists them; the
  // others below, where Keras' arguments differ from the engine's settings.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (bind_layer<std::variant_alternative_t<I, ember::Layer>>(m, layer_kinds()[I]), ...);
  }
  (std::make_index_sequence<ember::kLayerKinds>());

  // Keras' meaning of momentum: the running figures' own weight (ember::BatchNorm's is the batch's).
  nb::class_<ember::BatchNorm>(m, "BatchNormalization")
      .def(
          "__init__",
          [](ember::BatchNorm* self, double momentum, double epsilon) {
            if (!(momentum >= 0.0 && momentum <= 1.0))
              throw ember::InputError(
                  "BatchNormalization(momentum=" + short_number(momentum) +
                  "): momentum, the running figures' weight at each step, must be 0 to 1 (0.9 gives PyTorch's "
                  "default, momentum 0.1 there; Keras' default is 0.99)");
            const ember::BatchNorm norm(static_cast<float>(1.0 - momentum), static_cast<float>(epsilon));
            ember::check_layer(norm);
            new (self) ember::BatchNorm(norm);
          },
          "momentum"_a = 1.0 - ember::BatchNorm().momentum, "epsilon"_a = ember::BatchNorm().epsilon)
      .def_prop_ro("momentum", [](const ember::BatchNorm& n) { return std::stod(short_number(1.0 - n.momentum)); })
      .def_prop_ro("epsilon", [](const ember::BatchNorm& n) { return n.epsilon; })
      .def("__repr__", [](const ember::BatchNorm& n) {
        return "BatchNormalization(momentum=" + short_number(1.0 - n.momentum) +
               ", epsilon=" + short_number(n.epsilon) + ")";
      });

  nb::class_<ember::Embedding>(m, "Embedding")
      .def(
          "__init__",
          [](ember::Embedding* self, std::int64_t input_dim, std::int64_t output_dim, std::int64_t columns) {
            ember::check_layer(ember::Embedding(input_dim, output_dim, columns));
            new (self) ember::Embedding(input_dim, output_dim, columns);
          },
          "input_dim"_a, "output_dim"_a, "columns"_a = 0)
      .def_prop_ro("input_dim", [](const ember::Embedding& e) { return e.input_dim; })
      .def_prop_ro("output_dim", [](const ember::Embedding& e) { return e.output_dim; })
      .def_prop_ro("columns", [](const ember::Embedding& e) { return e.columns; })
      .def("__repr__", [](const ember::Embedding& e) { return ember::describe(e); });

  // Every optimizer by its class name, from the library's list of its settings.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (bind_optimizer<std::variant_alternative_t<I, ember::Optimizer>>(m, optimizer_kinds()[I]), ...);
  }
  (std::make_index_sequence<std::variant_size_v<ember::Optimizer>>());
  m.def("optimizer_names", &ember::optimizer_names, "Every optimizer's name, as compile() and the CLI take them.");
  m.def("loss_names", &ember::loss_names, "Every loss's name, as compile() and the CLI take them.");
  m.def("schedule_names", &ember::schedule_names, "Every schedule's name, as the CLI's --schedule takes them.");
  m.def(
      "table_defaults",
      [](std::int64_t rows) {
        using D = ember::TableDefaults;
        const D d = ember::table_defaults(rows);
        nb::dict out;
        out["bins"] = d.bins;
        out["steps"] = d.steps;
        out["levels"] = d.levels;
        out["validation_split"] = d.validation_split;
        out["patience"] = d.patience;
        out["members"] = d.members;
        out["momentum"] = d.momentum;
        out["clip_norm"] = d.clip_norm;
        out["default_momentum"] = D::kMomentum;
        out["default_clip_norm"] = D::kClipNorm;
        out["most_members"] = D::kMembers;
        out["member_rows"] = D::kMemberRows;
        out["hidden_layer_sizes"] = nb::make_tuple(D::kHiddenWidth, D::kHiddenWidth);
        out["epochs"] = D::kEpochs;
        out["batch_size"] = D::kBatchSize;
        out["held_out_from"] = D::kHeldOutFrom;
        out["default_validation_split"] = D::kValidationSplit;
        out["default_patience"] = D::kPatience;
        out["binned_from"] = D::kBinnedFrom;
        out["embedding_dim"] = D::kEmbeddingDim;
        return out;
      },
      "rows"_a = 0,
      "What `ember train` and the estimators do by default for a table of this many rows (bins, validation_split, "
      "patience, momentum, clip_norm: 0 where off), and the constants of that rule.");
  // Every loss by its class name, from its part's settings, as the library lists them.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (bind_loss<std::variant_alternative_t<I, ember::Loss>>(m, loss_kinds()[I]), ...);
  }
  (std::make_index_sequence<ember::kLossKinds>());

  // Every schedule by its class name, from the library's list of its settings.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (bind_schedule<std::variant_alternative_t<I, ember::Schedule>>(m, schedule_kinds()[I]), ...);
  }
  (std::make_index_sequence<std::variant_size_v<ember::Schedule>>());

  nb::class_<FitResult>(m, "_FitResult")
      .def_ro("epochs", &FitResult::epochs)
      .def_ro("history", &FitResult::history)
      .def_ro("best_epoch", &FitResult::best_epoch)
      .def_ro("stopped", &FitResult::stopped)
      .def_ro("linear", &FitResult::linear);

  nb::class_<Table>(m, "_Table")
      .def_static(
          "for_training",
          [](const ember::Sequential& model, const std::string& text, std::vector<std::string> targets,
             std::vector<std::string> ignore, std::optional<std::vector<std::string>> one_hot,
             std::vector<std::string> numeric, std::optional<std::string> missing, std::optional<std::size_t> bins,
             bool classification, std::optional<std::vector<std::string>> embed, std::optional<bool> steps,
             std::optional<bool> levels) {
            auto* t = new Table;
            // A model that learned its columns keeps its handling of them (as `ember train --init`):
            // what is not given is the model's, and only its columns are read.
            const ember::Preprocessing& learned = model.preprocessing();
            t->spec = learned.empty() ? ember::ColumnSpec{} : learned.spec();
            t->spec.targets = std::move(targets);
            t->spec.ignore = std::move(ignore);
            t->spec.numeric = std::move(numeric);
            if (one_hot) t->spec.one_hot = std::move(*one_hot);
            if (embed) t->spec.embed = std::move(*embed);
            if (missing) t->spec.missing = ember::parse_missing(*missing);
            if (bins) t->spec.bins = *bins;
            if (steps) t->spec.steps = *steps;
            if (levels) t->spec.levels = *levels;
            t->table = ember::parse_csv(
                text, "DataFrame",
                learned.empty() ? ember::reading_options(t->spec, classification) : learned.csv_options(',', true));
            return t;
          },
          "model"_a, "text"_a, "targets"_a, "ignore"_a, "one_hot"_a.none(), "numeric"_a, "missing"_a.none(),
          "bins"_a.none(), "classification"_a, "embed"_a.none() = nb::none(), "steps"_a.none() = nb::none(),
          "levels"_a.none() = nb::none(), nb::rv_policy::take_ownership)
      .def_static(
          "for_model",
          [](const ember::Sequential& model, const std::string& text, bool with_targets) {
            auto* t = new Table;
            const ember::Preprocessing& p = model.preprocessing();
            t->table =
                ember::parse_csv(text, "DataFrame", p.empty() ? ember::CsvOptions{} : p.csv_options(',', with_targets));
            return t;
          },
          "model"_a, "text"_a, "with_targets"_a, nb::rv_policy::take_ownership)
      .def_prop_ro("columns", [](const Table& t) { return t.table.names(); });

  nb::class_<ember::Sequential>(m, "Sequential")
      .def(nb::init<std::vector<ember::Layer>, std::uint64_t>(), "layers"_a, "seed"_a = 0)
      .def(
          "_compile",
          [](ember::Sequential& model, const ember::Optimizer& optimizer, const ember::Loss& loss,
             const std::string& device, bool cpu_reference, bool row_invariant, float clip_norm,
             const ember::Schedule& schedule) {
            model.compile({.optimizer = optimizer,
                           .schedule = schedule,
                           .loss = loss,
                           .clip_norm = clip_norm,
                           .device = ember::parse_device(device),
                           .backend = {.cpu_reference = cpu_reference, .row_invariant = row_invariant}});
          },
          "optimizer"_a, "loss"_a, "device"_a, "cpu_reference"_a, "row_invariant"_a, "clip_norm"_a, "schedule"_a)
      .def(
          "_recompile",
          [](ember::Sequential& model, const std::string& device, bool cpu_reference, bool row_invariant) {
            ember::CompileOptions options = model.compile_options();
            options.device = ember::parse_device(device);
            options.backend.cpu_reference = cpu_reference;
            options.backend.row_invariant = row_invariant;
            model.compile(options);
          },
          "device"_a, "cpu_reference"_a, "row_invariant"_a, "The same model on another device or CPU backend")
      .def("_fit", &fit, "x"_a, "y"_a.none(), "epochs"_a, "batch_size"_a, "validation_split"_a, "validation_last"_a,
           "shuffle"_a, "seed"_a.none(), "normalize"_a, "early_stopping"_a.none(), "min_delta"_a, "restore_best"_a,
           "checkpoint_every"_a, "checkpoint_path"_a, "validation_x"_a.none(), "validation_y"_a.none(),
           "on_epoch_begin"_a.none(), "on_epoch_end"_a.none(), "on_batch"_a.none(), "sample_weight"_a.none(),
           "members"_a = 0, "compare_linear"_a = false)
      .def(
          "_predict",
          [](const ember::Sequential& model, const Data& x, std::int64_t batch_size) {
            ember::Matrix out;
            {
              nb::gil_scoped_release release;
              if (const auto* table = std::get_if<const Table*>(&x))
                out = model.predict((*table)->table, {.batch_size = batch_size, .on_warning = warn_in_python});
              else
                out = model.predict(view_of(std::get<Input>(x)), batch_size);
            }
            if (PyErr_Occurred() != nullptr) throw nb::python_error();
            return to_numpy(std::move(out));
          },
          "x"_a, "batch_size"_a)
      .def(
          "_evaluate",
          [](const ember::Sequential& model, const Data& x, const std::optional<Input>& y, std::int64_t batch_size) {
            if (std::holds_alternative<Input>(x) && !y)
              throw ember::InputError("evaluate on arrays needs y, the targets");
            ember::Metrics metrics;
            {
              nb::gil_scoped_release release;
              if (const auto* table = std::get_if<const Table*>(&x))
                metrics = model.evaluate((*table)->table, {.batch_size = batch_size, .on_warning = warn_in_python});
              else
                metrics = model.evaluate(view_of(std::get<Input>(x)), view_of(*y), batch_size);
            }
            if (PyErr_Occurred() != nullptr) throw nb::python_error();
            return metrics_dict(metrics, ember::is_classification(model.compile_options().loss));
          },
          "x"_a, "y"_a.none(), "batch_size"_a)
      .def("save", &ember::Sequential::save, "path"_a, nb::call_guard<nb::gil_scoped_release>(),
           "Writes the model to a safetensors checkpoint (the CLI's format; PyTorch loads it)")
      .def_static("load", &ember::Sequential::load, "path"_a, "Reads a checkpoint written by save or `ember train`")
      .def("export_onnx", &ember::Sequential::export_onnx, "path"_a, nb::call_guard<nb::gil_scoped_release>(),
           "Writes the model as one ONNX graph, preprocessing included (docs/deploying.md)")
      .def("_to_bytes", &to_bytes)
      .def("_set_column_names", &ember::Sequential::set_column_names, "features"_a, "targets"_a)
      .def("set_classes", &ember::Sequential::set_classes, "labels"_a,
           "Names the classes of a classifier trained on class indices: class i is labels[i] (in classes, "
           "checkpoints and ONNX export)")
      .def_static("_from_bytes", &from_bytes)
      .def("build", &ember::Sequential::build, "inputs"_a)
      .def_prop_ro("parameter_count", [](const ember::Sequential& s) { return s.parameter_count(); })
      .def("_layer_parameter_count", [](const ember::Sequential& s, std::size_t l) { return s.parameter_count(l); })
      .def_prop_ro("layers", &ember::Sequential::layers)
      .def_prop_ro("clip_norm", [](const ember::Sequential& s) { return s.compile_options().clip_norm; })
      .def_prop_ro("built", &ember::Sequential::built)
      .def_prop_ro("schedule", [](const ember::Sequential& s) { return s.compile_options().schedule; })
      .def_prop_ro("_base_rate",
                   [](const ember::Sequential& s) { return ember::learning_rate(s.compile_options().optimizer); })
      .def_prop_ro("epochs_completed", &ember::Sequential::epochs_completed)
      .def_prop_ro("member_count", &ember::Sequential::member_count,
                   "The networks whose predictions are averaged (fit(members=...))")
      .def_prop_ro("linear_share", &ember::Sequential::linear_share,
                   "A blend's linear model's share of the predictions (fit(compare_linear=True)); 0 for the layers "
                   "alone")
      .def_prop_ro("input_width", [](const ember::Sequential& s) { return s.input_width(); })
      .def_prop_ro("output_width", &ember::Sequential::output_width)
      .def_prop_ro("backend_name", &ember::Sequential::backend_name)
      .def_prop_ro("classification",
                   [](const ember::Sequential& s) { return ember::is_classification(s.compile_options().loss); })
      .def_prop_ro("classes", &ember::Sequential::classes)
      .def_prop_ro("feature_names", &ember::Sequential::feature_names)
      .def_prop_ro("target_names", &ember::Sequential::target_names)
      .def("_get_weights",
           [](const ember::Sequential& s) {
             // (layer, [(name, tensor), ...]) for each layer that has parameters, as the checkpoint
             // holds them, in the layer's order.
             nb::list out;
             if (!s.built()) return out;
             for (std::size_t l = 0; l < s.layers().size(); ++l) {
               nb::list tensors;
               for (const std::string& name : s.tensor_names(l)) {
                 const ember::ConstView v = s.tensor(l, name);
                 tensors.append(nb::make_tuple(
                     name, to_numpy(ember::Matrix(v.rows, v.cols, std::span<const float>(v.data, v.size())))));
               }
               if (tensors.size() > 0) out.append(nb::make_tuple(l, tensors));  // Dropout: no weights, as in Keras
             }
             return out;
           })
      .def("_set_tensor", [](ember::Sequential& s, std::size_t layer, const std::string& name, const Input& values) {
        const ember::ConstView v = view_of(values);
        s.set_tensor(layer, name, ember::Matrix(v.rows, v.cols, std::span<const float>(v.data, v.size())));
      });

  // Where the engine reads an array (the tests check that float32 C-contiguous data is not copied).
  m.def("_address", [](const Input& x) { return reinterpret_cast<std::uintptr_t>(x.data()); });
  m.def("cuda_unavailable_reason", &ember::cuda_unavailable_reason);
  m.def("describe_devices", &ember::describe_devices);
  m.def("activation_names", &ember::activation_names,
        "The activations a Dense layer takes by name: linear, relu, leaky_relu, gelu, gelu_tanh, silu, tanh, "
        "sigmoid (PyTorch's formulas).");
  m.def("onnx_export_available", &ember::onnx_export_available,
        "Whether this build writes ONNX files (export_onnx); it needs libonnx-dev at build time.");
  m.def("layer_names", &ember::layer_names,
        "The kinds of layer a Sequential model stacks: dense, dropout, layernorm, embedding, batchnorm, ...");
  m.def(
      "layer_class_names",
      [] {
        std::vector<std::string> names;
        for (const ember::LayerKind& kind : layer_kinds()) names.push_back(kind.keras_name);
        return names;
      },
      "Each kind of layer's class in this module, in layer_names()' order.");
  m.def(
      "loss_class_names",
      [] {
        std::vector<std::string> names;
        for (const ember::LossKind& kind : loss_kinds()) names.push_back(kind.keras_name);
        return names;
      },
      "Each loss's class in this module, in loss_names()' order.");
  m.def(
      "optimizer_class_names",
      [] {
        std::vector<std::string> names;
        for (const ember::OptimizerKind& kind : optimizer_kinds()) names.push_back(kind.class_name);
        return names;
      },
      "Each optimizer's class in this module, in optimizer_names()' order.");
  m.def(
      "schedule_class_names",
      [] {
        std::vector<std::string> names;
        for (const ember::ScheduleKind& kind : schedule_kinds()) names.push_back(kind.class_name);
        return names;
      },
      "Each schedule's class in this module, in schedule_names()' order.");
  m.def("set_num_threads", &ember::set_num_threads, nb::arg("threads"),
        "Sets the most CPU threads an operation may use, for the whole process (0: the default).");
  m.def("get_num_threads", &ember::num_threads,
        "The most CPU threads an operation may use: set_num_threads, else EMBER_NUM_THREADS, else "
        "OMP_NUM_THREADS, else the usable cores. Ember uses fewer for small work and while other processes "
        "keep the cores busy.");
}
