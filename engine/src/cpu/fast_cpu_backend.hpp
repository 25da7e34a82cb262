#pragma once
// The fast CPU path: float32 everywhere, matmul from OpenBLAS (or a cache-friendly loop where the
// build has none), the Dense layer's bias and ReLU fused into one pass over the matmul output, and
// threads only where an op is big enough to pay for them. Memory, copies and gathers are the
// reference backend's; every op is tested against the reference.
#include "cpu/cpu_backend.hpp"

namespace ember {

class FastCpuBackend final : public CpuBackend {
 public:
  /// row_invariant: BackendOptions::row_invariant.
  explicit FastCpuBackend(bool row_invariant = false) : row_invariant_(row_invariant) {}
  std::string name() const override { return row_invariant_ ? "cpu (row-invariant)" : "cpu"; }
  /// "matmul by OpenBLAS 0.3.21 (OpenMP build)" or "matmul by built-in loops: ..."; names the
  /// build Ember was built with where the process loaded another.
  static std::string matmul_library();

  void matmul(Transpose transpose_a, Transpose transpose_b, float alpha, ConstView a, ConstView b, float beta,
              View c) override;
  void bias_add(View y, ConstView bias) override;
  void bias_gradient(ConstView dy, View bias_gradient) override;
  void activation_forward(Activation kind, ConstView x, View y) override;
  void activation_backward(Activation kind, ConstView dy, ConstView x, ConstView y, View dx) override;
  void optimizer_update(const Optimizer& optimizer, float* weights, const float* gradients, float* state,
                        std::int64_t region, std::int64_t count, const OptimizerScalars* scalars) override;
  void dense_forward(ConstView x, ConstView weight, ConstView bias, Activation activation, View y,
                     std::optional<View> pre_activation) override;
  bool row_invariant() const override { return row_invariant_; }
  void dense_parameter_gradients(ConstView dy, ConstView x, ConstView row_weights, View weight_gradient,
                                 View bias_gradient) override;

 protected:
  void run_layer_op(const LayerOp& op, const OpArgs& args) override {
    (op.fast != nullptr ? op.fast : op.reference)(args);
  }

 private:
  bool row_invariant_;
};

}  // namespace ember
