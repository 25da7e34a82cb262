#pragma once
// An SVG line chart of training and validation loss per epoch, readable as it is in a browser.
#include <string>

#include "ember/model.hpp"

namespace ember::cli {

/// The whole SVG document. The loss axis is logarithmic when the losses span more than 100x.
std::string loss_plot_svg(const History& history, const std::string& title);

}  // namespace ember::cli
