// Transformer ops against their _ref versions (f64, the reference model's formulas), on odd sizes.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "kernels/activations.hpp"
#include "kernels/embedding.hpp"
#include "kernels/norms.hpp"
#include "kernels/rope.hpp"
#include "kernels/softmax.hpp"
#include "kernels/vec_math.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {
// exp_f32 / erf_f32 are polynomial approximations (vec_math.hpp): documented bounds 2e-7, checked
// here with a little headroom for f32 evaluation of the polynomial.
constexpr double kExpRelTol = 3e-7;
constexpr double kErfAbsTol = 4e-7;
// Norms: outputs are O(1) (|x - mean| / std * |w| + |b| <= ~4 here); f32 statistics over E <= a
// few thousand terms carry ~sqrt(E) * 2^-24 relative error, so 1e-5 absolute holds with margin
// (a relative measure would blow up where w * xhat and b cancel).
constexpr double kNormTol = 1e-5;
// Activations, relative (floor 1e-7 absolute): exp/erfc fits plus the f32 rounding of the exponent
// (|arg| * 2^-24, up to ~72 * 6e-8 = 4.3e-6 for gelu at x = -12): 1e-5.
constexpr double kActivationRelTol = 1e-5;
// RoPE: f32 cos/sin table vs f64 trig: each rotated value carries ~2 f32 roundings of |x| <= 1.
constexpr double kRopeTol = 1e-6;
// Softmax probabilities: exp error plus f32 sum over <= 1000 terms.
constexpr double kSoftmaxTol = 2e-6;

double max_rel_diff(const Tensor& a, const Tensor& b, double floor) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(double(a.get(i)) - b.get(i)) / (std::fabs(double(b.get(i))) + floor));
  return m;
}
}  // namespace

TEST_CASE("vectorisable exp and erf are accurate", "[ops][vec_math]") {
  double worst_exp = 0, worst_erf = 0;
  for (double x = -87.0; x <= 88.0; x += 0.0137)
    worst_exp = std::max(worst_exp, std::fabs(exp_f32(float(x)) / std::exp(double(float(x))) - 1));
  for (double x = -6.0; x <= 6.0; x += 0.00071)
    worst_erf = std::max(worst_erf, std::fabs(erf_f32(float(x)) - std::erf(double(float(x)))));
  CHECK(worst_exp <= kExpRelTol);
  CHECK(worst_erf <= kErfAbsTol);
  CHECK(exp_f32(-1000.f) < 1e-37f);
  CHECK(exp_f32(-std::numeric_limits<float>::infinity()) < 1e-37f);
}

TEST_CASE("rmsnorm and layernorm match the reference", "[ops][norm]") {
  for (int64_t E : {1, 7, 16, 129, 1000}) {
    INFO("E=" << E);
    Tensor x = random_tensor({5, E}, 100 + uint64_t(E), -3.f, 3.f);
    Tensor w = random_tensor({E}, 101), b = random_tensor({E}, 102);
    Tensor y, r;
    rmsnorm(x, w, 1e-6f, y);
    rmsnorm_ref(x, w, 1e-6f, r);
    CHECK(max_abs_diff(y, r) <= kNormTol);
    Tensor y2, r2;
    layernorm(x, w, b, 1e-5f, y2);
    layernorm_ref(x, w, b, 1e-5f, r2);
    CHECK(max_abs_diff(y2, r2) <= kNormTol);
    Tensor inplace = x.clone();
    rmsnorm(inplace, w, 1e-6f, inplace);  // y may alias x
    CHECK(max_abs_diff(inplace, y) == 0.0);
  }
  Tensor x = random_tensor({2, 8}, 1), w = random_tensor({9}, 2), y;
  CHECK_THROWS_WITH(rmsnorm(x, w, 1e-6f, y), Catch::Contains("weight") && Catch::Contains("[..., 8]"));
}

TEST_CASE("row_stats and normalize_rows (a sharded norm's two passes) match rmsnorm_ref and layernorm_ref",
          "[ops][norm]") {
  // A row split in two halves (two "ranks"): the halves' statistics summed, then each half
  // normalised with the full row's, as runtime/sharded_norm.cpp does around its all-reduce.
  for (int64_t M : {1, 3, 200})  // 200 rows x 1000: over the parallel threshold
    for (int64_t E : {2, 14, 1000}) {
      INFO("M=" << M << " E=" << E);
      const int64_t h = E / 2;
      Tensor x = random_tensor({M, E}, 300 + uint64_t(E), -3.f, 3.f), w = random_tensor({E}, 301),
             b = random_tensor({E}, 302), r, r2;
      rmsnorm_ref(x, w, 1e-6f, r);
      layernorm_ref(x, w, b, 1e-5f, r2);
      Tensor halves[2] = {Tensor({M, h}, DType::f32), Tensor({M, E - h}, DType::f32)};
      for (int64_t m = 0; m < M; ++m)
        for (int64_t e = 0; e < E; ++e) halves[e < h ? 0 : 1].data<float>()[m * (e < h ? h : E - h) + (e < h ? e : e - h)] = x.get(m * E + e);
      auto stats = [&](const double* center, bool square) {
        const size_t Ms = static_cast<size_t>(M);
        std::vector<float> a(Ms), c(Ms);
        row_stats(halves[0].data<float>(), M, h, center, square, a.data());
        row_stats(halves[1].data<float>(), M, E - h, center, square, c.data());
        std::vector<double> s(Ms);
        for (int64_t m = 0; m < M; ++m) s[size_t(m)] = double(a[size_t(m)]) + c[size_t(m)];
        return s;
      };
      const size_t Ms = static_cast<size_t>(M);
      std::vector<double> inv(Ms), mean(Ms);
      const std::vector<double> ss = stats(nullptr, true), sum = stats(nullptr, false);
      for (int64_t m = 0; m < M; ++m) inv[size_t(m)] = 1.0 / std::sqrt(ss[size_t(m)] / double(E) + 1e-6f);
      for (int64_t m = 0; m < M; ++m) mean[size_t(m)] = sum[size_t(m)] / double(E);
      const std::vector<double> var = stats(mean.data(), true);
      std::vector<double> inv2(Ms);
      for (int64_t m = 0; m < M; ++m) inv2[size_t(m)] = 1.0 / std::sqrt(var[size_t(m)] / double(E) + 1e-5f);
      double err = 0, err2 = 0;
      for (int part = 0; part < 2; ++part) {
        const int64_t n = part ? E - h : h, off = part ? h : 0;
        Tensor y({M, n}, DType::f32), y2({M, n}, DType::f32);
        normalize_rows(halves[part].data<float>(), M, n, nullptr, inv.data(), w.data<float>() + off, nullptr,
                       y.data<float>());
        normalize_rows(halves[part].data<float>(), M, n, mean.data(), inv2.data(), w.data<float>() + off,
                       b.data<float>() + off, y2.data<float>());
        for (int64_t m = 0; m < M; ++m)
          for (int64_t e = 0; e < n; ++e) {
            err = std::max(err, std::abs(double(y.get(m * n + e)) - r.get(m * E + off + e)));
            err2 = std::max(err2, std::abs(double(y2.get(m * n + e)) - r2.get(m * E + off + e)));
          }
      }
      CHECK(err <= kNormTol);
      CHECK(err2 <= kNormTol);
    }
}

TEST_CASE("rope (rotate-half) matches the reference at many positions", "[ops][rope]") {
  const int64_t H = 3, D = 18;  // D not a multiple of 16
  RopeTable table(5000, D, 10000.0);
  Tensor x = random_tensor({4, H * D}, 200);
  std::vector<int64_t> pos = {0, 1, 17, 4999};
  Tensor y = x.clone(), r = x.clone();
  rope(y, pos, table);
  rope_ref(r, pos, D, 10000.0);
  CHECK(max_abs_diff(y, r) <= kRopeTol);
  CHECK(max_abs_diff(y.narrow0(0, 1), x.narrow0(0, 1)) == 0.0);  // position 0 is the identity
  std::vector<int64_t> bad = {0, 1, 2, 5000};
  CHECK_THROWS_WITH(rope(y, bad, table), Catch::Contains("5000"));
  CHECK_THROWS_AS(RopeTable(10, 7, 1e4), tori::Error);
}

TEST_CASE("swiglu, gelu, geglu and residual add match the reference", "[ops][activations]") {
  for (int64_t n : {1, 15, 33, 40000}) {  // 40000 spans several parallel chunks
    INFO("n=" << n);
    Tensor g = random_tensor({n}, 300, -12.f, 12.f), u = random_tensor({n}, 301, -2.f, 2.f);
    Tensor y, r;
    swiglu(g, u, y);
    swiglu_ref(g, u, r);
    CHECK(max_rel_diff(y, r, 1e-7) <= kActivationRelTol);
    Tensor y2, r2;
    gelu(g, y2);
    gelu_ref(g, r2);
    CHECK(max_rel_diff(y2, r2, 1e-7) <= kActivationRelTol);
    Tensor y4, r4;
    geglu(g, u, y4);
    geglu_ref(g, u, r4);
    CHECK(max_rel_diff(y4, r4, 1e-7) <= kActivationRelTol);
    Tensor y3, r3;
    add(g, u, y3);
    add_ref(g, u, r3);
    CHECK(max_abs_diff(y3, r3) == 0.0);
    Tensor y5 = g.clone();
    scale(y5, 25.298f);  // Gemma's sqrt(E) embedding scale: one f32 multiply per element
    for (int64_t i = 0; i < n; ++i) CHECK(y5.data<float>()[i] == g.data<float>()[i] * 25.298f);
  }
  // gelu_tanh's known values (Hugging Face's gelu_pytorch_tanh): 0 -> 0, 1 -> 0.841192, -1 -> -0.158808.
  CHECK(gelu_tanh_ref(0.0) == 0.0);
  CHECK(std::abs(gelu_tanh_ref(1.0) - 0.8411919906) < 1e-9);
  CHECK(std::abs(gelu_tanh_ref(-1.0) + 0.1588080094) < 1e-9);
  Tensor a = random_tensor({3, 4}, 1), b = random_tensor({4, 3}, 2), o;
  CHECK_THROWS_WITH(add(a, b, o), Catch::Contains("[3, 4]") && Catch::Contains("[4, 3]"));
}

TEST_CASE("ffn_activation_columns: the activation between column blocks equals it on the blocks", "[ops][activations]") {
  // y [M, 3w + 5]: gate at column 2, up at 2 + w + 1; z [M, w + 7] written at column 4, the rest untouched.
  for (int64_t M : {1, 3, 64})  // 64 x 300: over the parallel threshold
    for (int64_t w : {1, 17, 300}) {
      INFO("M=" << M << " w=" << w);
      const int64_t Cy = 3 * w + 5, gc = 2, uc = 3 + w, Cz = w + 7, oc = 4;
      Tensor y = random_tensor({M, Cy}, 310, -8.f, 8.f);
      Tensor g({M, w}, DType::f32), u({M, w}, DType::f32);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t j = 0; j < w; ++j) {
          g.data<float>()[m * w + j] = y.get(m * Cy + gc + j);
          u.data<float>()[m * w + j] = y.get(m * Cy + uc + j);
        }
      for (FfnActivation kind : {FfnActivation::swiglu, FfnActivation::geglu, FfnActivation::gelu}) {
        Tensor want, z = random_tensor({M, Cz}, 311);
        const Tensor before = z.clone();
        if (kind == FfnActivation::swiglu) swiglu(g, u, want);
        if (kind == FfnActivation::geglu) geglu(g, u, want);
        if (kind == FfnActivation::gelu) gelu(u, want);
        ffn_activation_columns(kind, y, gc, uc, w, z, oc);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t j = 0; j < Cz; ++j) {
            const bool in_block = j >= oc && j < oc + w;
            REQUIRE(z.get(m * Cz + j) == (in_block ? want.get(m * w + j - oc) : before.get(m * Cz + j)));
          }
      }
    }
  Tensor y = random_tensor({2, 10}, 1), z({2, 4}, DType::f32);
  CHECK_THROWS_WITH(ffn_activation_columns(FfnActivation::swiglu, y, 0, 5, 5, z, 0), Catch::Contains("do not fit"));
  CHECK_THROWS_WITH(ffn_activation_columns(FfnActivation::swiglu, y, 6, 0, 5, z, 0), Catch::Contains("do not fit"));
}

TEST_CASE("softmax matches the reference, masked entries and masked rows", "[ops][softmax]") {
  for (int64_t n : {1, 5, 17, 1000}) {
    Tensor x = random_tensor({3, n}, 400 + uint64_t(n), -30.f, 30.f);
    Tensor y, r;
    softmax(x, y);
    softmax_ref(x, r);
    CHECK(max_abs_diff(y, r) <= kSoftmaxTol);
  }
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_f32({1.f, -inf, 1.f, -inf, -inf, -inf}, {2, 3});
  Tensor y;
  softmax(x, y);
  CHECK(y.to_vector() == std::vector<float>{0.5f, 0.f, 0.5f, 0.f, 0.f, 0.f});
}

TEST_CASE("embedding gather, vocab-sharded gather and unembedding", "[ops][embedding]") {
  const int64_t V = 37, E = 20;
  Tensor table = random_tensor({V, E}, 500);
  std::vector<int32_t> ids = {0, 36, 5, 5};
  Tensor y, r;
  embedding_gather(table, ids, y);
  embedding_gather_ref(table, ids, r);
  CHECK(max_abs_diff(y, r) == 0.0);
  Tensor yb;
  embedding_gather(table.to(DType::bf16), ids, yb);
  CHECK(max_abs_diff(yb, bf16_rounded(r)) == 0.0);
  // A rank holding vocab rows [30, 37): ids outside its shard give zero rows.
  Tensor ys;
  embedding_gather(table.narrow0(30, 7), ids, ys, 30, true);
  CHECK(max_abs_diff(ys.narrow0(1, 1), r.narrow0(1, 1)) == 0.0);
  CHECK(ys.narrow0(0, 1).to_vector() == std::vector<float>(E, 0.f));
  std::vector<int32_t> bad = {37};
  Tensor fresh;
  CHECK_THROWS_WITH(embedding_gather(table, bad, fresh), Catch::Contains("37"));

  Tensor h = random_tensor({3, E}, 501);
  Tensor logits, ref;
  unembed(h, pack_unembedding(table, WeightFormat::f32, Backend::onednn), logits);
  matmul_ref(h, transpose2d(table), ref);
  CHECK(logits.shape() == Shape{3, V});
  CHECK(max_abs_diff(logits, ref) <= 1e-5 * E);
  Tensor tt = transpose2d(transpose2d(table));
  CHECK(max_abs_diff(tt, table) == 0.0);
}
