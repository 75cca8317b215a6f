// int4 weights (kernels/quantize.hpp, kernels/gemm_s4_f32.hpp): the group-wise quantiser (its error,
// idempotence, group locality), the panel packing (lossless), the VNNI kernel against its _ref at odd
// shapes and every M, and the whole matmul against f64 maths on the dequantised weights.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/cpu_features.hpp"
#include "kernels/gemm_s4_f32.hpp"
#include "kernels/matmul.hpp"
#include "kernels/packed_weight.hpp"
#include "kernels/quantize.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {

bool same(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.get(i) != b.get(i)) return false;
  return true;
}

// Odd shapes: N not a multiple of 16 or 64, several panels, K = 1 and many groups.
struct Int4Shape {
  int64_t m, k, n;
};
constexpr Int4Shape kInt4Shapes[] = {{1, 32, 1}, {1, 96, 65}, {3, 160, 131}, {5, 64, 200}, {17, 224, 70}, {40, 128, 129}};

}  // namespace

TEST_CASE("int4 quantiser: error of a 4-bit grid, idempotent, group-local", "[matmul][int4]") {
  for (bool with_min : {false, true}) {
    INFO((with_min ? "Q4_1 form" : "Q4_0 form"));
    Tensor w = random_tensor({256, 70}, 7);
    QuantizedInt4 q = quantize_int4(w, with_min);
    for (int64_t i = 0; i < q.q.numel(); ++i) REQUIRE((q.q.data<int8_t>()[i] >= 0 && q.q.data<int8_t>()[i] <= 15));
    // Uniform values in [-1, 1): the step is (max - min) / 15 < 2/15 (Q4_1), error at most half a
    // step plus the f16 rounding of min (2^-11) and of the scale (15 · 2^-12 · step); Q4_0's step is
    // |v|/8 <= 1/8, and the far end, -8 steps from the largest value's sign, is clamped at 7 steps:
    // an error up to one step. rms: step/sqrt(12) against rms(w) = 1/sqrt(3), about 0.07.
    const QuantError e = quantization_error(w, q);
    CHECK(e.max_abs <= (with_min ? 0.5 * 2.0 / 15 + 0.002 : 1.0 / 8 * 1.01));
    CHECK(e.rel_rms < 0.08);
    CHECK(e.rel_rms > 0.04);  // a 4-bit grid, not a finer one
    // Idempotent: quantising the dequantised weight gives the same codes, scales and mins.
    QuantizedInt4 again = quantize_int4(dequantize_int4(q), with_min);
    CHECK(same(again.q, q.q));
    CHECK(same(again.scales, q.scales));
    CHECK(same(again.mins, q.mins));
    // Group-local: rows [64, 128) alone quantise as the same rows of the whole.
    QuantizedInt4 part = quantize_int4(w.narrow0(64, 64).clone(), with_min);
    CHECK(same(part.q, q.q.narrow0(64, 64).clone()));
    CHECK(same(part.scales, q.scales.narrow0(2, 2).clone()));
  }
  CHECK_THROWS_WITH(quantize_int4(random_tensor({48, 4}, 1), false), Catch::Contains("group size 32"));
}

TEST_CASE("int4 panels: packing is lossless", "[matmul][int4]") {
  for (WeightFormat f : {WeightFormat::int4, WeightFormat::int4_min})
    for (const Int4Shape& s : kInt4Shapes) {
      INFO(weight_format_name(f) << " K=" << s.k << " N=" << s.n);
      Tensor w = random_tensor({s.k, s.n}, 11 + uint64_t(s.n));
      PackedWeight pw = pack_weight(w, f, Backend::onednn);
      QuantizedInt4 q = quantize_int4(w, f == WeightFormat::int4_min);
      QuantizedInt4 back = unpack_s4_panels(pw);
      CHECK(same(back.q, q.q));
      CHECK(same(back.scales, q.scales));
      CHECK(same(back.mins, q.mins));
      // 4 bits per weight plus f16 scale (and min) per 32 rows, over whole 64-column panels.
      const int64_t P = (s.n + 63) / 64;
      CHECK(pw.weight_bytes() == P * (s.k / 32) * s4_block_bytes(f == WeightFormat::int4_min));
    }
}

TEST_CASE("int4 VNNI kernel equals its _ref for M = 1..17 and beyond, odd shapes, each row alone (M = 1) alike", "[matmul][int4]") {
  if (!cpu_has_avx512_vnni()) WARN("no AVX-512 VNNI: gemm_s4_f32 is the _ref itself here");
  for (WeightFormat f : {WeightFormat::int4, WeightFormat::int4_min})
    for (const Int4Shape& s : kInt4Shapes) {
      Tensor w = random_tensor({s.k, s.n}, 21 + uint64_t(s.k));
      PackedWeight pw = pack_weight(w, f, Backend::onednn);
      for (int64_t M : {s.m, int64_t(1), int64_t(4), int64_t(16), int64_t(17), int64_t(37)}) {
        INFO(weight_format_name(f) << " M=" << M << " K=" << s.k << " N=" << s.n);
        Tensor x = random_tensor({M, s.k}, 22 + uint64_t(M));
        Tensor y = random_tensor({M, s.n}, 3), r = y.clone(), rows = y.clone();
        gemm_s4_f32(x.data<float>(), s.k, M, pw, y.data<float>(), s.n, 0.5f, true);
        gemm_s4_f32_ref(x.data<float>(), s.k, M, pw, r.data<float>(), s.n, 0.5f, true);
        // Same integers on both sides (shared activation quantisation, exact i32 dot products of
        // each group); they differ only in summing K/32 f32 group terms vs f64: |term| <= 32 · 1 · 1,
        // K/32 <= 7 terms, f32 rounding 2^-24 per add: far below 1e-4.
        CHECK(max_abs_diff(y, r) <= 1e-4);
        // M = 1 runs its own decode kernel (a panel's sums in registers), M > 1 the tiled one: same
        // integers, same f32 operations in the same order, so each row alone equals it bit for bit.
        for (int64_t m = 0; m < M && M > 1; ++m)
          gemm_s4_f32(x.data<float>() + m * s.k, s.k, 1, pw, rows.data<float>() + m * s.n, s.n, 0.5f, true);
        if (M > 1) CHECK(max_abs_diff(rows, y) == 0.0);
      }
    }
}

TEST_CASE("int4 matmul: f64 maths on the dequantised weights, within the activation rounding", "[matmul][int4]") {
  for (WeightFormat f : {WeightFormat::int4, WeightFormat::int4_min})
    for (Backend be : {Backend::reference, Backend::onednn})
      for (const Int4Shape& s : kInt4Shapes) {
        INFO(weight_format_name(f) << " " << backend_name(be) << " M=" << s.m << " K=" << s.k << " N=" << s.n);
        Tensor x = random_tensor({s.m, s.k}, 31 + uint64_t(s.m));
        Tensor w = random_tensor({s.k, s.n}, 32 + uint64_t(s.k));
        PackedWeight pw = pack_weight(w, f, be);
        Tensor wq = dequantize_int4(quantize_int4(w, f == WeightFormat::int4_min));
        Tensor y, ref;
        matmul(x, pw, y);
        matmul_ref(x, wq, ref);
        // Activations as 254·hi + lo in units of amax/(127·254) per group of 32: each x moves by at
        // most amax/64516 <= 1/64516, so |y - ref| <= K · max|wq| / 64516 (max|wq| <= 1.07), plus
        // f32 sums of K/32 group terms (well under 1e-5 here).
        CHECK(max_abs_diff(y, ref) <= double(s.k) * 1.07 / 64516.0 + 1e-5);
        // And tighter in practice (rounding errors cancel): rms relative error under 1e-4.
        double se = 0, sr = 0;
        for (int64_t i = 0; i < y.numel(); ++i) {
          se += std::pow(double(y.get(i)) - ref.get(i), 2);
          sr += std::pow(double(ref.get(i)), 2);
        }
        CHECK(std::sqrt(se / sr) < 1e-4);
      }
}

TEST_CASE("int4 packing refuses K that is not whole groups", "[matmul][int4][errors]") {
  CHECK_THROWS_WITH(pack_weight(random_tensor({40, 8}, 1), WeightFormat::int4, Backend::onednn),
                    Catch::Contains("multiple of the group size 32") && Catch::Contains("[40, 8]"));
  CHECK_THROWS_WITH(parse_weight_format("int3", "--dtype"), Catch::Contains("int4-min"));
  CHECK(parse_weight_format("int4-min") == WeightFormat::int4_min);
  CHECK(parse_weight_format("q4_0") == WeightFormat::int4);
}
