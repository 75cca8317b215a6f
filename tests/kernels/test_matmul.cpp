// Matmul: every backend x weight format x epilogue against matmul_ref (f64 accumulation), on
// awkward shapes (M = 1, K prime, N not a multiple of 16/64, N spanning several int8 panels).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/backend.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/columns.hpp"
#include "kernels/gemm_s8_f32.hpp"
#include "kernels/matmul.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/quantize.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {

// Error bounds are relative to sum_k |x_mk w_kn| (the dot product's own scale), so they hold for
// any K and any cancellation:
//  - f32 accumulation, blocked/FMA order: ~sqrt(K) * 2^-24 in practice; 1e-5 covers K <= 10^4
//    with a 10x margin and still fails on any indexing or epilogue bug (those give O(1) errors).
constexpr double kF32AccumTol = 1e-5;
//  - bf16 operands (weights, and activations which the oneDNN bf16 path rounds too) each carry a
//    relative rounding of 2^-9, so the product carries <= 2 * 2^-9 ~ 3.9e-3 of sum |x w|.
constexpr double kBf16OperandTol = 2.0 * 0x1.0p-9 + kF32AccumTol;

Tensor abs_tensor(const Tensor& t) {
  Tensor a = t.to(DType::f32).clone();
  for (int64_t i = 0; i < a.numel(); ++i) a.data<float>()[i] = std::fabs(a.data<float>()[i]);
  return a;
}

// max over elements of |y - ref| / (sum_k |x w| + 1e-30); the caller compares with a tolerance.
double scaled_error(const Tensor& y, const Tensor& ref, const Tensor& x, const Tensor& w) {
  Tensor mag;
  matmul_ref(abs_tensor(x), abs_tensor(w), mag);
  double worst = 0;
  for (int64_t i = 0; i < y.numel(); ++i)
    worst = std::max(worst, std::fabs(double(y.get(i)) - ref.get(i)) / (mag.get(i) + 1e-30));
  return worst;
}

struct Shape3 {
  int64_t m, k, n;
};
const Shape3 kShapes[] = {{1, 1, 1},   {1, 13, 17},  {3, 64, 100}, {16, 257, 65},
                          {17, 31, 600}, {64, 96, 130}, {5, 1024, 64}};

}  // namespace

TEST_CASE("matmul f32 and bf16 weights, every backend, awkward shapes", "[matmul]") {
  for (Backend be : {Backend::reference, Backend::openblas, Backend::onednn})
    for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::bf16})
      for (const Shape3& s : kShapes) {
        if (be == Backend::openblas && fmt == WeightFormat::bf16) continue;
        INFO(backend_name(be) << " " << weight_format_name(fmt) << " M=" << s.m << " K=" << s.k
                              << " N=" << s.n);
        Tensor x = random_tensor({s.m, s.k}, 1 + uint64_t(s.k));
        Tensor w = random_tensor({s.k, s.n}, 2 + uint64_t(s.n));
        PackedWeight pw = pack_weight(w, fmt, be);
        Tensor y;
        matmul(x, pw, y);
        REQUIRE(y.shape() == Shape{s.m, s.n});
        Tensor ref;
        matmul_ref(x, w, ref);
        if (fmt == WeightFormat::f32) {
          CHECK(scaled_error(y, ref, x, w) <= kF32AccumTol);
        } else {
          CHECK(scaled_error(y, ref, x, w) <= kBf16OperandTol);
          // Against the same rounded operands only accumulation order remains. The reference
          // backend keeps x in f32; oneDNN rounds x to bf16.
          Tensor xr = be == Backend::onednn ? bf16_rounded(x) : x;
          Tensor ref_r;
          matmul_ref(xr, bf16_rounded(w), ref_r);
          CHECK(scaled_error(y, ref_r, x, w) <= kF32AccumTol);
        }
      }
}

TEST_CASE("matmul epilogues: scale and sum into accumulator", "[matmul]") {
  for (Backend be : {Backend::reference, Backend::openblas, Backend::onednn})
    for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8})
      for (int64_t M : {int64_t(2), int64_t(40)}) {
        if (be == Backend::openblas && fmt == WeightFormat::bf16) continue;
        INFO(backend_name(be) << " " << weight_format_name(fmt) << " M=" << M);
        const int64_t K = 37, N = 70;
        Tensor x = random_tensor({M, K}, 11);
        Tensor w = random_tensor({K, N}, 12);
        PackedWeight pw = pack_weight(w, fmt, be);
        Tensor plain;
        matmul(x, pw, plain);
        Tensor acc = random_tensor({M, N}, 13);
        Tensor expect = acc.clone();
        for (int64_t i = 0; i < expect.numel(); ++i) expect.data<float>()[i] += 0.5f * plain.get(i);
        matmul(x, pw, acc, Epilogue{0.5f, true});
        CHECK(max_abs_diff(acc, expect) <= 1e-5);  // same kernel, so only the final add differs
        Tensor scaled;
        matmul(x, pw, scaled, Epilogue{-2.f, false});
        for (int64_t i = 0; i < plain.numel(); ++i) plain.data<float>()[i] *= -2.f;
        CHECK(max_abs_diff(scaled, plain) <= 1e-5);
      }
}

TEST_CASE("int8 weight-only: quantisation is symmetric per output channel", "[matmul][int8]") {
  Tensor w = random_tensor({50, 7}, 21);
  for (int64_t k = 0; k < 50; ++k) w.data<float>()[k * 7 + 3] *= 100.f;  // one loud channel
  for (int64_t k = 0; k < 50; ++k) w.data<float>()[k * 7 + 5] = 0.f;     // one silent channel
  QuantizedInt8 q = quantize_int8(w);
  for (int64_t n = 0; n < 7; ++n) {
    float amax = 0;
    for (int64_t k = 0; k < 50; ++k) amax = std::max(amax, std::fabs(w.get(k * 7 + n)));
    CHECK(q.scales.get(n) == Approx(amax / 127.f));
    for (int64_t k = 0; k < 50; ++k) {
      CHECK(std::fabs(q.q.get(k * 7 + n)) <= 127.f);
      // round-to-nearest: each weight within half a step of its code
      CHECK(std::fabs(w.get(k * 7 + n) - q.q.get(k * 7 + n) * q.scales.get(n)) <=
            0.5f * q.scales.get(n) * (1 + 1e-5f) + 1e-12f);
    }
  }
  CHECK(q.scales.get(5) == 0.f);
  // Uniform weights: error uniform in +-step/2, rel rms = (1/127)/sqrt(12) / (1/sqrt(3)) = 0.0039.
  Tensor u = random_tensor({256, 64}, 22);
  QuantError e = quantization_error(u, quantize_int8(u));
  CHECK(e.rel_rms == Approx(0.0039).margin(0.0008));
  CHECK(e.max_abs <= 0.5 / 127 * 1.0001);
}

TEST_CASE("int8 weight-only matmul: small-batch kernel and large-batch paths", "[matmul][int8]") {
  for (Backend be : {Backend::reference, Backend::openblas, Backend::onednn})
    for (const Shape3& s : kShapes) {
      INFO(backend_name(be) << " int8 M=" << s.m << " K=" << s.k << " N=" << s.n);
      Tensor x = random_tensor({s.m, s.k}, 31 + uint64_t(s.m));
      Tensor w = random_tensor({s.k, s.n}, 32 + uint64_t(s.k));
      PackedWeight pw = pack_weight(w, WeightFormat::int8, be);
      CHECK(pw.quant_error.rel_rms < 0.01);
      Tensor wq = dequantize_int8(quantize_int8(w));
      Tensor y;
      matmul(x, pw, y);
      // The large-batch oneDNN path feeds x to a bf16 GEMM (q itself is exact in bf16).
      const bool x_bf16 = be == Backend::onednn && s.m > kInt8RegisterKernelMaxM;
      Tensor ref;
      matmul_ref(x_bf16 ? bf16_rounded(x) : x, wq, ref);
      CHECK(scaled_error(y, ref, x, wq) <= kF32AccumTol);
    }
}

TEST_CASE("int8 AVX-512 kernel equals its _ref for M = 1..16 and beyond", "[matmul][int8]") {
  const int64_t K = 203, N = 131;
  Tensor w = random_tensor({K, N}, 41);
  PackedWeight pw = pack_weight(w, WeightFormat::int8, Backend::onednn);
  for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 33}) {
    Tensor x = random_tensor({M, K}, 42 + uint64_t(M));
    Tensor y({M, N}, DType::f32), r({M, N}, DType::f32);
    gemm_s8_f32(x.data<float>(), K, M, pw, y.data<float>(), N, 1.f, false);
    gemm_s8_f32_ref(x.data<float>(), K, M, pw, r.data<float>(), N, 1.f, false);
    INFO("M=" << M);
    CHECK(max_abs_diff(y, r) <= 1e-4);  // |y| <= sum|x q s| <= K * 1 * 1: 203 * 2^-24 * sqrt(K) << 1e-4
  }
}

TEST_CASE("batch-1 GEMV on oneDNN's packed panels equals oneDNN's own kernel and the reference", "[matmul][onednn]") {
  // M = 1 runs panel_gemv where oneDNN packed the weight in column panels; M = 2 with the same row
  // twice runs oneDNN's brgemm on the same packed weight. Odd K (bf16 pairs), K not a multiple of the
  // K block, N not a multiple of 64, fewer than 4 panels per grab, and the epilogues.
  struct KN { int64_t k, n; };
  int used = 0;
  for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::bf16})
    for (const KN& s : {KN{1, 1}, KN{7, 65}, KN{33, 64}, KN{64, 300}, KN{203, 131}, KN{576, 1536}, KN{1031, 640}})
      for (const Epilogue& ep : {Epilogue{}, Epilogue{-0.5f, true}}) {
        INFO(weight_format_name(fmt) << " K=" << s.k << " N=" << s.n << " scale=" << ep.scale);
        Tensor w = random_tensor({s.k, s.n}, 61 + uint64_t(s.k));
        PackedWeight pw = pack_weight(w, fmt, Backend::onednn);
        used += matmul_uses_panel_gemv(pw, 1);
        CHECK(!matmul_uses_panel_gemv(pw, 2));
        Tensor x = random_tensor({1, s.k}, 62 + uint64_t(s.n));
        Tensor x2({2, s.k}, DType::f32);
        for (int64_t r = 0; r < 2; ++r) std::copy_n(x.data<float>(), s.k, x2.data<float>() + r * s.k);
        Tensor y = random_tensor({1, s.n}, 63), y2({2, s.n}, DType::f32);
        for (int64_t r = 0; r < 2; ++r) std::copy_n(y.data<float>(), s.n, y2.data<float>() + r * s.n);
        const Tensor y0 = y.clone();
        matmul(x, pw, y, ep);
        matmul(x2, pw, y2, ep);
        // Same rounded operands, f32 accumulation in another order: within kF32AccumTol of each other.
        Tensor ref;
        matmul_ref(fmt == WeightFormat::bf16 ? bf16_rounded(x) : x, fmt == WeightFormat::bf16 ? bf16_rounded(w) : w,
                   ref, Epilogue{ep.scale, false});
        if (ep.accumulate)
          for (int64_t i = 0; i < s.n; ++i) ref.data<float>()[i] += y0.get(i);
        CHECK(scaled_error(y, ref, x, w) <= kF32AccumTol);
        CHECK(scaled_error(y, y2.narrow0(0, 1), x, w) <= kF32AccumTol);
      }
  // AVX-512 machines take the panel kernel for every shape above (brgemm packs f32 and bf16 weights
  // in 64-column panels); elsewhere oneDNN's kernel runs and the checks above still hold.
  if (cpu_has_avx512_bf16()) CHECK(used == 28);
}

TEST_CASE("matmul accepts bf16 activations and leading batch dimensions", "[matmul]") {
  Tensor x = random_tensor({2, 3, 40}, 51);
  Tensor w = random_tensor({40, 24}, 52);
  Tensor ref;
  matmul_ref(bf16_rounded(x).reshape({6, 40}), w, ref);
  for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::int8}) {
    PackedWeight pw = pack_weight(w, fmt, Backend::onednn);
    Tensor y;
    matmul(x.to(DType::bf16), pw, y);
    CHECK(y.shape() == Shape{2, 3, 24});
    const double tol = fmt == WeightFormat::f32 ? 1e-4 : 0.05;  // int8: quantisation error of w
    CHECK(max_abs_diff(y.reshape({6, 24}), ref) <= tol);
  }
}

TEST_CASE("transient weights: column views multiply where they lie, equal to packed copies", "[matmul][onednn]") {
  // The weight-gathered layouts' per-step weights (packed_weight.hpp): f32/oneDNN reads a strided
  // view of the row block and column block, the other formats and backends pack a copy of it.
  const int64_t K = 37, C = 150;
  Tensor whole = random_tensor({K + 9, C}, 81);
  const Tensor rows = whole.narrow0(9, K);  // a row block at an offset, as cut_einsum_weights cuts
  struct Cols { int64_t c0, n; };
  for (Backend be : {Backend::reference, Backend::openblas, Backend::onednn})
    for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8})
      for (const Cols& c : {Cols{0, C}, Cols{0, 64}, Cols{64, 70}, Cols{149, 1}})
        for (int64_t M : {int64_t(1), int64_t(5), int64_t(40)}) {
          if (be == Backend::openblas && fmt == WeightFormat::bf16) continue;
          INFO(backend_name(be) << " " << weight_format_name(fmt) << " cols [" << c.c0 << ", +" << c.n << ") M=" << M);
          const Tensor block = slice_columns(rows.clone(), c.c0, c.n);
          PackedWeight copy = pack_weight(block, fmt, be);
          PackedWeight view = pack_transient_weight(rows, fmt, be, Tensor(), c.c0, c.n);
          REQUIRE(view.k == K);
          REQUIRE(view.n == c.n);
          const bool in_place = fmt == WeightFormat::f32 && be == Backend::onednn;
          CHECK((view.onednn && view.onednn->ld == C) == in_place);
          Tensor x = random_tensor({M, K}, 82 + uint64_t(M)), y_copy, y_view, ref;
          matmul(x, copy, y_copy);
          matmul(x, view, y_view);
          // Same values; the plain-layout and packed primitives may sum in a different order.
          if (fmt == WeightFormat::f32) {
            matmul_ref(x, block, ref);
            CHECK(scaled_error(y_view, ref, x, block) <= kF32AccumTol);
          } else {
            CHECK(max_abs_diff(y_view, y_copy) == 0);  // same packing of the same copy
          }
          Tensor acc = random_tensor({M, c.n}, 90), expect = acc.clone();
          for (int64_t i = 0; i < expect.numel(); ++i) expect.data<float>()[i] += 0.5f * y_view.get(i);
          matmul(x, view, acc, Epilogue{0.5f, true});
          CHECK(max_abs_diff(acc, expect) <= 1e-5);
        }
  // The view keeps its tensor alive after every other handle is gone.
  PackedWeight orphan;
  {
    Tensor w = random_tensor({K, C}, 91);
    orphan = pack_transient_weight(w, WeightFormat::f32, Backend::onednn, Tensor(), 10, 20);
  }
  REQUIRE(orphan.onednn->keep.defined());
  const Tensor reuse = random_tensor({K, C}, 94);  // would likely take the freed block, other values
  Tensor x = random_tensor({3, K}, 92), y, ref;
  matmul(x, orphan, y);
  const Tensor same_block = slice_columns(random_tensor({K, C}, 91), 10, 20);  // same seed, same values
  matmul_ref(x, same_block, ref);
  CHECK(scaled_error(y, ref, x, same_block) <= kF32AccumTol);
  for (Backend be : {Backend::reference, Backend::onednn})
    CHECK_THROWS_WITH(pack_transient_weight(random_tensor({K, C}, 93), WeightFormat::f32, be, Tensor(), 140, 20),
                      Catch::Contains("columns [140, 160)"));
}

TEST_CASE("oneDNN primitives are created once per shape", "[matmul][onednn]") {
  Tensor w = random_tensor({48, 80}, 61);
  PackedWeight pw = pack_weight(w, WeightFormat::bf16, Backend::onednn);
  Tensor x = random_tensor({7, 48}, 62), y;
  matmul(x, pw, y);
  const size_t after_first = detail::onednn_cached_primitives();
  for (int i = 0; i < 5; ++i) matmul(x, pw, y);
  PackedWeight other = pack_weight(random_tensor({48, 80}, 63), WeightFormat::bf16, Backend::onednn);
  matmul(x, other, y);  // same shape, different weights: same primitive
  CHECK(detail::onednn_cached_primitives() == after_first);
}

TEST_CASE("matmul and packing errors name the problem", "[matmul][errors]") {
  Tensor w = random_tensor({8, 4}, 71);
  CHECK_THROWS_WITH(pack_weight(w, WeightFormat::bf16, Backend::openblas),
                    Catch::Contains("openblas") && Catch::Contains("bf16") && Catch::Contains("allowed"));
  PackedWeight pw = pack_weight(w, WeightFormat::f32, Backend::onednn);
  Tensor x = random_tensor({2, 9}, 72), y;
  CHECK_THROWS_WITH(matmul(x, pw, y), Catch::Contains("[..., 8]"));
  Tensor bad({2, 5}, DType::f32);
  CHECK_THROWS_AS(matmul(random_tensor({2, 8}, 73), pw, bad), tori::Error);
  Tensor none;
  CHECK_THROWS_WITH(matmul(random_tensor({2, 8}, 74), pw, none, Epilogue{1.f, true}),
                    Catch::Contains("accumulate"));
  CHECK(parse_matmul_backend("auto") == Backend::onednn);
  CHECK(parse_matmul_backend("openblas") == Backend::openblas);
  CHECK_THROWS_WITH(parse_matmul_backend("mkl", "--matmul"),
                    Catch::Contains("--matmul") && Catch::Contains("mkl") &&
                        Catch::Contains("onednn, openblas, reference, auto"));
  CHECK_THROWS_WITH(parse_weight_format("fp8", "--weights"), Catch::Contains("f32, bf16, int8"));
}

TEST_CASE("int8 packing with given scales equals quantising the whole weight, then slicing", "[matmul][int8]") {
  // A [K, N] weight cut as a sharded run cuts it: row blocks (E sharded, looped-einsum blocks) and
  // column blocks (heads / F / vocab shards). Column n's largest |w| sits in row (7 n) mod K, so
  // most blocks miss their columns' maxima and their own-maximum scales would differ.
  const int64_t K = 37, N = 70;  // odd sizes; N spans two int8 panels
  Tensor w = random_tensor({K, N}, 51);
  for (int64_t n = 0; n < N; ++n) w.data<float>()[((7 * n) % K) * N + n] = 3.f + float(n % 5);
  const Tensor scales = int8_scales(column_amax(w));
  const QuantizedInt8 whole = quantize_int8(w, scales);
  // Same scales as the own-maximum overload on the whole weight: nothing changes for unsharded use.
  const QuantizedInt8 own = quantize_int8(w);
  CHECK(max_abs_diff(whole.scales, own.scales) == 0);
  CHECK(max_abs_diff(dequantize_int8(whole), dequantize_int8(own)) == 0);
  auto q_block = [&](int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
    Tensor out = Tensor::empty({rows, cols}, DType::s8);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        out.data<int8_t>()[r * cols + c] = whole.q.data<int8_t>()[(r0 + r) * N + c0 + c];
    return out;
  };
  auto scale_block = [&](int64_t c0, int64_t cols) {
    Tensor s({cols}, DType::f32);
    for (int64_t c = 0; c < cols; ++c) s.data<float>()[c] = scales.get(c0 + c);
    return s;
  };
  struct Cut { int64_t r0, rows, c0, cols; };
  int differ_with_own_scales = 0;
  for (const Cut& b : {Cut{0, K, 0, N}, Cut{0, 12, 0, N}, Cut{12, 13, 0, N}, Cut{25, 12, 5, 65},
                       Cut{0, K, 3, 17}, Cut{10, 1, 64, 6}})
    for (Backend be : {Backend::reference, Backend::onednn}) {
      INFO(backend_name(be) << " rows [" << b.r0 << ", +" << b.rows << ") cols [" << b.c0 << ", +" << b.cols << ")");
      Tensor block({b.rows, b.cols}, DType::f32);
      for (int64_t r = 0; r < b.rows; ++r)
        for (int64_t c = 0; c < b.cols; ++c) block.data<float>()[r * b.cols + c] = w.get((b.r0 + r) * N + b.c0 + c);
      PackedWeight pw = pack_weight(block, WeightFormat::int8, be, scale_block(b.c0, b.cols));
      CHECK(max_abs_diff(pw.scales, scale_block(b.c0, b.cols)) == 0);
      Tensor want = pack_s8_panels(q_block(b.r0, b.rows, b.c0, b.cols));
      REQUIRE(pw.panels.nbytes() == want.nbytes());
      CHECK(std::memcmp(pw.panels.raw(), want.raw(), want.nbytes()) == 0);
      // The block's own maxima (the old per-shard quantisation) give other scales for most cuts.
      PackedWeight local = pack_weight(block, WeightFormat::int8, be);
      differ_with_own_scales += max_abs_diff(local.scales, pw.scales) > 0;
    }
  CHECK(differ_with_own_scales >= 6);
  // Wrong number of scales: an error naming both shapes.
  CHECK_THROWS_WITH(pack_weight(w, WeightFormat::int8, Backend::reference, scale_block(0, 3)),
                    Catch::Contains("3 scales") && Catch::Contains("[37, 70]"));
}
