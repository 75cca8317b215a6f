// Local packing around a dimension: chunk-major pack/unpack, block transposes, bf16 widening.
#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>
#include <vector>

#include "collectives/layout.hpp"

using namespace tori::collectives;

TEST_CASE("pack_chunks puts slice p of a dimension in chunk p and unpack inverts it", "[layout]") {
  // [2, 6, 3] split 3 ways along dim 1: chunk p = [2, 2, 3] rows 2p..2p+1.
  std::vector<int32_t> src(36), packed(36), back(36);
  std::iota(src.begin(), src.end(), 0);
  DimView v = dim_view({2, 6, 3}, 1);
  CHECK(v.outer == 2);
  CHECK(v.n == 6);
  CHECK(v.inner == 3);
  pack_chunks(reinterpret_cast<const std::byte*>(src.data()), v, 3, 4, reinterpret_cast<std::byte*>(packed.data()));
  // chunk 1 (elements 12..23): outer 0 rows 2,3 -> src 6..11; outer 1 rows 2,3 -> src 24..29.
  CHECK(packed[12] == 6);
  CHECK(packed[17] == 11);
  CHECK(packed[18] == 24);
  CHECK(packed[23] == 29);
  unpack_chunks(reinterpret_cast<const std::byte*>(packed.data()), v, 3, 4, reinterpret_cast<std::byte*>(back.data()));
  CHECK(back == src);
}

TEST_CASE("transpose_blocks swaps block rows and columns", "[layout]") {
  std::vector<int16_t> src{0, 1, 2, 3, 4, 5}, dst(6);  // 3 rows x 2 cols of 1 unit
  transpose_blocks(reinterpret_cast<const std::byte*>(src.data()), 3, 2, 2, reinterpret_cast<std::byte*>(dst.data()));
  CHECK(dst == std::vector<int16_t>{0, 2, 4, 1, 3, 5});
}

TEST_CASE("bf16 widening is exact and narrowing rounds to nearest even", "[layout]") {
  std::vector<float> f{1.0f, -2.5f, 3.0f + 1.0f / 256};
  std::vector<tori::kernels::bf16> b(3);
  narrow_to_bf16(f.data(), b.data(), 3);
  std::vector<float> w(3);
  widen_bf16(b.data(), w.data(), 3);
  CHECK(w[0] == 1.0f);
  CHECK(w[1] == -2.5f);
  CHECK(w[2] == 3.0f);  // 3 + 2^-8 is below bf16 resolution at 3 (2^-6): rounds down
}
