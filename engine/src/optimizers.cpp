#include "ember/optimizers.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "ember/error.hpp"

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

std::string optimizer_name(const Optimizer& optimizer) {
  return std::visit(Overloaded{[](const SGD&) { return "sgd"; }, [](const Adam&) { return "adam"; },
                               [](const AdamW&) { return "adamw"; }},
                    optimizer);
}

void check_optimizer(const Optimizer& optimizer) {
  std::visit(Overloaded{[](const SGD& sgd) {
                          require(sgd.lr > 0.0f, "SGD", "lr", sgd.lr, "a finite number > 0");
                          require(sgd.momentum >= 0.0f, "SGD", "momentum", sgd.momentum, "a finite number >= 0");
                          require(sgd.weight_decay >= 0.0f, "SGD", "weight_decay", sgd.weight_decay,
                                  "a finite number >= 0");
                          if (sgd.nesterov && sgd.momentum == 0.0f)
                            throw SettingError("SGD::nesterov", "needs a momentum > 0");
                        },
                        [](const Adam& adam) { check_adam(adam, "Adam"); },
                        [](const AdamW& adam) { check_adam(adam, "AdamW"); }},
             optimizer);
}

float learning_rate(const Optimizer& optimizer) {
  return std::visit([](const auto& settings) { return settings.lr; }, optimizer);
}

std::vector<std::string> optimizer_state_names(const Optimizer& optimizer) {
  if (const auto* sgd = std::get_if<SGD>(&optimizer))
    return sgd->momentum != 0.0f ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
  return {"exp_avg", "exp_avg_sq"};
}

}  // namespace ember
