// The CUDA backend's DeviceCollective: NCCL's all-reduce on a stream of its own, forked from the
// backend's stream where a sum starts and joined where the step needs the sums, so that a captured
// step holds the sums as branches beside the backward pass of the layers below.
#include <fmt/format.h>

#include <cstring>
#include <map>

#include "cuda/nccl_util.hpp"
#include "cuda_check.hpp"

namespace ember::cuda {

#ifdef EMBER_WITH_NCCL
namespace {

class NcclCollective final : public DeviceCollective {
 public:
  NcclCollective(const std::vector<std::uint8_t>& id, int rank, int ranks, cudaStream_t stream) : stream_(stream) {
    ncclUniqueId unique{};
    if (id.size() != sizeof(unique.internal))
      throw Error(fmt::format("an NCCL id has {} bytes, got {}", sizeof(unique.internal), id.size()));
    std::memcpy(unique.internal, id.data(), id.size());
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&sums_, cudaStreamNonBlocking));
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    const ncclResult_t result = nccl().comm_init_rank(&comm_, ranks, unique, rank);
    if (result != ncclSuccess) {
      release();
      throw Error(
          fmt::format("NCCL could not connect rank {} of {}: {}", rank, ranks, nccl().get_error_string(result)));
    }
  }
  ~NcclCollective() override { release(); }

  void start_scaled_sum(float* values, std::int64_t count, const float* factor) override {
    EMBER_CUDA_CHECK(cudaEventRecord(fork_, stream_));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(sums_, fork_, 0));
    EMBER_NCCL_CHECK(nccl().all_reduce(values, values, static_cast<std::size_t>(count), ncclFloat, scaled_sum(factor),
                                       comm_, sums_));
    started_ = true;
  }

  void finish() override {
    if (!started_) return;
    EMBER_CUDA_CHECK(cudaEventRecord(join_, sums_));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(stream_, join_, 0));
    started_ = false;
  }

 private:
  /// The pre-multiplied sum reading *factor when it runs: one operator per factor's address, as
  /// NCCL binds the address when it creates one.
  ncclRedOp_t scaled_sum(const float* factor) {
    auto found = operators_.find(factor);
    if (found != operators_.end()) return found->second;
    ncclRedOp_t op{};
    EMBER_NCCL_CHECK(
        nccl().red_op_create_pre_mul_sum(&op, const_cast<float*>(factor), ncclFloat, ncclScalarDevice, comm_));
    return operators_.emplace(factor, op).first->second;
  }

  void release() noexcept {
    // Destructors must not throw: the sums queued on this communicator finish first.
    if (sums_ != nullptr) cudaStreamSynchronize(sums_);
    if (comm_ != nullptr) {
      for (const auto& [factor, op] : operators_) nccl().red_op_destroy(op, comm_);
      nccl().comm_destroy(comm_);
      comm_ = nullptr;
    }
    if (fork_ != nullptr) cudaEventDestroy(fork_);
    if (join_ != nullptr) cudaEventDestroy(join_);
    if (sums_ != nullptr) cudaStreamDestroy(sums_);
    fork_ = join_ = nullptr;
    sums_ = nullptr;
  }

  cudaStream_t stream_;  // the backend's
  cudaStream_t sums_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  ncclComm_t comm_ = nullptr;
  std::map<const float*, ncclRedOp_t> operators_;
  bool started_ = false;
};

}  // namespace

std::vector<std::uint8_t> new_nccl_id() {
  ncclUniqueId unique{};
  EMBER_NCCL_CHECK(nccl().get_unique_id(&unique));
  return {reinterpret_cast<const std::uint8_t*>(unique.internal),
          reinterpret_cast<const std::uint8_t*>(unique.internal) + sizeof(unique.internal)};
}

std::unique_ptr<DeviceCollective> join_nccl(const std::vector<std::uint8_t>& id, int rank, int ranks,
                                            cudaStream_t stream) {
  return std::make_unique<NcclCollective>(id, rank, ranks, stream);
}
#else
std::vector<std::uint8_t> new_nccl_id() {
  nccl_library();  // throws: no NCCL in this build
  return {};
}

std::unique_ptr<DeviceCollective> join_nccl(const std::vector<std::uint8_t>&, int, int, cudaStream_t) {
  nccl_library();  // throws: no NCCL in this build
  return nullptr;
}
#endif

}  // namespace ember::cuda
