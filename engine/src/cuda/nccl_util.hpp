#pragma once
// NCCL for data-parallel training on GPUs: its functions, loaded only when a run of several ranks
// first asks for them (a single-GPU run never maps libnccl), status checking, and the backend's
// collective on it. Only nccl.h is needed to build (EMBER_WITH_NCCL); which library answers is
// decided at run time.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/backend.hpp"
#include "ember/error.hpp"
#ifdef EMBER_WITH_NCCL
#include <nccl.h>
#endif

namespace ember::cuda {

#ifdef EMBER_WITH_NCCL
/// The NCCL functions Ember calls.
struct NcclApi {
  decltype(&ncclGetVersion) get_version;
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclAllReduce) all_reduce;
  decltype(&ncclRedOpCreatePreMulSum) red_op_create_pre_mul_sum;
  decltype(&ncclRedOpDestroy) red_op_destroy;
  decltype(&ncclGetErrorString) get_error_string;
};

/// NCCL, loaded on the first call (nccl_loader.cpp; the emulator's stand-in in the emulated
/// build); throws InputError naming the library and why it cannot be used.
const NcclApi& nccl();
#endif

/// "NCCL 2.28.9 (libnccl.so.2)", loading it; throws InputError saying why NCCL cannot be used
/// (not built in, not found, too old).
std::string nccl_library();

/// Rank 0's ncclUniqueId, as bytes.
std::vector<std::uint8_t> new_nccl_id();
/// This rank's NCCL communicator of ranks (nccl_collective.cpp), ordered with the backend's stream:
/// its sums run on a stream of their own, forked from and joined to that one.
std::unique_ptr<DeviceCollective> join_nccl(const std::vector<std::uint8_t>& id, int rank, int ranks,
                                            cudaStream_t stream);

}  // namespace ember::cuda

#define EMBER_NCCL_CHECK(call)                                                                          \
  do {                                                                                                  \
    const ncclResult_t ember_result_ = (call);                                                          \
    if (ember_result_ != ncclSuccess)                                                                   \
      throw ::ember::Error(fmt::format("NCCL error at {}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                       ::ember::cuda::nccl().get_error_string(ember_result_)));         \
  } while (0)
