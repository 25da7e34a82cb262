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
// A warp per row (its lanes stride over the k logits: a max with its index, the sums of
// exponentials, and the gradient, each a pass over the row; 1 - p_y comes from the other classes'
// exponentials, so a confident right answer loses no digits), 8 warps per block over a chunk of rows. Each warp
// keeps its rows' sums in lane 0; the block adds its warps in order into the chunk's partials, and
// one thread adds the chunks in order (deterministic; the grid depends on the shape only).
#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "ordered_sum.hpp"

namespace ember::kernels {
namespace {

constexpr int kWarps = 8;
constexpr unsigned kFullWarp = 0xffffffffu;

__device__ float warp_sum(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(kFullWarp, value, offset);
  return __shfl_sync(kFullWarp, value, 0);
}

__device__ float sigmoid(float x) {
  return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/// The largest value and its first index over the warp (lane 0's view broadcast to all lanes).
__device__ void warp_argmax(float& value, int& index) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_down_sync(kFullWarp, value, offset);
    const int other_index = __shfl_down_sync(kFullWarp, index, offset);
    if (other > value || (other == value && other_index < index)) {
      value = other;
      index = other_index;
    }
  }
  value = __shfl_sync(kFullWarp, value, 0);
  index = __shfl_sync(kFullWarp, index, 0);
}

__global__ void __launch_bounds__(kWarps * 32)
    cross_entropy_partial_kernel(const float* __restrict__ logits, const float* __restrict__ labels, long long rows,
                                 int k, long long chunk, float inv_rows, float eps, float* __restrict__ gradient,
                                 float* __restrict__ out, bool accumulate) {
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
    float largest = -INFINITY;
    int predicted = k;  // beyond every class: loses every tie
    for (int c = lane; c < k; c += 32)
      if (z[c] > largest) {
        largest = z[c];
        predicted = c;
      }
    warp_argmax(largest, predicted);
    // The sum of exponentials, and the same without the label's: 1 - p_y = others / sum without the
    // cancellation of p_y - 1 when the model is confident and right.
    float exponentials = 0.0f, others = 0.0f, logits_sum = 0.0f;
    for (int c = lane; c < k; c += 32) {
      const float e = expf(z[c] - largest);
      exponentials += e;
      if (c != y) others += e;
      logits_sum += z[c];
    }
    exponentials = warp_sum(exponentials);
    others = warp_sum(others);
    logits_sum = warp_sum(logits_sum);
    const float smoothed = eps / static_cast<float>(k);
    if (gradient != nullptr)
      for (int c = lane; c < k; c += 32)
        gradient[r * k + c] =
            ((c == y ? -others : expf(z[c] - largest)) / exponentials + (c == y ? eps : 0.0f) - smoothed) * inv_rows;
    if (lane == 0) {
      // logsumexp(z) - z_y; log1p(others) when z_y is the largest (the sum is then 1 + others).
      const float logsumexp = largest + logf(exponentials);
      loss += z[y] == largest ? log1pf(others) : logsumexp - z[y];
      if (eps != 0.0f) loss += eps * ((logsumexp - logits_sum / static_cast<float>(k)) - (logsumexp - z[y]));
      correct += predicted == y ? 1.0f : 0.0f;
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

}  // namespace

void launch_cross_entropy(const float* logits, const float* labels, std::int64_t rows, std::int64_t k,
                          float label_smoothing, float* sums, float* gradient, float* scratch, cudaStream_t stream) {
  if (rows == 0) return;
  // Chunks of at least 64 rows, at most 1024 of them (one block across), two sums each.
  const RowChunks chunks = row_chunks(rows, 1, 64, 2);
  launch(cross_entropy_partial_kernel, static_cast<unsigned>(chunks.chunks), kWarps * 32, 0, stream, logits, labels,
         rows, static_cast<int>(k), chunks.rows, static_cast<float>(1.0 / static_cast<double>(rows)), label_smoothing,
         gradient, chunks.chunks == 1 ? sums : scratch, chunks.chunks == 1);
  check_launch("cross_entropy_partial_kernel", [&] { return shape_text("logits", rows, k); });
  if (chunks.chunks > 1) launch_sum_chunks(scratch, chunks.chunks, 2, sums, true, "cross-entropy sums", stream);
}

}  // namespace ember::kernels
