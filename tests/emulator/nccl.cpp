// The emulator's NCCL (include/nccl.h): one rank, so an all-reduce is its own input, pre-multiplied
// by the operator's device scalar where it has one, computed on the stream when that runs.
#include <nccl.h>

#include <cstring>
#include <map>

#include "internal.hpp"

struct ncclComm {
  std::map<int, const float*> scalars;  // the pre-multiplying operators' device scalars, by number
  int next_op = 5;                      // NCCL's first dynamic operator number (ncclNumOps)
};

namespace {

ncclResult_t invalid(ncclResult_t result, const char* what) {
  ember::emulator::fail(cudaErrorInvalidValue, what);
  return result;
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  *version = NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* unique_id) {
  std::memset(unique_id->internal, 0, sizeof unique_id->internal);
  std::memcpy(unique_id->internal, "emulated", 8);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank) {
  if (nranks != 1 || rank != 0)
    return invalid(ncclInvalidUsage, "ncclCommInitRank: the emulator connects one rank, rank 0");
  if (std::memcmp(comm_id.internal, "emulated", 8) != 0)
    return invalid(ncclInvalidArgument, "ncclCommInitRank: not an id ncclGetUniqueId made");
  *comm = new ncclComm{};
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t* op, void* scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm) {
  if (datatype != ncclFloat || residence != ncclScalarDevice ||
      !ember::emulator::is_device_range(scalar, sizeof(float)))
    return invalid(ncclInvalidArgument, "ncclRedOpCreatePreMulSum: the emulator takes a float in device memory");
  const int number = comm->next_op++;
  comm->scalars[number] = static_cast<const float*>(scalar);
  *op = static_cast<ncclRedOp_t>(number);
  return ncclSuccess;
}

ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm) {
  return comm->scalars.erase(static_cast<int>(op)) == 1 ? ncclSuccess
                                                        : invalid(ncclInvalidArgument, "ncclRedOpDestroy: no such op");
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, std::size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const std::size_t bytes = count * sizeof(float);
  if (datatype != ncclFloat || !ember::emulator::is_device_range(sendbuff, bytes) ||
      !ember::emulator::is_device_range(recvbuff, bytes))
    return invalid(ncclInvalidArgument, "ncclAllReduce: float buffers in device memory expected");
  const float* scalar = nullptr;
  if (op != ncclSum) {
    const auto found = comm->scalars.find(static_cast<int>(op));
    if (found == comm->scalars.end()) return invalid(ncclInvalidArgument, "ncclAllReduce: no such op");
    scalar = found->second;
  }
  const auto* in = static_cast<const float*>(sendbuff);
  auto* out = static_cast<float*>(recvbuff);
  const cudaError_t error = ember::emulator::submit(stream, [=] {
    const float factor = scalar != nullptr ? *scalar : 1.0f;
    for (std::size_t i = 0; i < count; ++i) out[i] = scalar != nullptr ? in[i] * factor : in[i];
  });
  return error == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclInvalidArgument:
      return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage:
      return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    default:
      return "unhandled error";
  }
}

}  // extern "C"
