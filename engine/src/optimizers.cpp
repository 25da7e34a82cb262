#include "ember/optimizers.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>
#include <optional>

#include "ember/backend.hpp"
#include "ember/error.hpp"
#include "optimizer_math.hpp"
#include "optimizer_part.hpp"
#include "part_names.hpp"
#include "settings_json.hpp"

namespace ember {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

bool finite_float(float value) {
  return std::isfinite(value);
}

void require(bool ok, const char* type, const char* field, float value, const char* range) {
  if (!ok || !finite_float(value))
    throw SettingError(fmt::format("{}::{}", type, field), fmt::format("{}: must be {}", value, range));
}

template <typename AdamLike>
void check_adam(const AdamLike& adam, const char* type) {
  require(adam.lr > 0.0f, type, "lr", adam.lr, "a finite number > 0");
  require(adam.beta1 >= 0.0f && adam.beta1 < 1.0f, type, "beta1", adam.beta1, "in [0, 1)");
  require(adam.beta2 >= 0.0f && adam.beta2 < 1.0f, type, "beta2", adam.beta2, "in [0, 1)");
  require(adam.eps > 0.0f, type, "eps", adam.eps, "a finite number > 0");
  require(adam.weight_decay >= 0.0f, type, "weight_decay", adam.weight_decay, "a finite number >= 0");
}

}  // namespace

std::string settings_json(const Optimizer& optimizer) {
  return to_json(optimizer).dump();
}

std::string optimizer_name(const Optimizer& optimizer) {
  return part_names::name_of(optimizer);
}

std::vector<std::string> optimizer_names() {
  return part_names::names<Optimizer>();
}

Optimizer optimizer_named(const std::string& name) {
  return part_names::named<Optimizer>(name, "optimizer");
}

void check_optimizer(const Optimizer& optimizer) {
  std::visit(
      Overloaded{
          [](const SGD& sgd) {
            require(sgd.lr > 0.0f, "SGD", "lr", sgd.lr, "a finite number > 0");
            require(sgd.momentum >= 0.0f, "SGD", "momentum", sgd.momentum, "a finite number >= 0");
            require(sgd.weight_decay >= 0.0f, "SGD", "weight_decay", sgd.weight_decay, "a finite number >= 0");
            if (sgd.nesterov && sgd.momentum == 0.0f) throw SettingError("SGD::nesterov", "needs a momentum > 0");
          },
          [](const Adam& adam) { check_adam(adam, "Adam"); }, [](const AdamW& adam) { check_adam(adam, "AdamW"); },
          [](const RMSprop& rms) {
            require(rms.lr > 0.0f, "RMSprop", "lr", rms.lr, "a finite number > 0");
            require(rms.alpha >= 0.0f && rms.alpha < 1.0f, "RMSprop", "alpha", rms.alpha, "in [0, 1)");
            require(rms.eps > 0.0f, "RMSprop", "eps", rms.eps, "a finite number > 0");
            require(rms.weight_decay >= 0.0f, "RMSprop", "weight_decay", rms.weight_decay, "a finite number >= 0");
            require(rms.momentum >= 0.0f, "RMSprop", "momentum", rms.momentum, "a finite number >= 0");
          }},
      optimizer);
}

float learning_rate(const Optimizer& optimizer) {
  return std::visit([](const auto& settings) { return settings.lr; }, optimizer);
}

std::vector<std::string> optimizer_state_names(const Optimizer& optimizer) {
  return optimizer_parts::visit(optimizer, [](auto part, const auto& settings) {
    using Part = decltype(part);
    return std::vector<std::string>(Part::state_names, Part::state_names + Part::states(settings));
  });
}

SettingsJson to_json(const Optimizer& optimizer) {
  SettingsJson json = {{"type", optimizer_name(optimizer)}};
  std::visit(Overloaded{[&](const SGD& s) {
                          json.update({{"lr", s.lr},
                                       {"momentum", s.momentum},
                                       {"nesterov", s.nesterov},
                                       {"weight_decay", s.weight_decay}});
                        },
                        [&](const RMSprop& s) {
                          json.update({{"lr", s.lr},
                                       {"alpha", s.alpha},
                                       {"eps", s.eps},
                                       {"weight_decay", s.weight_decay},
                                       {"momentum", s.momentum}});
                        },
                        [&](const auto& adam) {
                          json.update({{"lr", adam.lr},
                                       {"beta1", adam.beta1},
                                       {"beta2", adam.beta2},
                                       {"eps", adam.eps},
                                       {"weight_decay", adam.weight_decay}});
                        }},
             optimizer);
  return json;
}

Optimizer optimizer_from_json(const SettingsJson& json) {
  Optimizer optimizer = optimizer_named(json.value("type", std::string(SGD::kName)));
  const auto adam = [&](auto& settings) {
    settings.lr = settings_float(json, "lr");
    settings.beta1 = settings_float(json, "beta1");
    settings.beta2 = settings_float(json, "beta2");
    settings.eps = settings_float(json, "eps");
    settings.weight_decay = settings_float(json, "weight_decay");
  };
  std::visit(Overloaded{[&](SGD& sgd) {
                          sgd = {.lr = settings_float(json, "lr"),
                                 .momentum = settings_float(json, "momentum"),
                                 .nesterov = json.at("nesterov").get<bool>(),
                                 .weight_decay = settings_float(json, "weight_decay")};
                        },
                        [&](Adam& settings) { adam(settings); }, [&](AdamW& settings) { adam(settings); },
                        [&](RMSprop& rmsprop) {
                          rmsprop = {.lr = settings_float(json, "lr"),
                                     .alpha = settings_float(json, "alpha"),
                                     .eps = settings_float(json, "eps"),
                                     .weight_decay = settings_float(json, "weight_decay"),
                                     .momentum = settings_float(json, "momentum")};
                        }},
             optimizer);
  return optimizer;
}

namespace optimizer_part {

void enqueue_update(Backend& backend, const Optimizer& optimizer, float* parameters, const float* gradients,
                    float* state, std::int64_t region, std::int64_t count, OptimizerScalars* scalars) {
  // The step count first (Adam's bias correction), on the backend.
  if (counts_steps(optimizer)) backend.advance_cursor(&scalars->step, 1);
  backend.optimizer_update(optimizer, parameters, gradients, state, region, count, scalars);
}

bool counts_steps(const Optimizer& optimizer) {
  return optimizer_parts::visit(optimizer, [](auto part, const auto&) { return decltype(part)::counts_steps; });
}

}  // namespace optimizer_part

}  // namespace ember
