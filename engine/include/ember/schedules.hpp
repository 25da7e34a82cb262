#pragma once
// Learning-rate schedules: each epoch trains at the optimizer's lr times a factor the schedule
// gives for it. Epochs count from 0 across fits (a resumed run continues the schedule), as PyTorch's
// schedulers stepped once an epoch.
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ember {

/// The optimizer's rate in every epoch.
struct ConstantRate {
  static constexpr const char* kName = "constant";
  bool operator==(const ConstantRate&) const = default;
};

/// torch.optim.lr_scheduler.StepLR: the factor is gamma^floor(epoch / step_epochs).
struct StepDecay {
  static constexpr const char* kName = "step";
  std::int64_t step_epochs = 10;
  float gamma = 0.1f;
  bool operator==(const StepDecay&) const = default;
};

/// A linear warm-up over warmup_epochs (factor (epoch + 1) / warmup_epochs), then
/// torch.optim.lr_scheduler.CosineAnnealingLR over the remaining epochs - warmup_epochs: the
/// factor falls from 1 to min_scale along half a cosine and stays at min_scale after.
struct CosineDecay {
  static constexpr const char* kName = "cosine";
  std::int64_t epochs = 100;
  std::int64_t warmup_epochs = 0;
  float min_scale = 0.0f;
  bool operator==(const CosineDecay&) const = default;
};

/// torch.optim.lr_scheduler.ReduceLROnPlateau on the validation loss (the training loss without a
/// validation split), mode "min", threshold_mode "rel": after patience epochs without a loss below
/// best * (1 - threshold), the factor is multiplied by factor, down to min_scale.
struct ReduceOnPlateau {
  static constexpr const char* kName = "plateau";
  float factor = 0.1f;
  std::int64_t patience = 10;
  double threshold = 1e-4;
  float min_scale = 0.0f;
  bool operator==(const ReduceOnPlateau&) const = default;
};

using Schedule = std::variant<ConstantRate, StepDecay, CosineDecay, ReduceOnPlateau>;

/// What a schedule carries from epoch to epoch (ReduceOnPlateau's); kept by the model and its
/// checkpoints.
struct ScheduleState {
  float scale = 1.0f;
  double best = std::numeric_limits<double>::infinity();
  std::int64_t bad_epochs = 0;
  bool operator==(const ScheduleState&) const = default;
};

/// "constant", "step", "cosine" or "plateau" (each kind's kName).
std::string schedule_name(const Schedule& schedule);
/// Every schedule's name, in the Schedule variant's order.
std::vector<std::string> schedule_names();
/// The schedule a name spells, with its default settings; InputError listing the names otherwise.
Schedule schedule_named(const std::string& name);
/// The settings as a checkpoint stores them: the text of a JSON object, {"type": "constant", ...}.
std::string settings_json(const Schedule& schedule);
/// Throws SettingError (e.g. "StepDecay::gamma") for a setting out of range.
void check_schedule(const Schedule& schedule);
/// What the front ends show of a schedule: its name, its class name in Python, what it does, its
/// settings' names in its struct's order, and which of them are whole counts (epochs) rather than
/// numbers.
struct ScheduleKind {
  std::string name, class_name, meaning;
  std::vector<std::string> settings, whole;
};
/// Every kind's, in Schedule's order.
std::vector<ScheduleKind> schedule_kinds();
/// The schedule of kind name with the settings given by name and the others at their defaults,
/// checked; InputError for an unknown kind or setting, a count that is not whole, or a bad value.
Schedule make_schedule(const std::string& name, const std::vector<std::pair<std::string, double>>& settings);
/// The value of one of the schedule's settings; InputError for another name.
double schedule_setting(const Schedule& schedule, const std::string& name);
/// "StepDecay(step_epochs=10, gamma=0.1)": the Python class's constructor.
std::string describe(const Schedule& schedule);
/// The factor of epoch (counted from 0) for the rate.
float schedule_scale(const Schedule& schedule, std::int64_t epoch, const ScheduleState& state);
/// After an epoch: ReduceOnPlateau's bookkeeping with the epoch's monitored loss.
void schedule_observe(const Schedule& schedule, double loss, ScheduleState& state);

}  // namespace ember
