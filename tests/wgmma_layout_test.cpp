// The wgmma matmul's shared-memory layout (kernels/wgmma_layout.hpp), checked on any machine: the
// loaders store every element of a slice exactly once, where wgmma's descriptors read it, and each
// warp's stores are free of bank conflicts.
#include "wgmma_layout.hpp"

#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

namespace ember::kernels::wgmma_layout {
namespace {

/// One stored element: the (row, k) it holds and its byte offset in the tile.
struct Store {
  int row, kk, offset;
};

/// The stores of one warp-wide store instruction, for the loader kind, warp, pass and (transposed
/// runs) store index s.
std::vector<Store> instruction(bool k_contiguous, int warp, int pass, int s) {
  std::vector<Store> stores;
  for (int lane = 0; lane < 32; ++lane) {
    const int thread = 32 * warp + lane, row = pass_row(k_contiguous, thread, pass), kk = pass_k(k_contiguous, thread);
    if (k_contiguous) {  // one 16-byte store of k .. k + 3
      for (int j = 0; j < 4; ++j) stores.push_back({row, kk + j, swizzled_offset(row, kk) + 4 * j});
    } else {
      const int e = store_element(lane, s);
      stores.push_back({row + e, kk, swizzled_offset(row + e, kk)});
    }
  }
  return stores;
}

/// Shared-memory wavefronts a warp's stores take: 32 banks of 4 bytes, distinct words in one bank
/// serialize (a 16-byte store per lane takes at least 4).
int wavefronts(const std::vector<Store>& stores) {
  std::vector<std::set<int>> words(32);
  for (const Store& s : stores) words[static_cast<std::size_t>((s.offset / 4) % 32)].insert(s.offset / 4);
  std::size_t most = 0;
  for (const auto& bank : words) most = std::max(most, bank.size());
  return static_cast<int>(most);
}

TEST(WgmmaLayout, SwizzleIsABijectionOntoTheTile) {
  std::set<int> offsets;
  for (int row = 0; row < kRows; ++row)
    for (int kk = 0; kk < kSliceK; ++kk) {
      const int offset = swizzled_offset(row, kk);
      ASSERT_EQ(offset % 4, 0);
      ASSERT_GE(offset, row * 128);  // a row stays in its own 128 bytes
      ASSERT_LT(offset, row * 128 + 128);
      offsets.insert(offset);
    }
  EXPECT_EQ(offsets.size(), static_cast<std::size_t>(kRows * kSliceK));
  EXPECT_EQ(*offsets.rbegin(), kTileBytes - 4);
}

TEST(WgmmaLayout, LoadersStoreEveryElementOnceWithoutBankConflicts) {
  // A slices: 128 rows in 4 passes; B slices of the 128 x 256 kernel: 256 rows in 8.
  for (const int rows : {kRows, 2 * kRows})
    for (const bool k_contiguous : {true, false}) {
      const int passes = rows / 32;
      std::set<std::pair<int, int>> elements;
      int instructions = 0;
      for (int warp = 0; warp < kThreads / 32; ++warp)
        for (int pass = 0; pass < passes; ++pass)
          for (int s = 0; s < (k_contiguous ? 1 : 4); ++s) {
            const std::vector<Store> stores = instruction(k_contiguous, warp, pass, s);
            for (const Store& store : stores) {
              ASSERT_LT(store.row, rows);
              ASSERT_LT(store.kk, kSliceK);
              EXPECT_EQ(store.offset, swizzled_offset(store.row, store.kk));
              EXPECT_TRUE(elements.insert({store.row, store.kk}).second)
                  << "element stored twice: row " << store.row << " k " << store.kk;
            }
            // 32 lanes x 16 bytes is 4 wavefronts at best; 32 x 4 bytes is one.
            EXPECT_EQ(wavefronts(stores), k_contiguous ? 4 : 1)
                << "k_contiguous " << k_contiguous << " warp " << warp << " pass " << pass << " store " << s;
            ++instructions;
          }
      EXPECT_EQ(elements.size(), static_cast<std::size_t>(rows * kSliceK)) << "k_contiguous " << k_contiguous;
      EXPECT_EQ(instructions, (k_contiguous ? 8 : 32) * passes);
    }
}

TEST(WgmmaLayout, DescriptorsReadWhatTheLoadersStored) {
  // Each warpgroup's A starts 64 rows (8 KiB, a multiple of the swizzle atom) into the tile; B has
  // up to 256 rows.
  for (int row = 0; row < 2 * kRows; ++row)
    for (int step = 0; step < kSliceK / 8; ++step)
      for (int kk8 = 0; kk8 < 8; ++kk8)
        ASSERT_EQ(descriptor_read_offset(row, step, kk8), swizzled_offset(row, 8 * step + kk8))
            << "row " << row << " step " << step << " k " << kk8;
}

TEST(WgmmaLayout, TransposedRunsReadCoalesced) {
  // Lanes sharing a k read 8 consecutive 16-byte runs (128 contiguous bytes) of one source line.
  for (int warp = 0; warp < kThreads / 32; ++warp)
    for (int pass = 0; pass < 8; ++pass)
      for (int lane = 0; lane < 32; ++lane) {
        const int thread = 32 * warp + lane;
        const int first = 32 * warp + lane % 4;  // the lane of the same k with lane / 4 == 0
        EXPECT_EQ(pass_k(false, thread), pass_k(false, first));
        EXPECT_EQ(pass_row(false, thread, pass), pass_row(false, first, pass) + 4 * (lane / 4));
      }
}

}  // namespace
}  // namespace ember::kernels::wgmma_layout
