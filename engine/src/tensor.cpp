#include "ember/tensor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>

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
  if (rows < 0 || cols < 0) throw InputError(fmt::format("matrix shape ({}, {}) is negative", rows, cols));
  values_.assign(static_cast<std::size_t>(rows * cols), value);
}

Matrix::Matrix(std::int64_t rows, std::int64_t cols, std::span<const float> values) : Matrix(rows, cols) {
  if (static_cast<std::int64_t>(values.size()) != rows * cols)
    throw InputError(fmt::format("a ({}, {}) matrix takes {} values, not {}", rows, cols, rows * cols, values.size()));
  std::copy(values.begin(), values.end(), values_.begin());
}

Matrix::Matrix(std::int64_t rows, std::int64_t cols, std::initializer_list<float> values)
    : Matrix(rows, cols, std::span<const float>(values.begin(), values.size())) {}

float& Matrix::at(std::int64_t row, std::int64_t col) {
  if (row < 0 || row >= rows_ || col < 0 || col >= cols_)
    throw InputError(fmt::format("element ({}, {}) is outside a ({}, {}) matrix", row, col, rows_, cols_));
  return (*this)(row, col);
}

float Matrix::at(std::int64_t row, std::int64_t col) const {
  return const_cast<Matrix&>(*this).at(row, col);
}

std::span<float> Matrix::row(std::int64_t r) {
  if (r < 0 || r >= rows_) throw InputError(fmt::format("row {} is outside a ({}, {}) matrix", r, rows_, cols_));
  return {values_.data() + r * cols_, static_cast<std::size_t>(cols_)};
}

std::span<const float> Matrix::row(std::int64_t r) const {
  return const_cast<Matrix&>(*this).row(r);
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

std::string to_string(const Matrix& m) {
  std::string text = "[";
  for (std::int64_t r = 0; r < m.rows(); ++r) {
    text += r > 0 ? ", [" : "[";
    for (std::int64_t c = 0; c < m.cols(); ++c) text += fmt::format("{}{}", c > 0 ? ", " : "", m(r, c));
    text += "]";
  }
  return text + "]";
}

std::ostream& operator<<(std::ostream& out, const Matrix& matrix) {
  return out << to_string(matrix);
}

Matrix Matrix::take_rows(const std::vector<std::int64_t>& indices) const {
  return take_rows(view(), indices);
}

Matrix Matrix::take_rows(ConstView view, const std::vector<std::int64_t>& indices) {
  Matrix out(static_cast<std::int64_t>(indices.size()), view.cols);
  for (std::size_t r = 0; r < indices.size(); ++r)
    std::copy_n(view.data + indices[r] * view.cols, view.cols, out.data() + static_cast<std::int64_t>(r) * view.cols);
  return out;
}

}  // namespace ember
