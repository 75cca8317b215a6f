#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "kernels/bf16.hpp"
#include "kernels/divide.hpp"
#include "kernels/tensor.hpp"

using namespace tori::kernels;

TEST_CASE("tensor shapes, views and clones", "[tensor]") {
  Tensor t({3, 4}, DType::f32);
  CHECK(t.numel() == 12);
  CHECK(t.nbytes() == 48);
  CHECK(t.size(-1) == 4);
  CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  for (int i = 0; i < 12; ++i) t.set(i, float(i));
  Tensor rows = t.narrow0(1, 2);
  CHECK(rows.shape() == Shape{2, 4});
  CHECK(rows.get(0) == 4.f);
  rows.set(0, 100.f);  // a view: writes through
  CHECK(t.get(4) == 100.f);
  Tensor c = t.clone();
  c.set(0, -1.f);
  CHECK(t.get(0) == 0.f);
  CHECK(t.reshape({12}).size(0) == 12);
  CHECK_THROWS_AS(t.reshape({5}), tori::Error);
  CHECK_THROWS_AS(t.size(2), tori::Error);
  CHECK_THROWS_AS(t.data<bf16>(), tori::Error);
}

TEST_CASE("bf16 rounds to nearest even and keeps NaN", "[bf16]") {
  CHECK(round_to_bf16(1.0f) == 1.0f);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties to even -> 1.0
  CHECK(round_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 1.0f);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even -> 1 + 2^-6
  CHECK(round_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  Tensor t = Tensor::from_f32({1.5f, -2.25f, 3.0f}, {3}).to(DType::bf16);
  CHECK(t.dtype() == DType::bf16);
  CHECK(t.to(DType::f32).to_vector() == std::vector<float>{1.5f, -2.25f, 3.0f});
}

TEST_CASE("divide names the dimension and both numbers", "[divide]") {
  CHECK(tori::divide(12, 4, "d_ff") == 3);
  try {
    tori::divide(10, 4, "d_ff over yz");
    FAIL("expected an error");
  } catch (const tori::Error& e) {
    CHECK(std::string(e.what()) == "d_ff over yz = 10 is not divisible by 4");
  }
}

TEST_CASE("dtype names parse back", "[dtype]") {
  for (DType t : {DType::f32, DType::bf16, DType::s8}) CHECK(parse_dtype(dtype_name(t)) == t);
  CHECK_THROWS_WITH(parse_dtype("f16", "--dtype"), Catch::Contains("--dtype") && Catch::Contains("f32, bf16, int8"));
}
