#pragma once
// Matrices: 2-D float32, rows x cols, row-major.
//  - Matrix owns host memory; it is what users hand to fit/predict and get back.
//  - View / ConstView are non-owning windows on memory a Backend owns (host or device); the
//    backend ops take them. A view never frees anything.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace ember {

template <typename T>
struct BasicView {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  std::int64_t size() const { return rows * cols; }
  /// Element (row, col), unchecked; host memory only.
  T& operator()(std::int64_t row, std::int64_t col) const { return data[row * cols + col]; }
  /// Rows [first, first + count) of this view; throws if they are not inside it.
  BasicView row_range(std::int64_t first, std::int64_t count) const;
  template <typename U>
  requires(std::is_same_v<U, T> && !std::is_const_v<T>) operator BasicView<const U>() const {
    return {data, rows, cols};
  }
};
using View = BasicView<float>;
using ConstView = BasicView<const float>;

/// Host matrix owning its elements.
class Matrix {
 public:
  Matrix() = default;
  /// rows x cols elements equal to value. InputError for a negative shape.
  Matrix(std::int64_t rows, std::int64_t cols, float value = 0.0f);
  /// Matrix{{1, 2}, {3, 4}}: one initializer list per row; rows must have equal length.
  Matrix(std::initializer_list<std::initializer_list<float>> rows);
  /// rows x cols elements from values, row by row (a vector, an array, another buffer):
  /// InputError unless values holds exactly rows * cols of them.
  Matrix(std::int64_t rows, std::int64_t cols, std::span<const float> values);
  Matrix(std::int64_t rows, std::int64_t cols, std::initializer_list<float> values);

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t size() const { return rows_ * cols_; }
  float* data() { return values_.data(); }
  const float* data() const { return values_.data(); }
  float& operator()(std::int64_t row, std::int64_t col) { return values_[static_cast<std::size_t>(row * cols_ + col)]; }
  float operator()(std::int64_t row, std::int64_t col) const {
    return values_[static_cast<std::size_t>(row * cols_ + col)];
  }
  /// Element access with bounds checks: InputError naming the index and the shape.
  float& at(std::int64_t row, std::int64_t col);
  float at(std::int64_t row, std::int64_t col) const;
  /// Row r's elements; InputError outside the matrix.
  std::span<float> row(std::int64_t r);
  std::span<const float> row(std::int64_t r) const;
  View view() { return {data(), rows_, cols_}; }
  ConstView view() const { return {data(), rows_, cols_}; }
  /// A Matrix is accepted wherever a host ConstView is (fit, predict, evaluate take views, so
  /// that data already in memory, a numpy array say, is read where it lies).
  operator ConstView() const { return view(); }
  /// Copy of the listed rows, in order.
  Matrix take_rows(const std::vector<std::int64_t>& indices) const;
  /// Copy of the listed rows of a host view, in order.
  static Matrix take_rows(ConstView view, const std::vector<std::int64_t>& indices);
  bool operator==(const Matrix&) const = default;

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::vector<float> values_;
};

/// "[[1, 2], [3, 4]]": each value with enough digits to read back the same float. ember/format.hpp
/// makes it fmt's format of a Matrix; operator<< prints it (GoogleTest shows failing matrices so).
std::string to_string(const Matrix& matrix);
std::ostream& operator<<(std::ostream& out, const Matrix& matrix);

}  // namespace ember
