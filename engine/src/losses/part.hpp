#pragma once
// What every loss part (losses/NAME.hpp) shares: the declaration of Part, a setting's description,
// and the ops of a loss of each element's error. loss_part.cpp includes every part through the
// generated loss_parts.hpp, so that a loss's part is one file of this folder.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>

#include "ember/error.hpp"
#include "ember/layer_op.hpp"
#include "ember/losses.hpp"
#include "shape_checks.hpp"

namespace ember::loss_part {

/// One part per kind of loss: the members loss_part.cpp reads. keras_name and meaning (LossKind),
/// classification (targets are class labels; else one target per output), settings (the numeric
/// settings, Setting<Settings>, in the order the op and the command line take them), check (throws
/// SettingError for a value out of range) and op, a LayerOp: in prediction (rows, outputs), target
/// (rows, target width); out sums (1, sums width), accumulated; gradient (rows, outputs) of the
/// batch's mean loss, or a View with null data. Its settings are the settings' values.
template <typename Settings>
struct Part;

/// A loss's numeric setting: its name (the checkpoint's key, Python's keyword) and where it is.
template <typename Settings>
struct Setting {
  const char* name;
  float Settings::*member;
};

/// The op of a regression loss that is a function of each element's error e = p - t:
/// Math::loss(e, settings) and Math::gradient(e, settings) = d loss / d e, in Real. in: prediction,
/// target (rows, cols); out: sums (1, 3 cols), gradient (rows, cols) or null. Per column c, sums[c]
/// += the sum over rows of the loss, sums[cols + c] += the sum of e^2 (R^2), sums[2 cols + c] += the
/// sum of |e| (the MAE); gradient = Math::gradient(e) / (rows cols), the mean's derivative. The
/// loops are the float64 reference, which the fast CPU path runs too (one pass over the batch).
template <typename Math>
struct ErrorLossOps {
  static void check(const OpArgs& a) {
    if (a.in.size() != 2 || a.out.size() != 2)
      throw Error("a regression loss's op takes a prediction and a target, and writes sums and a gradient");
    const ConstView p = a.in[0];
    check_same_shape(p, a.in[1], "regression loss");
    if (a.out[0].size() != 3 * p.cols)
      throw Error(
          fmt::format("regression loss: {} sums for {} columns; they must be 3 per column", a.out[0].size(), p.cols));
    if (a.out[1].data != nullptr) check_same_shape(p, a.out[1], "regression loss");
  }
  static void reference(const OpArgs& a) {
    const ConstView p = a.in[0], t = a.in[1];
    float* sums = a.out[0].data;
    float* gradient = a.out[1].data;
    const std::int64_t cols = p.cols;
    const double scale = 1.0 / static_cast<double>(p.size());
    for (std::int64_t j = 0; j < cols; ++j) {
      double loss = 0.0, squared = 0.0, absolute = 0.0;
      for (std::int64_t i = 0; i < p.rows; ++i) {
        const std::int64_t at = i * cols + j;
        const double e = static_cast<double>(p.data[at]) - t.data[at];
        loss += Math::template loss<double>(e, a.settings);
        squared += e * e;
        absolute += std::abs(e);
        if (gradient != nullptr)
          gradient[at] = static_cast<float>(scale * Math::template gradient<double>(e, a.settings));
      }
      sums[j] = static_cast<float>(sums[j] + loss);
      sums[cols + j] = static_cast<float>(sums[cols + j] + squared);
      sums[2 * cols + j] = static_cast<float>(sums[2 * cols + j] + absolute);
    }
  }
};

}  // namespace ember::loss_part
