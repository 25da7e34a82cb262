#include "ember/tensor.hpp"

#include <fmt/format.h>

#include "ember/error.hpp"

namespace ember {

template <typename T>
BasicView<T> BasicView<T>::row_range(std::int64_t first, std::int64_t count) const {
  if (first < 0 || count < 0 || first + count > rows)
    throw Error(fmt::format("rows [{}, {}) are outside a view of {} rows", first, first + count, rows));
  return {data + first * cols, count, cols};
}
template struct BasicView<float>;
template struct BasicView<const float>;

Matrix::Matrix(std::int64_t rows, std::int64_t cols, float value) : rows_(rows), cols_(cols) {
  if (rows < 0 || cols < 0) throw Error(fmt::format("matrix shape ({}, {}) is negative", rows, cols));
  values_.assign(static_cast<std::size_t>(rows * cols), value);
}

Matrix::Matrix(std::initializer_list<std::initializer_list<float>> rows) {
  rows_ = static_cast<std::int64_t>(rows.size());
  cols_ = rows_ == 0 ? 0 : static_cast<std::int64_t>(rows.begin()->size());
  for (const auto& row : rows) {
    if (static_cast<std::int64_t>(row.size()) != cols_)
      throw InputError(fmt::format("matrix rows differ in length: {} and {}", cols_, row.size()));
    values_.insert(values_.end(), row.begin(), row.end());
  }
}

Matrix Matrix::take_rows(const std::vector<std::int64_t>& indices) const {
  Matrix out(static_cast<std::int64_t>(indices.size()), cols_);
  for (std::size_t r = 0; r < indices.size(); ++r)
    for (std::int64_t c = 0; c < cols_; ++c) out(static_cast<std::int64_t>(r), c) = (*this)(indices[r], c);
  return out;
}

}  // namespace ember
