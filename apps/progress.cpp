#include "progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli_common.hpp"

namespace ember::cli {
namespace {

constexpr int kBarWidth = 30;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

std::string bar(std::int64_t done, std::int64_t total) {
  const auto filled = total > 0 ? static_cast<int>(kBarWidth * done / total) : kBarWidth;
  std::string text(static_cast<std::size_t>(filled), '=');
  if (filled < kBarWidth) text += '>';
  text.resize(kBarWidth, '.');
  return text;
}

std::string figures(const EpochRecord& record) {
  std::string text;
  for (const auto& [name, value] : epoch_figures(record))
    text += fmt::format("{}{}: {}", text.empty() ? "" : " - ", name,
                        name.ends_with("r2") || name.ends_with("accuracy") ? fmt::format("{:.4f}", value)
                                                                           : fmt::format("{:.4g}", value));
  return text;
}

}  // namespace

ProgressMode parse_progress(const std::string& text, const Communicator& world) {
  if (text == "bar") return ProgressMode::bar;
  if (text == "lines") return ProgressMode::lines;
  if (text == "none") return ProgressMode::none;
  // Launchers set these in every process they start, one rank or many.
  const bool launched = world.size() > 1 || std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr ||
                        std::getenv("PMI_SIZE") != nullptr || std::getenv("SLURM_STEP_ID") != nullptr;
  return isatty(fileno(stdout)) != 0 && !launched ? ProgressMode::bar : ProgressMode::lines;
}

Progress::Progress(std::int64_t first_epoch, std::int64_t epochs, ProgressMode mode)
    : first_epoch_(first_epoch), epochs_(epochs), mode_(mode), current_epoch_(first_epoch) {}

void Progress::on_batch(std::int64_t batch, std::int64_t batches) {
  batches_ = batches;
  if (mode_ != ProgressMode::bar) return;
  if (!epoch_started_) {
    std::printf("Epoch %lld/%lld\n", static_cast<long long>(current_epoch_),
                static_cast<long long>(first_epoch_ + epochs_ - 1));
    epoch_started_ = true;
  }
  const auto now = std::chrono::steady_clock::now();
  if (batch < batches && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  std::printf("\r%lld/%lld [%s]", static_cast<long long>(batch), static_cast<long long>(batches),
              bar(batch, batches).c_str());
  std::fflush(stdout);
}

void Progress::restart(std::int64_t first_epoch, std::int64_t epochs) {
  epochs_ = epochs;
  first_epoch_ = current_epoch_ = first_epoch;
  epoch_started_ = false;
}

void Progress::on_epoch_end(const EpochRecord& record) {
  current_epoch_ = record.epoch + 1;
  epoch_started_ = false;
  if (mode_ == ProgressMode::none) return;
  const std::string time = format_seconds(record.seconds);
  if (mode_ == ProgressMode::bar) {
    std::printf("\r%lld/%lld [%s] - %s - %s\n", static_cast<long long>(batches_), static_cast<long long>(batches_),
                bar(1, 1).c_str(), time.c_str(), figures(record).c_str());
  } else {
    std::printf("Epoch %lld/%lld - %s - %s\n", static_cast<long long>(record.epoch),
                static_cast<long long>(first_epoch_ + epochs_ - 1), time.c_str(), figures(record).c_str());
  }
  std::fflush(stdout);
}

}  // namespace ember::cli
