// Cross-entropy on logits z (rows, k) against class labels y (rows, 1; indices as floats), with its
// metric sums and gradient in one read of the logits:
//   k == 1 (two classes, z the logit of class 1):
//     loss = max(z, 0) - z y + log1p(exp(-|z|)),  gradient = (sigmoid(z) - y) / rows,
//     predicted class 1 where z > 0
//   k >= 2: loss = logsumexp(z) - z_y,  gradient = (softmax(z) - onehot(y)) / rows,
//     predicted class the first largest logit
//   sums[0] += the rows' losses, sums[1] += the rows predicted right
// With label smoothing eps the target is (1 - eps) onehot(y) + eps / k (y (1 - eps) + eps / 2 for one
// logit): the loss gains eps (logsumexp(z) - mean(z) - (logsumexp(z) - z_y)) and the gradient
// subtracts eps / k from every class and adds eps to the label's.
// A warp per row, its lanes striding over the k logits (four at a time, 16-byte loads, where k is a
// multiple of 4 and the logits are aligned): one pass keeps each lane's largest logit with its first
// index, its sum of exponentials relative to that largest (rescaled when a larger one comes, as in
// online softmax), the same without the label's class, and its sum of logits; the lanes combine in
// a fixed tree; a second pass writes the gradient. 1 - p_y comes from the other classes'
// exponentials, so a confident right answer loses no digits. 8 warps per block over a chunk of
// rows. Each warp keeps its rows' sums in lane 0; the block adds its warps in order into the
// chunk's partials, and one thread adds the chunks in order (deterministic; the grid depends on
// the shape only). Every step of the running sums is an explicit fma or rounded product, so that
// the kernel's versions with and without a gradient add the same bits.
//
// On an H200 the earlier three passes (max, sums, gradient) with 4-byte loads moved 1326 GB/s on
// 65536 x 4096 logits, 0.31x the device copy: too few bytes in flight per warp.
#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "device_intrinsics.cuh"
#include "kernels.hpp"
#include "launch.cuh"
#include "layer_ops.hpp"
#include "ordered_sum.hpp"

namespace ember::kernels {
namespace {

constexpr int kWarps = 8;
constexpr unsigned kFullWarp = 0xffffffffu;

__device__ float sigmoid(float x) {
  return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/// A row's running figures over the logits one lane has seen: the largest logit and its first index,
/// the sums of exp(z - largest) over all of them and over those not of the label's class, and the
/// sum of the logits.
struct RowFigures {
  float largest = -INFINITY;
  int predicted = 0x7fffffff;  // beyond every class: loses every tie
  float exponentials = 0.0f, others = 0.0f, logits_sum = 0.0f;

  /// exp(from - to), 0 for an empty lane's -infinity (where from - to would be NaN).
  __device__ __forceinline__ static float rescale(float from, float to) {
    return from == -INFINITY ? 0.0f : expf(from - to);
  }

  __device__ __forceinline__ void add(float z, int c, int y) {
    logits_sum += z;
    if (z > largest) {  // a new largest: the sums so far shrink by exp(old - new), z's term is 1
      const float scale = rescale(largest, z);
      exponentials = fmaf(exponentials, scale, 1.0f);
      others = c != y ? fmaf(others, scale, 1.0f) : device::rounded_product(others, scale);
      largest = z;
      predicted = c;
    } else {  // NaN lands here too, and makes the sums NaN
      const float e = z == -INFINITY ? 0.0f : expf(z - largest);
      exponentials += e;
      if (c != y) others += e;
    }
  }

  /// This lane's figures combined with `offset` lanes down's, for a tree over the warp.
  __device__ __forceinline__ void combine_down(int offset) {
    const float other_largest = __shfl_down_sync(kFullWarp, largest, offset);
    const int other_predicted = __shfl_down_sync(kFullWarp, predicted, offset);
    const float other_exponentials = __shfl_down_sync(kFullWarp, exponentials, offset);
    const float other_others = __shfl_down_sync(kFullWarp, others, offset);
    logits_sum += __shfl_down_sync(kFullWarp, logits_sum, offset);
    const float top = fmaxf(largest, other_largest);
    const float mine = rescale(largest, top), theirs = rescale(other_largest, top);
    exponentials = fmaf(exponentials, mine, device::rounded_product(other_exponentials, theirs));
    others = fmaf(others, mine, device::rounded_product(other_others, theirs));
    if (other_largest > largest || (other_largest == largest && other_predicted < predicted))
      predicted = other_predicted;
    largest = top;
  }

  /// The whole row's figures in every lane.
  __device__ __forceinline__ void reduce_warp() {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) combine_down(offset);
    largest = __shfl_sync(kFullWarp, largest, 0);
    predicted = __shfl_sync(kFullWarp, predicted, 0);
    exponentials = __shfl_sync(kFullWarp, exponentials, 0);
    others = __shfl_sync(kFullWarp, others, 0);
    logits_sum = __shfl_sync(kFullWarp, logits_sum, 0);
  }
};

__global__ void __launch_bounds__(kWarps * 32)
    cross_entropy_partial_kernel(const float* __restrict__ logits, const float* __restrict__ labels, long long rows,
                                 int k, long long chunk, float inv_rows, float eps, float* __restrict__ gradient,
                                 float* __restrict__ out, bool accumulate, bool vector) {
  __shared__ float warp_loss[kWarps], warp_correct[kWarps];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const long long begin = blockIdx.x * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  float loss = 0.0f, correct = 0.0f;  // lane 0's
  for (long long r = begin + warp; r < end; r += kWarps) {
    const float* z = logits + r * k;
    const int y = static_cast<int>(labels[r]);
    if (k == 1) {
      if (lane == 0) {
        const float logit = z[0], label = static_cast<float>(y) * (1.0f - eps) + 0.5f * eps;
        loss += fmaxf(logit, 0.0f) - logit * label + log1pf(expf(-fabsf(logit)));
        correct += (logit > 0.0f) == (y == 1) ? 1.0f : 0.0f;
        // sigmoid(z) - 1 = -sigmoid(-z): no cancellation for a confident right answer.
        if (gradient != nullptr)
          gradient[r] = ((y == 1 ? -sigmoid(-logit) : sigmoid(logit)) + (y == 1 ? 0.5f * eps : -0.5f * eps)) * inv_rows;
      }
      continue;
    }
    RowFigures row;
    if (vector) {
      const float4* z4 = reinterpret_cast<const float4*>(z);
      for (int v = lane; v < k / 4; v += 32) {
        const float4 q = z4[v];
        row.add(q.x, 4 * v, y);
        row.add(q.y, 4 * v + 1, y);
        row.add(q.z, 4 * v + 2, y);
        row.add(q.w, 4 * v + 3, y);
      }
    } else {
      for (int c = lane; c < k; c += 32) row.add(z[c], c, y);
    }
    row.reduce_warp();
    const float largest = row.largest, exponentials = row.exponentials, others = row.others;
    const float smoothed = eps / static_cast<float>(k), inverse = 1.0f / exponentials;
    // One division per row: a division per element calls its slow path out of line, which spills.
    const auto gradient_of = [=](float value, int c) {
      return ((c == y ? -others : expf(value - largest)) * inverse + (c == y ? eps : 0.0f) - smoothed) * inv_rows;
    };
    if (gradient != nullptr) {
      if (vector) {
        const float4* z4 = reinterpret_cast<const float4*>(z);
        float4* g4 = reinterpret_cast<float4*>(gradient + r * k);
        for (int v = lane; v < k / 4; v += 32) {
          const float4 q = z4[v];
          g4[v] = make_float4(gradient_of(q.x, 4 * v), gradient_of(q.y, 4 * v + 1), gradient_of(q.z, 4 * v + 2),
                              gradient_of(q.w, 4 * v + 3));
        }
      } else {
        for (int c = lane; c < k; c += 32) gradient[r * k + c] = gradient_of(z[c], c);
      }
    }
    if (lane == 0) {
      // logsumexp(z) - z_y; log1p(others) when z_y is the largest (the sum is then 1 + others).
      const float logsumexp = largest + logf(exponentials);
      loss += z[y] == largest ? log1pf(others) : logsumexp - z[y];
      if (eps != 0.0f) loss += eps * ((logsumexp - row.logits_sum / static_cast<float>(k)) - (logsumexp - z[y]));
      correct += row.predicted == y ? 1.0f : 0.0f;
    }
  }
  if (lane == 0) {
    warp_loss[warp] = loss;
    warp_correct[warp] = correct;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  float block_loss = 0.0f, block_correct = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    block_loss += warp_loss[w];
    block_correct += warp_correct[w];
  }
  if (accumulate) {
    out[0] += block_loss;
    out[1] += block_correct;
  } else {
    out[2 * blockIdx.x] = block_loss;
    out[2 * blockIdx.x + 1] = block_correct;
  }
}

// in: logits (rows, k), labels (rows, 1); out: sums (1, 2), gradient or null; settings:
// label_smoothing (losses/cross_entropy.hpp).
void launch_cross_entropy(const OpArgs& a, cudaStream_t stream) {
  const float* logits = a.in[0].data;
  const std::int64_t rows = a.in[0].rows, k = a.in[0].cols;
  float* gradient = a.out[1].data;
  float* sums = a.out[0].data;
  if (rows == 0) return;
  // Chunks of at least 64 rows, at most 1024 of them (one block across), two sums each.
  const RowChunks chunks = row_chunks(rows, 1, 64, 2);
  // Whole float4s per row, on 16-byte boundaries (the gradient's too).
  const bool vector = k % 4 == 0 && reinterpret_cast<std::uintptr_t>(logits) % 16 == 0 &&
                      (gradient == nullptr || reinterpret_cast<std::uintptr_t>(gradient) % 16 == 0);
  launch(cross_entropy_partial_kernel, static_cast<unsigned>(chunks.chunks), kWarps * 32, 0, stream, logits,
         a.in[1].data, rows, static_cast<int>(k), chunks.rows, static_cast<float>(1.0 / static_cast<double>(rows)),
         a.settings[0], gradient, chunks.chunks == 1 ? sums : a.scratch, chunks.chunks == 1, vector);
  check_launch("cross_entropy_partial_kernel", [&] { return shape_text("logits", rows, k); });
  if (chunks.chunks > 1) launch_sum_chunks(a.scratch, chunks.chunks, 2, sums, true, "cross-entropy sums", stream);
}

}  // namespace

EMBER_LAYER_OP_KERNEL("cross_entropy_loss", launch_cross_entropy);

}  // namespace ember::kernels
