#pragma once
// Losses, with PyTorch's formulas (torch.nn), each averaged over the batch.
#include <cstdint>
#include <string>
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

using Loss = std::variant<MeanSquaredError, Huber, CrossEntropy>;

/// "mse", "huber" or "crossentropy" (each kind's kName).
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
/// The model outputs a classification over this many classes needs: 1 for two classes (a single
/// logit), else one per class. InputError for fewer than two classes.
std::int64_t outputs_for_classes(std::int64_t classes);

}  // namespace ember
