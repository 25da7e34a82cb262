#pragma once
// One GPU per rank: distributed::world() narrows CUDA_VISIBLE_DEVICES to the local_rank-th GPU of
// those visible (modulo their number) before CUDA starts in the process, so that the CUDA backend's
// device 0 is this rank's own. A launcher that already bound each rank to one GPU (one entry in
// CUDA_VISIBLE_DEVICES, as Slurm's --gpus-per-task does) is left alone.
#include <optional>
#include <string>

namespace ember::distributed {

/// The value CUDA_VISIBLE_DEVICES should take for this rank, or nothing to change. visible: its
/// current value (null when unset); gpus: the GPUs the driver lists, used when it is unset.
std::optional<std::string> visible_gpu_for(int local_rank, const char* visible, int gpus);

/// The GPUs the NVIDIA driver lists (/proc/driver/nvidia/gpus), counted without starting CUDA.
int driver_gpu_count();

}  // namespace ember::distributed
