#pragma once
// Matrices: 2-D float32, rows x cols, row-major.
//  - Matrix owns host memory; it is what users hand to fit/predict and get back.
//  - View / ConstView are non-owning windows on memory a Backend owns (host or device); the
//    backend ops take them. A view never frees anything.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace ember {

template <typename T>
struct BasicView {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  std::int64_t size() const { return rows * cols; }
  /// Rows [first, first + count) of this view; throws if they are not inside it.
  BasicView row_range(std::int64_t first, std::int64_t count) const;
  operator BasicView<const T>() const { return {data, rows, cols}; }
};
using View = BasicView<float>;
using ConstView = BasicView<const float>;

/// Host matrix owning its elements.
class Matrix {
 public:
  Matrix() = default;
  Matrix(std::int64_t rows, std::int64_t cols, float value = 0.0f);
  /// Matrix{{1, 2}, {3, 4}}: one initializer list per row; rows must have equal length.
  Matrix(std::initializer_list<std::initializer_list<float>> rows);

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t size() const { return rows_ * cols_; }
  float* data() { return values_.data(); }
  const float* data() const { return values_.data(); }
  float& operator()(std::int64_t row, std::int64_t col) { return values_[static_cast<std::size_t>(row * cols_ + col)]; }
  float operator()(std::int64_t row, std::int64_t col) const { return values_[static_cast<std::size_t>(row * cols_ + col)]; }
  View view() { return {data(), rows_, cols_}; }
  ConstView view() const { return {data(), rows_, cols_}; }
  /// Copy of the listed rows, in order.
  Matrix take_rows(const std::vector<std::int64_t>& indices) const;
  bool operator==(const Matrix&) const = default;

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::vector<float> values_;
};

}  // namespace ember
