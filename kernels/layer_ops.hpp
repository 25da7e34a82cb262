#pragma once
// The CUDA launches of the ops that layer parts bring (ember/layer_op.hpp), found by the op's name.
// A layer's kernel file (kernels/layers/NAME.cu) registers its launches when the plugin is loaded:
//   EMBER_LAYER_OP_KERNEL("rms_norm_forward", launch_forward);
// and the CUDA backend's Backend::layer_op calls the one registered under LayerOp::name.
#include <cuda_runtime_api.h>

#include <string_view>

#include "ember/layer_op.hpp"

namespace ember::kernels {

/// Enqueues the op on stream (its operands are device memory) and checks the launch.
using LayerOpLaunch = void (*)(const OpArgs& args, cudaStream_t stream);

/// Adds launch under name; a second launch under one name is a build mistake and aborts at load.
bool register_layer_op(const char* name, LayerOpLaunch launch);
/// The launch registered under name, or null.
LayerOpLaunch find_layer_op(std::string_view name);

}  // namespace ember::kernels

#define EMBER_LAYER_OP_KERNEL_JOIN2(a, b) a##b
#define EMBER_LAYER_OP_KERNEL_JOIN(a, b) EMBER_LAYER_OP_KERNEL_JOIN2(a, b)
/// Registers launch under name when the library holding this file is loaded.
#define EMBER_LAYER_OP_KERNEL(name, launch)                                                             \
  [[maybe_unused]] static const bool EMBER_LAYER_OP_KERNEL_JOIN(ember_layer_op_registered_, __LINE__) = \
      ::ember::kernels::register_layer_op(name, launch)
