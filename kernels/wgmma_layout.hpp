#pragma once
// The shared-memory layout of matmul_wgmma.cu's operand slices, as plain functions that the
// kernel uses and the tests check on any machine (tests/wgmma_layout_test.cpp): every element
// stored exactly once, where wgmma's descriptors read it, without bank conflicts.
//
// An operand slice is 128 rows (m for a, n for b; 256 for b in the 128 x 256 kernel) by 32 k,
// K-major as wgmma requires for TF32:
// row r's 32 k values fill 128 bytes, in the 128-byte swizzle: 16-byte chunk c of row r sits at
// chunk position c ^ (r % 8). Tiles start on 1024-byte boundaries, so an 8-row group is one
// 1024-byte swizzle atom.

#include "host_device.hpp"

namespace ember::kernels::wgmma_layout {

inline constexpr int kRows = 128, kSliceK = 32, kThreads = 256;
inline constexpr int kTileBytes = kRows * kSliceK * 4;
inline constexpr int kGroupBytes = 1024;  // stride from one 8-row group to the next (the descriptor's SBO)

/// Byte offset of element (row, kk) in a tile: row < 128, kk < 32.
EMBER_HOST_DEVICE constexpr int swizzled_offset(int row, int kk) {
  return row * 128 + (((kk / 4) ^ (row % 8)) * 16) + (kk % 4) * 4;
}

// Each thread loads 4 runs of 4 values per slice (passes i < 4).
// k_contiguous (the source holds each row's k values contiguously: a in NN/NT, b in NT): thread t
//   loads 16-byte chunk t % 8 of row t / 8 + 32 i, i.e. k = 4 (t % 8) .. + 3.
// Otherwise (the source is contiguous along m or n): warp w takes k = 4 w + lane % 4 and the run
//   of rows 4 (8 i + lane / 4) .. + 3.
/// The first row of thread t's run in pass i.
EMBER_HOST_DEVICE constexpr int pass_row(bool k_contiguous, int thread, int pass) {
  return k_contiguous ? thread / 8 + 32 * pass : 4 * (8 * pass + (thread % 32) / 4);
}
/// The first k of thread t's run (the same in every pass).
EMBER_HOST_DEVICE constexpr int pass_k(bool k_contiguous, int thread) {
  return k_contiguous ? 4 * (thread % 8) : 4 * (thread / 32) + thread % 4;
}
/// Transposed runs are stored one element per instruction; store s of lane l writes element
/// (s + l / 8) % 4 of its run, so that the 8 lanes sharing a k write rows that differ mod 8 and,
/// through the swizzle, a warp's 32 stores hit 32 different banks.
EMBER_HOST_DEVICE constexpr int store_element(int lane, int store) {
  return (store + lane / 8) % 4;
}

/// Where wgmma reads element (row, kk8) of k step `step` (8 k, 32 bytes along each row) from a
/// descriptor starting at tile + 32 step with 8-row groups kGroupBytes apart and the 128-byte
/// swizzle, which XORs address bits 4-6 with bits 7-9: the hardware's side of the contract.
EMBER_HOST_DEVICE constexpr int descriptor_read_offset(int row, int step, int kk8) {
  const int linear = 32 * step + (row / 8) * kGroupBytes + (row % 8) * 128 + (kk8 / 4) * 16 + (kk8 % 4) * 4;
  return linear ^ (((linear >> 7) & 7) << 4);
}

}  // namespace ember::kernels::wgmma_layout
