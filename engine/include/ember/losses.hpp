#pragma once
// Losses, with PyTorch's formulas (torch.nn), each averaged over the batch. Each kind is a part
// (engine/src/losses/NAME.hpp: its settings, check and op; kernels/losses/NAME.cu: its kernel), so
// the names, checkpoint entries, command-line spellings and Python classes below follow from it.
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ember {

/// torch.nn.MSELoss: the mean over all elements of (prediction - target)^2. Regression: targets
/// are numbers (standardized when the model normalizes).
struct MeanSquaredError {
  static constexpr const char* kName = "mse";
  bool operator==(const MeanSquaredError&) const = default;
};

/// torch.nn.HuberLoss: per element 0.5 e^2 where |e| <= delta, else delta (|e| - delta / 2), the
/// mean over all elements; robust to outliers. Regression, as MeanSquaredError. With normalization
/// on, delta is in standardized units (standard deviations of the target).
struct Huber {
  static constexpr const char* kName = "huber";
  float delta = 1.0f;
  bool operator==(const Huber&) const = default;
};

/// torch.nn.L1Loss (Keras' MeanAbsoluteError): the mean over all elements of |prediction - target|.
/// Regression, as MeanSquaredError; the median rather than the mean is what it fits, so it resists
/// outliers without a setting. Its gradient at a zero error is 0, as torch's sign(0).
struct MeanAbsoluteError {
  static constexpr const char* kName = "mae";
  bool operator==(const MeanAbsoluteError&) const = default;
};

/// Classification: targets are class labels. With two classes the model has one output, the logit
/// of the second class, and the loss is torch.nn.BCEWithLogitsLoss (max(z, 0) - z y + log(1 +
/// exp(-|z|))); with more, one output per class and torch.nn.CrossEntropyLoss (logsumexp(z) - z_y).
/// label_smoothing eps in [0, 1) trains on targets (1 - eps) onehot(y) + eps / K for K classes, as
/// CrossEntropyLoss(label_smoothing=eps) (and, for two classes' one logit, Keras'
/// BinaryCrossentropy(label_smoothing=eps): the target y (1 - eps) + eps / 2). The training loss is
/// then the smoothed one; evaluate's log-loss is not.
struct CrossEntropy {
  static constexpr const char* kName = "crossentropy";
  float label_smoothing = 0.0f;
  bool operator==(const CrossEntropy&) const = default;
};

using Loss = std::variant<MeanSquaredError, Huber, MeanAbsoluteError, CrossEntropy>;
inline constexpr std::size_t kLossKinds = std::variant_size_v<Loss>;

/// "mse", "huber", "mae" or "crossentropy" (each kind's kName).
std::string loss_name(const Loss& loss);
/// Every loss's name, in the Loss variant's order.
std::vector<std::string> loss_names();
/// The loss a name spells, with its default settings; InputError listing the names otherwise.
Loss loss_named(const std::string& name);
/// The settings as a checkpoint stores them: the text of a JSON object, {"type": "mse", ...}.
std::string settings_json(const Loss& loss);
/// Throws SettingError (e.g. "Huber::delta 0: must be ...") for a setting out of range.
void check_loss(const Loss& loss);
bool is_classification(const Loss& loss);
/// What the front ends show of a kind of loss: its name, its spelling for parse_loss
/// ("huber[:DELTA]"), its class name in Python (Keras' where Keras has it), what it is for in a
/// phrase, its settings' names in the order parse_loss takes them, and whether it classifies
/// (targets are class labels) or regresses.
struct LossKind {
  std::string name, form, keras_name, meaning;
  std::vector<std::string> settings;
  bool classification = false;
};
/// Every kind's, in Loss's order.
std::vector<LossKind> loss_kinds();
/// The loss of kind name with the settings given by name and the others at their defaults,
/// checked; InputError for an unknown kind or setting, or a bad value.
Loss make_loss(const std::string& name, const std::vector<std::pair<std::string, double>>& settings);
/// The command line's spelling: NAME[:VALUE...], the values in LossKind::settings' order
/// ("huber:0.5", "crossentropy:0.1"); InputError naming the text and the forms otherwise.
Loss parse_loss(const std::string& text);
/// The value of one of the loss's settings (LossKind::settings); InputError for another name.
double loss_setting(const Loss& loss, const std::string& name);
/// "Huber(delta=0.5)", "MeanSquaredError()": the Python class's constructor.
std::string describe(const Loss& loss);
/// The model outputs a classification over this many classes needs: 1 for two classes (a single
/// logit), else one per class. InputError for fewer than two classes.
std::int64_t outputs_for_classes(std::int64_t classes);

}  // namespace ember
