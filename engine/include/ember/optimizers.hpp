#pragma once
// Optimizers, with PyTorch's formulas (torch.optim). Each updates all parameters in one flat
// buffer; the learning rate it applies is lr times the epoch's schedule factor (schedules.hpp).
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ember {

/// torch.optim.SGD: g = grad + weight_decay * w; with momentum, b = momentum * b + g and g = b
/// (g + momentum * b with Nesterov); w -= lr * g. State: the momentum buffer b (with momentum).
struct SGD {
  static constexpr const char* kName = "sgd";
  float lr = 0.01f;
  float momentum = 0.0f;
  bool nesterov = false;
  float weight_decay = 0.0f;
  bool operator==(const SGD&) const = default;
};

/// torch.optim.Adam: g = grad + weight_decay * w (L2 added to the gradient); m = beta1 m + (1 -
/// beta1) g; v = beta2 v + (1 - beta2) g^2; w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 -
/// beta2^t)) + eps), t the step count from 1 (eps outside the square root). State: m, v, t.
struct Adam {
  static constexpr const char* kName = "adam";
  float lr = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool operator==(const Adam&) const = default;
};

/// torch.optim.AdamW: Adam with decoupled weight decay, w -= lr * weight_decay * w before the
/// Adam step (the gradient is not changed).
struct AdamW {
  static constexpr const char* kName = "adamw";
  float lr = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
  bool operator==(const AdamW&) const = default;
};

/// torch.optim.RMSprop (not centered): g = grad + weight_decay * w; v = alpha * v + (1 - alpha) *
/// g^2; d = g / (sqrt(v) + eps); with momentum, b = momentum * b + d and w -= lr * b, else w -= lr *
/// d. State: v ("square_avg") and, with momentum, b ("momentum_buffer").
struct RMSprop {
  static constexpr const char* kName = "rmsprop";
  float lr = 0.01f;
  float alpha = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;
  bool operator==(const RMSprop&) const = default;
};

/// torch.optim.Adagrad (with its defaults lr_decay 0 and initial_accumulator_value 0): g = grad +
/// weight_decay w; s += g^2; w -= lr g / (sqrt(s) + eps). State: the sum of squared gradients s.
struct Adagrad {
  static constexpr const char* kName = "adagrad";
  float lr = 0.01f;
  float weight_decay = 0.0f;
  float eps = 1e-10f;
  bool operator==(const Adagrad&) const = default;
};

using Optimizer = std::variant<SGD, Adam, AdamW, RMSprop, Adagrad>;

/// What an optimizer step reads when it runs rather than when it is recorded, so that a recorded
/// step (a CUDA graph) stays valid for a whole run: the learning-rate factor of the epoch (a
/// schedule's; the rate applied is the optimizer's lr times it) and the step count, 1 at the first
/// update (Adam's bias correction). One per plan, in backend memory.
struct OptimizerScalars {
  float lr_scale = 1.0f;
  std::int32_t step = 0;
};

/// "sgd", "adam", "adamw", "rmsprop", "adagrad" (each kind's kName).
std::string optimizer_name(const Optimizer& optimizer);
/// Every optimizer's name, in the Optimizer variant's order.
std::vector<std::string> optimizer_names();
/// The optimizer a name spells (optimizer_names()), with its default settings;
/// InputError listing the names otherwise.
Optimizer optimizer_named(const std::string& name);
/// The settings as a checkpoint stores them: the text of a JSON object, {"type": "sgd", ...}.
std::string settings_json(const Optimizer& optimizer);
/// Throws InputError naming the setting (e.g. "Adam::beta2 1.5 must be in [0, 1)") when a value is
/// out of range or not a finite float.
void check_optimizer(const Optimizer& optimizer);
/// What the front ends show of an optimizer: its name, its class name in Python (torch.optim's),
/// its settings' names in its struct's order, and which of them are switches (true or false:
/// SGD's nesterov) rather than numbers.
struct OptimizerKind {
  std::string name, class_name;
  std::vector<std::string> settings, switches;
};
/// Every kind's, in Optimizer's order.
std::vector<OptimizerKind> optimizer_kinds();
/// The optimizer of kind name with the settings (a switch: 0 or 1) given by name and the others at
/// their defaults, checked; InputError for an unknown kind or setting, or a bad value.
Optimizer make_optimizer(const std::string& name, const std::vector<std::pair<std::string, double>>& settings);
/// The value of one of the optimizer's settings (a switch: 0 or 1); InputError for another name.
double optimizer_setting(const Optimizer& optimizer, const std::string& name);
/// "SGD(lr=0.01, momentum=0, nesterov=False, weight_decay=0)": the Python class's constructor.
std::string describe(const Optimizer& optimizer);
/// The optimizer's learning rate (its base rate, before any schedule).
float learning_rate(const Optimizer& optimizer);
/// The names of its state buffers, each of the parameters' layout, as its checkpoint calls them
/// (PyTorch's state_dict names): "momentum_buffer" for SGD with momentum, "exp_avg" and
/// "exp_avg_sq" for Adam and AdamW, "square_avg" (and "momentum_buffer") for RMSprop, "sum" for
/// Adagrad.
std::vector<std::string> optimizer_state_names(const Optimizer& optimizer);

}  // namespace ember
