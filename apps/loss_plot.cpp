#include "loss_plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ember::cli {
namespace {

constexpr double kWidth = 720, kHeight = 420;
constexpr double kLeft = 80, kRight = 20, kTop = 40, kBottom = 50;

std::string escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '<')
      out += "&lt;";
    else if (ch == '>')
      out += "&gt;";
    else if (ch == '&')
      out += "&amp;";
    else
      out += ch;
  }
  return out;
}

}  // namespace

std::string loss_plot_svg(const History& history, const std::string& title) {
  double low = std::numeric_limits<double>::infinity(), high = -low;
  for (const EpochRecord& r : history.epochs) {
    low = std::min(low, r.loss);
    high = std::max(high, r.loss);
    if (r.val_loss) {
      low = std::min(low, *r.val_loss);
      high = std::max(high, *r.val_loss);
    }
  }
  if (history.epochs.empty()) low = 0, high = 1;
  const bool logarithmic = low > 0 && high / low > 100.0;
  const auto transform = [&](double v) { return logarithmic ? std::log10(v) : v; };
  double y_low = logarithmic ? std::floor(transform(low)) : std::min(0.0, low);
  double y_high = logarithmic ? std::ceil(transform(high)) : high;
  if (y_high <= y_low) y_high = y_low + 1;
  const double first = history.epochs.empty() ? 1 : static_cast<double>(history.epochs.front().epoch);
  const double last =
      history.epochs.empty() ? 2 : std::max(first + 1, static_cast<double>(history.epochs.back().epoch));
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const auto px = [&](double epoch) { return kLeft + (epoch - first) / (last - first) * plot_w; };
  const auto py = [&](double v) { return kTop + (1.0 - (transform(v) - y_low) / (y_high - y_low)) * plot_h; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">{3}</text>\n",
      kWidth, kHeight, kWidth / 2, escape(title));
  for (int i = 0; i <= 5; ++i) {  // horizontal grid and loss labels
    const double t = y_low + (y_high - y_low) * i / 5.0;
    const double value = logarithmic ? std::pow(10.0, t) : t;
    const double y = kTop + (1.0 - i / 5.0) * plot_h;
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, y,
                       kWidth - kRight, y);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", kLeft - 6, y + 4, value);
  }
  for (int i = 0; i <= 5; ++i) {  // epoch labels
    const double epoch = first + (last - first) * i / 5.0;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.0f}</text>\n", px(epoch),
                       kHeight - kBottom + 18, epoch);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n", kLeft + plot_w / 2, kHeight - 10);
  svg += fmt::format(
      "<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">loss (MSE{1})</text>\n",
      kTop + plot_h / 2, logarithmic ? ", log scale" : "");
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", kLeft,
                     kTop, plot_w, plot_h);

  const auto polyline = [&](bool validation, const char* colour) {
    std::string points;
    for (const EpochRecord& r : history.epochs) {
      if (validation && !r.val_loss) continue;
      const double v = validation ? *r.val_loss : r.loss;
      points += fmt::format("{:.1f},{:.1f} ", px(static_cast<double>(r.epoch)), py(v));
    }
    if (!points.empty())
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", colour, points);
    return !points.empty();
  };
  polyline(false, "#1f77b4");
  const bool has_validation = polyline(true, "#ff7f0e");
  svg += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
      "<text x=\"{3}\" y=\"{4}\">loss</text>\n",
      kWidth - kRight - 130, kTop + 16, kWidth - kRight - 105, kWidth - kRight - 100, kTop + 20);
  if (has_validation)
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>"
        "<text x=\"{3}\" y=\"{4}\">val_loss</text>\n",
        kWidth - kRight - 130, kTop + 34, kWidth - kRight - 105, kWidth - kRight - 100, kTop + 38);
  svg += "</svg>\n";
  return svg;
}

}  // namespace ember::cli
