// Attention over a KV cache against attention_ref (the reference model's f64 loops): multihead,
// grouped, multiquery; prefill with T = 0 and with a cached prefix, ragged batches, idle
// sequences, long decode that splits positions across threads; f32 and bf16 caches.
#include <catch2/catch.hpp>
#include <omp.h>

#include "kernels/attention.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {
// Outputs are convex combinations of V rows in [-1, 1]. f32 scores over D <= 128 terms carry
// ~1e-6 relative error, which moves probabilities and outputs by about as much; 2e-5 leaves room
// for long T while any masking/indexing error (O(0.1)) fails. The bf16 cache needs no looser bound:
// attention_ref reads the same bf16 values, so only accumulation order differs.
constexpr double kAttentionTol = 2e-5;

struct Case {
  int64_t B, H, K, D;
};

// Fills sequence b of `cache` with `past` random positions.
void prefill_cache(KvCache& cache, int64_t b, int64_t n, uint64_t seed) {
  const int64_t row = cache.kv_heads() * cache.d_head();
  Tensor k = random_tensor({n, row}, seed), v = random_tensor({n, row}, seed + 1);
  cache.append(b, k, v);
}

// Both block kernels (AVX-512 where the CPU has it, and the portable one) against the reference.
void check_step(const KvCache& cache, const Tensor& q, std::span<const int64_t> n_new) {
  Tensor ref;
  attention_ref(q, cache, n_new, ref);
  for (bool portable : {false, true}) {
    set_force_portable_attention(portable);
    Tensor out;
    attention(q, cache, n_new, out);
    INFO("portable=" << portable);
    CHECK(max_abs_diff(out, ref) <= kAttentionTol);
  }
  set_force_portable_attention(false);
}
}  // namespace

TEST_CASE("attention prefill: MHA, GQA, MQA, T = 0 and cached prefix, ragged", "[attention]") {
  for (DType dt : {DType::f32, DType::bf16})
    for (Case c : {Case{2, 4, 4, 16}, Case{2, 8, 2, 24}, Case{3, 6, 1, 128}, Case{1, 5, 1, 7},
                   Case{1, 3, 1, 200}}) {
      INFO("dtype=" << dtype_name(dt) << " B=" << c.B << " H=" << c.H << " K=" << c.K << " D=" << c.D);
      const int64_t L = 9;
      KvCache cache(c.B, c.K, 64, c.D, dt);
      // Sequence b has past = 7*b cached positions (b = 0: T = 0) and n_new = L - 2b new ones.
      std::vector<int64_t> n_new;
      for (int64_t b = 0; b < c.B; ++b) {
        if (b) prefill_cache(cache, b, 7 * b, 10 + uint64_t(b));
        n_new.push_back(L - 2 * b);
        prefill_cache(cache, b, n_new.back(), 20 + uint64_t(b));
      }
      Tensor q = random_tensor({c.B, L, c.H, c.D}, 30, -2.f, 2.f);
      check_step(cache, q, n_new);
    }
}

TEST_CASE("attention decode: long caches split across threads, idle sequences", "[attention]") {
  for (DType dt : {DType::f32, DType::bf16})
    for (Case c : {Case{1, 4, 1, 64}, Case{3, 4, 2, 32}, Case{2, 2, 2, 17}}) {
      INFO("dtype=" << dtype_name(dt) << " B=" << c.B << " H=" << c.H << " K=" << c.K << " D=" << c.D);
      KvCache cache(c.B, c.K, 2100, c.D, dt);
      std::vector<int64_t> n_new;
      for (int64_t b = 0; b < c.B; ++b) {
        prefill_cache(cache, b, 1 + 997 * b + (b == 0 ? 1500 : 0), 40 + uint64_t(b));
        n_new.push_back(b == 1 ? 0 : 1);  // sequence 1 idles this step
      }
      Tensor q = random_tensor({c.B, 1, c.H, c.D}, 50, -3.f, 3.f);
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        check_step(cache, q, n_new);
      }
      Tensor out;
      attention(q, cache, n_new, out);
      if (c.B > 1)
        for (int64_t i = 0; i < c.H * c.D; ++i) REQUIRE(out.get(c.H * c.D + i) == 0.f);
    }
}

TEST_CASE("attention with a single visible position returns that V row", "[attention]") {
  KvCache cache(1, 1, 4, 8);
  prefill_cache(cache, 0, 1, 60);
  Tensor q = random_tensor({1, 1, 3, 8}, 61);
  Tensor out;
  attention(q, cache, {}, out);
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t d = 0; d < 8; ++d)
      CHECK(out.get(h * 8 + d) == Approx(cache.v().get(cache.v_offset(0, 0, 0, d))).margin(1e-6));
}

TEST_CASE("attention and KV cache errors name the problem", "[attention][errors]") {
  KvCache cache(2, 2, 8, 4);
  prefill_cache(cache, 0, 3, 70);
  Tensor q = random_tensor({2, 1, 3, 4}, 71), out;  // H = 3 not a multiple of K = 2
  CHECK_THROWS_WITH(attention(q, cache, {}, out), Catch::Contains("multiple of K = 2"));
  Tensor q2 = random_tensor({2, 2, 4, 4}, 72);
  std::vector<int64_t> n_new = {2, 1};  // sequence 1 holds 0 positions
  CHECK_THROWS_WITH(attention(q2, cache, n_new, out), Catch::Contains("sequence 1"));
  CHECK_THROWS_WITH(prefill_cache(cache, 0, 6, 73), Catch::Contains("max_seq = 8"));
  CHECK(attention_cost(q2, cache, std::vector<int64_t>{2, 0}).weight_bytes == cache.bytes_for(3));
}

// attention_bf16 (prefill on bf16 GEMM tiles) rounds q, k, v and the softmax weights to bf16
// (relative error <= 2^-9 each). With q in [-2, 2], k, v in [-1, 1] a score moves by up to
// ~2^-8 · |q|·|k| / sqrt(D) ≈ 0.01 at worst (D = 7 .. 256), so the weights move by ~1 % of
// themselves and an output (a convex combination of v rows in [-1, 1]) by a few 1e-3: measured
// 2.2e-3 .. 3.8e-3 over these cases (the largest: GQA, D = 64). 1e-2 leaves 2.6x headroom, while a
// mask one key off (each row seeing its next token) moves outputs by 1.37.
constexpr double kAttentionBf16Tol = 1e-2;

TEST_CASE("attention_bf16 prefill: chunks, causal diagonal, MHA/GQA/MQA, ragged, idle, cached prefix",
          "[attention]") {
  if (!attention_bf16_available()) {
    WARN("no AVX512-BF16/AMX: attention_bf16 not run");
    return;
  }
  double worst = 0;
  for (DType dt : {DType::f32, DType::bf16})
    for (Case c : {Case{2, 4, 4, 16}, Case{3, 8, 2, 64}, Case{3, 6, 1, 128}, Case{1, 5, 1, 7}, Case{2, 4, 1, 256}}) {
      INFO("dtype=" << dtype_name(dt) << " B=" << c.B << " H=" << c.H << " K=" << c.K << " D=" << c.D);
      const int64_t L = 300;  // > 256: items of several query blocks, keys in several chunks
      KvCache cache(c.B, c.K, 700, c.D, dt);
      // Sequence 0: a fresh prompt of L; 1: 301 cached positions, then L - 45 new; 2: idle.
      std::vector<int64_t> n_new;
      for (int64_t b = 0; b < c.B; ++b) {
        if (b == 1) prefill_cache(cache, b, 301, 80);
        n_new.push_back(b == 0 ? L : b == 1 ? L - 45 : 0);
        if (b == 2) prefill_cache(cache, b, 5, 81);  // cached, but no new tokens this step
        if (n_new.back() > 0) prefill_cache(cache, b, n_new.back(), 90 + uint64_t(b));
      }
      Tensor q = random_tensor({c.B, L, c.H, c.D}, 95, -2.f, 2.f);
      Tensor ref, out;
      attention_ref(q, cache, n_new, ref);
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        attention_bf16(q, cache, n_new, out);
        const double err = max_abs_diff(out, ref);
        worst = std::max(worst, err);
        CHECK(err <= kAttentionBf16Tol);
        CHECK(err > 0);  // it did round: not the f32 kernel under another name
      }
      if (c.B > 2)
        for (int64_t i = 0; i < L * c.H * c.D; ++i) REQUIRE(out.get(2 * L * c.H * c.D + i) == 0.f);
    }
  WARN("attention_bf16: largest |error| against attention_ref " << worst);
}
