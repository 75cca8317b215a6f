// Strided copies (kernels/take.hpp): each against element-by-element indexing, and bad indices refused.
#include <catch2/catch.hpp>

#include "kernels/error.hpp"
#include "kernels/take.hpp"

using namespace tori::kernels;

namespace {
Tensor iota(int64_t R, int64_t C) {  // x[r, c] = 100 r + c
  Tensor x({R, C}, DType::f32);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) x.data<float>()[r * C + c] = float(100 * r + c);
  return x;
}
float at(const Tensor& x, int64_t r, int64_t c) { return x.data<float>()[r * x.size(1) + c]; }
}  // namespace

TEST_CASE("take_rows picks rows in the order asked, repeats allowed", "[take]") {
  Tensor y = take_rows(iota(5, 3), {4, 0, 4});
  REQUIRE(y.shape() == Shape{3, 3});
  for (int64_t c = 0; c < 3; ++c) {
    CHECK(at(y, 0, c) == 400 + c);
    CHECK(at(y, 1, c) == c);
    CHECK(at(y, 2, c) == 400 + c);
  }
  CHECK_THROWS_AS(take_rows(iota(5, 3), {5}), tori::Error);
  CHECK_THROWS_AS(take_rows(iota(5, 3), {-1}), tori::Error);
}

TEST_CASE("take_columns and put_columns are inverse on the picked blocks", "[take]") {
  const Tensor x = iota(4, 12);
  const std::vector<int64_t> starts{9, 1, 5};
  Tensor t = take_columns(x, starts, 2);
  REQUIRE(t.shape() == Shape{4, 6});
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t k = 0; k < 3; ++k)
      for (int64_t j = 0; j < 2; ++j) CHECK(at(t, r, k * 2 + j) == at(x, r, starts[size_t(k)] + j));
  Tensor z({4, 12}, DType::f32);  // zeros
  put_columns(z, starts, 2, t);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 12; ++c) {
      const bool picked = (c >= 9 && c < 11) || (c >= 1 && c < 3) || (c >= 5 && c < 7);
      CHECK(at(z, r, c) == (picked ? at(x, r, c) : 0.f));
    }
  CHECK_THROWS_AS(take_columns(x, {11}, 2), tori::Error);
  CHECK_THROWS_AS(put_columns(z, starts, 2, iota(4, 5)), tori::Error);
}

TEST_CASE("put_block places a block at any offset, whole rows in one copy", "[take]") {
  Tensor dst({4, 6}, DType::f32);
  put_block(dst, 1, 2, iota(2, 3));
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) {
      const bool in = r >= 1 && r < 3 && c >= 2 && c < 5;
      CHECK(at(dst, r, c) == (in ? float(100 * (r - 1) + (c - 2)) : 0.f));
    }
  Tensor rows({4, 3}, DType::f32);
  put_block(rows, 2, 0, iota(2, 3));
  CHECK(at(rows, 3, 2) == 102.f);
  CHECK(at(rows, 1, 2) == 0.f);
  CHECK_THROWS_AS(put_block(dst, 3, 0, iota(2, 3)), tori::Error);
  CHECK_THROWS_AS(put_block(dst, 0, 4, iota(2, 3)), tori::Error);
}
