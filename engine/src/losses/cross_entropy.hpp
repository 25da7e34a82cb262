#pragma once
// CrossEntropy: torch.nn.CrossEntropyLoss, or BCEWithLogitsLoss on one logit.
#include "losses/part.hpp"

namespace ember::loss_part {

/// in: logits (rows, k), labels (rows, 1: class indices as floats, 0 to classes - 1); out: sums (1,
/// 2), gradient (rows, k) or null; settings: label_smoothing eps. k == 1, two classes: z is the logit
/// of class 1, loss max(z, 0) - z y' + log1p(exp(-|z|)) with y' = y (1 - eps) + eps / 2, gradient
/// (sigmoid(z) - y') / rows, predicted class 1 where z > 0. k >= 2: loss logsumexp(z) - (1 - eps)
/// z_y - eps mean(z), gradient (softmax(z) - (1 - eps) onehot(y) - eps / k) / rows, predicted class
/// the first largest logit. sums[0] += the sum of the rows' losses, sums[1] += the rows whose
/// predicted class is y. The float64 loops are the reference, which the fast CPU path runs too.
struct CrossEntropyOps {
  static void check(const OpArgs& a) {
    if (a.in.size() != 2 || a.out.size() != 2 || a.settings.size() != 1)
      throw Error("cross_entropy_loss: takes logits and labels, writes sums and a gradient, and label_smoothing");
    const ConstView logits = a.in[0], labels = a.in[1];
    if (labels.cols != 1 || labels.rows != logits.rows)
      throw Error(fmt::format("cross_entropy_loss: labels ({}, {}) for logits ({}, {}); they must be ({}, 1)",
                              labels.rows, labels.cols, logits.rows, logits.cols, logits.rows));
    if (a.out[0].size() != 2) throw Error(fmt::format("cross_entropy_loss: {} sums; it writes 2", a.out[0].size()));
    if (a.out[1].data != nullptr) check_same_shape(logits, a.out[1], "cross_entropy_loss");
  }
  static void reference(const OpArgs& a) {
    const ConstView logits = a.in[0], labels = a.in[1];
    float* sums = a.out[0].data;
    float* gradient = a.out[1].data;
    const std::int64_t k = logits.cols, classes = std::max<std::int64_t>(k, 2);
    const double scale = 1.0 / static_cast<double>(logits.rows), eps = a.settings[0];
    double loss = 0.0, correct = 0.0;
    for (std::int64_t i = 0; i < logits.rows; ++i) {
      const float label = labels.data[i];
      const auto y = static_cast<std::int64_t>(label);
      if (!(label >= 0.0f) || static_cast<float>(y) != label || y >= classes)
        throw Error(
            fmt::format("cross_entropy_loss: row {} has label {}, not a class index below {}", i, label, classes));
      const float* z = logits.data + i * k;
      if (k == 1) {
        const double logit = z[0], target = static_cast<double>(y) * (1.0 - eps) + eps / 2;
        loss += std::max(logit, 0.0) - logit * target + std::log1p(std::exp(-std::abs(logit)));
        correct += (logit > 0.0) == (y == 1) ? 1.0 : 0.0;
        if (gradient != nullptr) gradient[i] = static_cast<float>(scale * (1.0 / (1.0 + std::exp(-logit)) - target));
        continue;
      }
      std::int64_t predicted = 0;
      for (std::int64_t c = 1; c < k; ++c)
        if (z[c] > z[predicted]) predicted = c;
      const double largest = z[predicted];
      double sum = 0.0, logits_sum = 0.0;
      for (std::int64_t c = 0; c < k; ++c) {
        sum += std::exp(static_cast<double>(z[c]) - largest);
        logits_sum += z[c];
      }
      const double logsumexp = largest + std::log(sum);
      loss += logsumexp - (1.0 - eps) * z[y] - eps * logits_sum / static_cast<double>(k);
      correct += predicted == y ? 1.0 : 0.0;
      if (gradient != nullptr)
        for (std::int64_t c = 0; c < k; ++c)
          gradient[i * k + c] = static_cast<float>(scale * (std::exp(static_cast<double>(z[c]) - logsumexp) -
                                                            (c == y ? 1.0 - eps : 0.0) - eps / static_cast<double>(k)));
    }
    sums[0] = static_cast<float>(sums[0] + loss);
    sums[1] = static_cast<float>(sums[1] + correct);
  }
};

template <>
struct Part<CrossEntropy> {
  static constexpr const char* keras_name = "CrossEntropy";
  static constexpr const char* meaning =
      "classification: the target holds class labels (torch.nn.CrossEntropyLoss, or BCEWithLogitsLoss for two "
      "classes; label_smoothing 0 unless given)";
  static constexpr bool classification = true;
  static constexpr std::array<Setting<CrossEntropy>, 1> settings{{{"label_smoothing", &CrossEntropy::label_smoothing}}};
  static void check(const CrossEntropy& loss) {
    if (!(loss.label_smoothing >= 0.0f && loss.label_smoothing < 1.0f))
      throw SettingError("CrossEntropy::label_smoothing", fmt::format("{}: must be in [0, 1)", loss.label_smoothing));
  }
  static constexpr LayerOp op{"cross_entropy_loss", CrossEntropyOps::check, CrossEntropyOps::reference};
};

}  // namespace ember::loss_part
