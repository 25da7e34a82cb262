#pragma once
// The CPU reference backend: plain loops a reader can check by eye, float64 accumulation in matmul
// and reductions, parallel over rows (or columns) with OpenMP where that keeps it readable.
#include "ember/backend.hpp"

namespace ember {

class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu (reference)"; }
  Device device() const override { return Device::cpu; }
  void copy_to_device(void* destination, const void* source, std::size_t bytes) override;
  void copy_to_host(void* destination, const void* source, std::size_t bytes) override;

  void matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b, float beta,
              View c) override;
  void bias_add(View y, ConstView bias) override;
  void bias_gradient(ConstView dy, View bias_gradient) override;
  void activation_forward(Activation kind, ConstView x, View y) override;
  void activation_backward(Activation kind, ConstView dy, ConstView x, ConstView y, View dx) override;
  void clip_by_norm(float* values, std::int64_t count, float max_norm) override;
  void optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                        std::int64_t region, std::int64_t count, const OptimizerScalars* scalars) override;
  void fill(View y, float value) override;
  void copy(ConstView source, View destination) override;
  void gather_rows(ConstView source, const std::int32_t* indices, const std::int32_t* cursor,
                   View destination) override;
  void advance_cursor(std::int32_t* cursor, std::int32_t amount) override;
  void scale_rows(ConstView scales, View values) override;
  /// Each row alone in matmul, the sums over rows in float64: the reference is row-invariant.
  bool row_invariant() const override { return true; }
  void dense_parameter_gradients(ConstView dy, ConstView x, ConstView row_weights, View weight_gradient,
                                 View bias_gradient) override;

 protected:
  void run_layer_op(const LayerOp& op, const OpArgs& args) override { op.reference(args); }
  void* do_allocate(std::size_t bytes) override;
  void do_deallocate(void* pointer) noexcept override;
};

}  // namespace ember
