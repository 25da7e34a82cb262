#pragma once
// fmt formatting of Ember's values: fmt::format("{}", matrix) gives to_string(matrix). A separate
// header, so that the library's other headers need no fmt.
#include <fmt/format.h>

#include "ember/tensor.hpp"

template <>
struct fmt::formatter<ember::Matrix> : fmt::formatter<std::string> {
  auto format(const ember::Matrix& matrix, fmt::format_context& context) const {
    return fmt::formatter<std::string>::format(ember::to_string(matrix), context);
  }
};
