#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "kernels/error.hpp"
#include "models/synthetic_weights.hpp"

using namespace tori::models;
using tori::kernels::Shape;
using tori::kernels::Tensor;

namespace {
// Bit-exact comparison: shards must equal the same slice of the full tensor bit for bit.
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }
}  // namespace

TEST_CASE("any shard equals the same slice of the full tensor, bit for bit", "[synthetic]") {
  SyntheticWeights w(load_model_config("llama-tiny"), 7);
  for (const char* name : {"layers.1.wq", "layers.0.w_out", "embed", "unembed"}) {
    Tensor full = w.read_full(name);
    const int64_t R = full.size(0), C = full.size(1);
    // Odd, uneven boxes including single rows/columns and the last row/column.
    const Box boxes[] = {{{0, 0}, {1, 1}},      {{R - 1, C - 1}, {1, 1}}, {{3, 5}, {17, 13}},
                         {{0, 7}, {R, 1}},      {{5, 0}, {1, C}},         {{R / 3, C / 2}, {R / 3, C / 2}}};
    for (const Box& b : boxes) {
      Tensor shard = w.read(name, b);
      REQUIRE(shard.shape() == b.size);
      bool ok = true;
      for (int64_t i = 0; i < b.size[0]; ++i)
        for (int64_t j = 0; j < b.size[1]; ++j)
          ok &= same_bits(shard.get(i * b.size[1] + j), full.get((b.start[0] + i) * C + b.start[1] + j));
      CHECK(ok);
    }
  }
  Tensor n = w.read_full("layers.2.attn_norm.weight");
  Tensor part = w.read("layers.2.attn_norm.weight", {{100}, {56}});
  for (int64_t i = 0; i < 56; ++i) CHECK(same_bits(part.get(i), n.get(100 + i)));
}

TEST_CASE("synthetic tensors have the intended scale and differ by seed and name", "[synthetic]") {
  ModelConfig c = load_model_config("palm-tiny");
  SyntheticWeights a(c, 1), b(c, 2);
  Tensor wq = a.read_full("layers.0.wq");
  double sum = 0, ss = 0;
  for (int64_t i = 0; i < wq.numel(); ++i) sum += wq.get(i), ss += double(wq.get(i)) * wq.get(i);
  const double n = double(wq.numel()), mean = sum / n, var = ss / n - mean * mean;
  // Uniform with unit variance times 1/sqrt(E): variance 1/E. With 65536 samples the sample
  // variance is within a few percent.
  CHECK(std::abs(mean) < 0.01);
  CHECK(var * double(c.d_model) == Approx(1.0).epsilon(0.05));
  Tensor norm = a.read_full("final_norm.weight");
  for (int64_t i = 0; i < norm.numel(); ++i) {
    CHECK(norm.get(i) > 0.8f);
    CHECK(norm.get(i) < 1.2f);
  }
  CHECK(a.read_full("layers.0.wq").get(0) != b.read_full("layers.0.wq").get(0));
  CHECK(a.read_full("layers.0.wq").get(0) != a.read_full("layers.1.wq").get(0));
  CHECK_THROWS_AS(a.read("layers.0.wq", {{0, 0}, {300, 1}}), tori::Error);
  CHECK_THROWS_AS(a.read_full("layers.99.wq"), tori::Error);
}
