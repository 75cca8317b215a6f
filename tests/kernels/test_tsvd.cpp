// Tiled SVD: the decomposition against Eckart–Young (a tile's truncation error is exactly the
// discarded singular values), activation-aware truncation against plain on the error of x·W,
// tsvd_matmul on every backend × factor format against tsvd_matmul_ref (f64), the FLOP counter
// against tsvd_matmul_cost, and the rank rules' errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/cpu_features.hpp"
#include "kernels/error.hpp"
#include "kernels/flop_counter.hpp"
#include "kernels/tsvd.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {

// Tolerances, relative to the product's own scale Σ|x|·|U|·|V| (tsvd_matmul_ref on absolute
// values), so they hold for any cancellation:
//  - f32: two chained f32 GEMMs, blocked/FMA order, ~sqrt(T + r)·2^-24 each; 1e-5 keeps a 10×
//    margin and fails on any indexing bug (O(1) errors).
constexpr double kTsvdF32Tol = 1e-5;
//  - bf16: x, U, Z (the oneDNN bf16 path rounds its activations) and V each carry 2^-9 relative.
constexpr double kTsvdBf16Tol = 4.0 * 0x1.0p-9 + kTsvdF32Tol;
//  - int8: each factor's error is at most half a step, amax/254, of its column; measured against
//    the scale with every factor entry replaced by its column's amax, plus bf16 activations
//    (M > 32 runs a bf16 GEMM on dequantised panels).
constexpr double kTsvdInt8Tol = 2.0 / 254.0 + kTsvdBf16Tol;

Tensor abs_of(const Tensor& t) {
  Tensor a = t.clone();
  for (int64_t i = 0; i < a.numel(); ++i) a.data<float>()[i] = std::fabs(a.data<float>()[i]);
  return a;
}

// |factors|, or with every entry replaced by its packed column's amax (U: the tile's column;
// V: the column of the stacked V̂_j, over all row blocks).
TsvdFactors magnitude_factors(const TsvdFactors& f, bool column_amax) {
  TsvdFactors m = f;
  for (auto& u : m.u) u = abs_of(u);
  for (auto& v : m.v) v = abs_of(v);
  if (!column_amax) return m;
  const int64_t nK = f.tiles_k(), nN = f.tiles_n();
  for (auto& u : m.u) {
    const int64_t rows = u.size(0), r = u.size(1);
    for (int64_t c = 0; c < r; ++c) {
      float a = 0;
      for (int64_t i = 0; i < rows; ++i) a = std::max(a, u.data<float>()[i * r + c]);
      for (int64_t i = 0; i < rows; ++i) u.data<float>()[i * r + c] = a;
    }
  }
  for (int64_t j = 0; j < nN; ++j)
    for (int64_t b = 0; b < f.tile.cols; ++b) {
      float a = 0;
      for (int64_t i = 0; i < nK; ++i) {
        const Tensor& v = m.v[size_t(i * nN + j)];
        for (int64_t c = 0; c < v.size(0); ++c) a = std::max(a, v.data<float>()[c * f.tile.cols + b]);
      }
      for (int64_t i = 0; i < nK; ++i) {
        Tensor& v = m.v[size_t(i * nN + j)];
        for (int64_t c = 0; c < v.size(0); ++c) v.data<float>()[c * f.tile.cols + b] = a;
      }
    }
  return m;
}

double scaled_error(const Tensor& y, const Tensor& ref, const Tensor& mag) {
  double worst = 0;
  for (int64_t i = 0; i < y.numel(); ++i)
    worst = std::max(worst, std::fabs(double(y.get(i)) - ref.get(i)) / (mag.get(i) + 1e-30));
  return worst;
}

double frobenius(const Tensor& a) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += double(a.get(i)) * a.get(i);
  return std::sqrt(s);
}

Tensor minus(const Tensor& a, const Tensor& b) {
  Tensor d = a.clone();
  for (int64_t i = 0; i < d.numel(); ++i) d.data<float>()[i] -= b.get(i);
  return d;
}

// x [M, K] @ w [K, N] in f64 (the error of x·W below).
Tensor product(const Tensor& x, const Tensor& w) {
  Tensor y;
  matmul_ref(x, w, y);
  return y;
}

// tsvd_matmul of pw (f packed in fmt) on M random rows against tsvd_matmul_ref within the format's
// tolerance, and the FLOP counter against tsvd_matmul_cost.
void check_against_ref(const TsvdFactors& f, const TsvdFactors& mag_f, const TsvdFactors& amax_f,
                       const TsvdWeight& pw, WeightFormat fmt, int64_t M, Epilogue ep, uint64_t seed) {
  const Tensor x = random_tensor({M, f.k}, seed);
  Tensor y = random_tensor({M, f.n}, seed + 4), ref = y.clone();
  reset_flop_count();
  tsvd_matmul(x, pw, y, ep);
  CHECK(double(flop_count().matmul) == tsvd_matmul_cost(M, pw).flops);
  tsvd_matmul_ref(x, f, ref, ep);
  Tensor mag;
  tsvd_matmul_ref(abs_of(x), fmt == WeightFormat::int8 ? amax_f : mag_f, mag, {std::fabs(ep.scale), false});
  const double tol = fmt == WeightFormat::f32 ? kTsvdF32Tol : fmt == WeightFormat::bf16 ? kTsvdBf16Tol : kTsvdInt8Tol;
  CHECK(scaled_error(y, ref, mag) <= tol);
}

}  // namespace

TEST_CASE("tsvd: truncation error is the discarded singular values (Eckart-Young)", "[tsvd]") {
  const Tensor w = random_tensor({48, 60}, 3);
  const TileShape tile{12, 20};
  const TileSpectrum spec = tsvd_spectrum(w, tile);
  REQUIRE(spec.s.size() == 4 * 3);
  for (int64_t r : {1, 5, 11}) {
    const TsvdFactors f = tsvd_decompose(w, tile, {r});
    double discarded = 0;
    for (const auto& s : spec.s)
      for (size_t c = size_t(r); c < s.size(); ++c) discarded += double(s[c]) * s[c];
    const double err = frobenius(minus(w, f.reconstruct()));
    INFO("rank " << r);
    CHECK(err == Approx(std::sqrt(discarded)).epsilon(1e-4));
    CHECK(f.parameters() == 12 * r * (12 + 20));
  }
}

TEST_CASE("tsvd: activation-aware truncation lowers the error of x·W", "[tsvd]") {
  // Inputs whose columns differ in scale by 100x (as LLM activations' outlier channels do): plain
  // TSVD spends its rank on W's large directions, the whitened one on x·W's.
  const int64_t M = 512, K = 64, N = 48;
  Tensor x = random_tensor({M, K}, 5);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) x.data<float>()[m * K + k] *= (k % 8 == 0) ? 10.f : 0.1f;
  const Tensor w = random_tensor({K, N}, 6);
  const TileShape tile{32, 24};
  ActivationGram g;
  for (int64_t i = 0; i < K / tile.rows; ++i) {
    Tensor gi({tile.rows, tile.rows}, DType::f32);
    for (int64_t a = 0; a < tile.rows; ++a)
      for (int64_t b = 0; b < tile.rows; ++b) {
        double s = 0;
        for (int64_t m = 0; m < M; ++m) s += double(x.get(m * K + i * tile.rows + a)) * x.get(m * K + i * tile.rows + b);
        gi.data<float>()[a * tile.rows + b] = float(s);
      }
    g.gram.push_back(gi);
  }
  const Tensor exact = product(x, w);
  for (int64_t r : {4, 8}) {
    const double plain = frobenius(minus(exact, product(x, tsvd_decompose(w, tile, {r}).reconstruct())));
    const double aware = frobenius(minus(exact, product(x, tsvd_decompose(w, tile, {r}, g).reconstruct())));
    INFO("rank " << r << ": plain " << plain << ", activation-aware " << aware);
    CHECK(aware < 0.5 * plain);
  }
}

TEST_CASE("tsvd_matmul: every backend and factor format against the f64 reference", "[tsvd]") {
  struct Case {
    int64_t k, n, tk, tn, r;
  };
  // nK, nN > 1 (regrouped Z), one row block, one column block, non-square tiles.
  const Case cases[] = {{64, 96, 16, 32, 5}, {40, 90, 40, 30, 7}, {96, 32, 24, 32, 3}, {128, 128, 32, 32, 8}};
  for (const Case& c : cases) {
    const Tensor w = random_tensor({c.k, c.n}, 11);
    const TsvdFactors f = tsvd_decompose(w, {c.tk, c.tn}, {c.r});
    const TsvdFactors mag_f = magnitude_factors(f, false), amax_f = magnitude_factors(f, true);
    for (Backend be : {Backend::reference, Backend::openblas, Backend::onednn})
      for (WeightFormat fmt : kWeightFormats) {
        if (be == Backend::openblas && fmt == WeightFormat::bf16) continue;
        const TsvdWeight pw = pack_tsvd(f, fmt, be);
        // M = 300 on the last case: M·ΣR > 2^15 regroups Z with OpenMP threads.
        for (int64_t M : {int64_t(1), int64_t(7), int64_t(33), c.k == 128 ? int64_t(300) : int64_t(2)}) {
          for (bool acc : {false, true}) {
            INFO(backend_name(be) << " " << weight_format_name(fmt) << " K=" << c.k << " N=" << c.n << " tile "
                                  << c.tk << "x" << c.tn << " M=" << M << " accumulate " << acc);
            check_against_ref(f, mag_f, amax_f, pw, fmt, M, Epilogue{0.5f, acc}, 13);
          }
        }
      }
  }
}

TEST_CASE("tsvd_matmul with ragged ranks per tile: small-batch kernel and GEMM path against the f64 reference",
          "[tsvd]") {
  // Ranks differ per tile (1 .. T - 1), so Û_i and V̂_j have ragged widths and heights, none a
  // multiple of the small-batch kernel's 64-column panels; T_n = 80 leaves a partial panel too.
  // M = 1, 7 and 16 take the small-batch kernel (on AVX-512 hosts), 17 and 64 the nK + nN GEMMs.
  const Tensor w = random_tensor({96, 240}, 31);
  const TileShape tile{32, 80};
  std::vector<int64_t> ranks;
  for (int64_t t = 0; t < 9; ++t) ranks.push_back(1 + (t * 7 + 3) % 31);
  const TsvdFactors f = tsvd_decompose(w, tile, ranks);
  const TsvdFactors mag_f = magnitude_factors(f, false), amax_f = magnitude_factors(f, true);
  for (Backend be : {Backend::reference, Backend::openblas, Backend::onednn})
    for (WeightFormat fmt : kWeightFormats) {
      if (be == Backend::openblas && fmt == WeightFormat::bf16) continue;
      const TsvdWeight pw = pack_tsvd(f, fmt, be);
      for (int64_t M : {int64_t(1), int64_t(7), kTsvdFusedMaxM, kTsvdFusedMaxM + 1, int64_t(64)})
        for (bool acc : {false, true}) {
          INFO(backend_name(be) << " " << weight_format_name(fmt) << " M=" << M << " accumulate " << acc
                                << " small-batch kernel " << tsvd_fused_applies(M, pw));
          if (be != Backend::reference && M <= kTsvdFusedMaxM && cpu_has_avx512()) CHECK(tsvd_fused_applies(M, pw));
          check_against_ref(f, mag_f, amax_f, pw, fmt, M, Epilogue{-1.5f, acc}, 37);
        }
    }
}

TEST_CASE("small-batch TSVD kernel on oneDNN's packed factor panels, up to 4 per thread in lockstep", "[tsvd]") {
  // Factors wide enough for oneDNN to pack in 64-column panels with little padding (Û_0 246 columns
  // in 4 panels, Û_1 128 in 2, V̂_j 120 in 2), odd ranks (bf16 panels interleave pairs of rows: the
  // odd tile offsets in V̂_j split a pair), partial last panels; M = 1 (4 or 2 panels per item), 2 (2
  // per item), 3, 5 and 16 (1 per item).
  const Tensor w = random_tensor({128, 480}, 41);
  const TileShape tile{64, 120};
  const std::vector<int64_t> ranks = {63, 61, 59, 63, 31, 33, 29, 35};
  const TsvdFactors f = tsvd_decompose(w, tile, ranks);
  const TsvdFactors mag_f = magnitude_factors(f, false), amax_f = magnitude_factors(f, true);
  for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::bf16}) {
    const TsvdWeight pw = pack_tsvd(f, fmt, Backend::onednn);
    const int64_t in_panels = tsvd_factors_in_onednn_panels(pw);
    // AVX-512 brgemm packs every factor here in panels (f32: BA16a64b; bf16: BA16a64b2a where the
    // CPU has AVX512-BF16); elsewhere the factors stay row-major and the checks below still hold.
    if (fmt == WeightFormat::f32 ? cpu_has_avx512() : cpu_has_avx512_bf16()) CHECK(in_panels == 6);
    for (int64_t M : {int64_t(1), int64_t(2), int64_t(3), int64_t(5), kTsvdFusedMaxM})
      for (bool acc : {false, true}) {
        INFO(weight_format_name(fmt) << " M=" << M << " accumulate " << acc << " factors in panels " << in_panels);
        if (cpu_has_avx512()) CHECK(tsvd_fused_applies(M, pw));
        check_against_ref(f, mag_f, amax_f, pw, fmt, M, Epilogue{0.75f, acc}, 43);
      }
  }
}

TEST_CASE("tsvd_matmul of uneven ranks (energy rule) matches the reconstructed dense weight", "[tsvd]") {
  const Tensor w = random_tensor({64, 64}, 21);
  const TileShape tile{16, 16};
  const TileSpectrum spec = tsvd_spectrum(w, tile);
  const std::vector<int64_t> ranks = tsvd_ranks(spec, RankRule{.energy = 0.8});
  // Each rank is the fewest keeping 80 % of the tile's energy.
  for (size_t t = 0; t < ranks.size(); ++t) {
    double total = 0, kept = 0, less = 0;
    for (size_t c = 0; c < spec.s[t].size(); ++c) {
      total += double(spec.s[t][c]) * spec.s[t][c];
      if (int64_t(c) < ranks[t]) kept += double(spec.s[t][c]) * spec.s[t][c];
      if (int64_t(c) < ranks[t] - 1) less += double(spec.s[t][c]) * spec.s[t][c];
    }
    CHECK(kept >= 0.8 * total);
    CHECK(less < 0.8 * total);
  }
  const TsvdFactors f = tsvd_decompose(w, tile, ranks);
  const TsvdWeight pw = pack_tsvd(f, WeightFormat::f32, Backend::onednn);
  const Tensor x = random_tensor({9, 64}, 23);
  Tensor y, dense;
  tsvd_matmul(x, pw, y);
  matmul_ref(x, f.reconstruct(), dense);
  Tensor mag;
  tsvd_matmul_ref(abs_of(x), magnitude_factors(f, false), mag);
  CHECK(scaled_error(y, dense, mag) <= kTsvdF32Tol);
}

TEST_CASE("tsvd rank rules: ratio formula and bad input", "[tsvd]") {
  CHECK(rank_for_ratio({256, 256}, 2) == 64);  // 256·256 / (64·512) = 2
  CHECK(rank_for_ratio({256, 256}, 8) == 16);
  CHECK(rank_for_ratio({192, 192}, 1.25) == 76);
  CHECK(rank_for_ratio({128, 256}, 4) == 21);  // floor(32768 / (4·384))
  CHECK_THROWS_AS(rank_for_ratio({256, 256}, 0.5), tori::InputError);
  CHECK_THROWS_WITH(rank_for_ratio({256, 256}, 0.5), Catch::Contains("allowed: a number >= 1"));
  CHECK_THROWS_WITH(rank_for_ratio({4, 4}, 3), Catch::Contains("leaves rank 0"));
  CHECK_THROWS_WITH(check_tile_rank({32, 32}, 32, "--rank"), Catch::Contains("allowed: 1 to 31"));
  const Tensor w = random_tensor({48, 60}, 3);
  CHECK_THROWS_WITH(tsvd_decompose(w, {10, 20}, {2}, {}, "layers.0.w_in"),
                    Catch::Contains("layers.0.w_in") && Catch::Contains("does not divide"));
  CHECK_THROWS_AS(tsvd_decompose(w, {12, 20}, {12}), tori::InputError);
}
