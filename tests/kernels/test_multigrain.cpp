// Attention patterns, their coarse/fine split, and multigrain attention against the dense masked
// reference (multigrain_attention_ref, f64): every grain (multigrain, the two single-grain
// variants, dense masked) on windows 1, 7, 64, 512 with 0, 1 and 64 global tokens, lengths 1 to
// 8k, block-random patterns, prefill with a cached prefix, decode, ragged batches, MHA/GQA/MQA,
// f32 and bf16 caches, both block kernels (AVX-512 and portable).
#include <catch2/catch.hpp>
#include <omp.h>

#include <set>

#include "kernels/attention.hpp"
#include "kernels/error.hpp"
#include "kernels/multigrain_attention.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {

// Outputs are convex combinations of V rows in [-1, 1]. f32 scores over D <= 64 terms carry ~1e-6
// relative error (OpenBLAS sgemm for coarse tiles, the block kernel for fine pieces), moving
// probabilities and outputs by about as much, and the log-sum-exp merge adds one rounding per item
// (at most a few dozen per row at 8k). 2e-5 keeps room for 8k-long rows, while a pattern error
// (one key too many or too few) moves outputs by ~1/window >= 2e-3 at window 512 (shown below).
constexpr double kMultigrainTol = 2e-5;

constexpr Grain kGrains[] = {Grain::multi, Grain::coarse, Grain::fine, Grain::dense};

void fill(KvCache& cache, int64_t b, int64_t n, uint64_t seed) {
  const int64_t row = cache.kv_heads() * cache.d_head();
  cache.append(b, random_tensor({n, row}, seed), random_tensor({n, row}, seed + 1));
}

// Every grain, and both block kernels for the multigrain one, against the reference.
void check_all(const KvCache& cache, const Tensor& q, std::span<const int64_t> n_new, const AttentionPattern& p) {
  Tensor ref;
  multigrain_attention_ref(q, cache, n_new, p, ref);
  for (Grain g : kGrains) {
    Tensor out;
    multigrain_attention(q, cache, n_new, p, out, g);
    INFO("pattern=" << p.describe() << " grain=" << grain_name(g));
    CHECK(max_abs_diff(out, ref) <= kMultigrainTol);
  }
  {
    Tensor out;
    multigrain_attention(q, cache, n_new, p, out, Grain::multi, Backend::openblas);
    INFO("pattern=" << p.describe() << " coarse tiles on OpenBLAS");
    CHECK(max_abs_diff(out, ref) <= kMultigrainTol);
  }
  set_force_portable_attention(true);
  Tensor out;
  multigrain_attention(q, cache, n_new, p, out);
  set_force_portable_attention(false);
  INFO("pattern=" << p.describe() << " portable block kernel");
  CHECK(max_abs_diff(out, ref) <= kMultigrainTol);
}

// One sequence of L new tokens after `past` cached ones.
void check_prefill(int64_t L, int64_t past, int64_t H, int64_t K, int64_t D, const AttentionPattern& p,
                   DType dt = DType::f32) {
  KvCache cache(1, K, past + L, D, dt);
  fill(cache, 0, past + L, uint64_t(L * 7 + past));
  Tensor q = random_tensor({1, L, H, D}, uint64_t(L + 3), -2.f, 2.f);
  INFO("L=" << L << " past=" << past << " H=" << H << " K=" << K << " D=" << D << " dtype=" << dtype_name(dt));
  check_all(cache, q, {}, p);
}

AttentionPattern with_globals(AttentionPattern p, std::vector<int64_t> pos) {
  p.global_positions = std::move(pos);
  return p;
}

}  // namespace

TEST_CASE("attention patterns: row spans equal the predicate; window means the w most recent keys",
          "[multigrain]") {
  const AttentionPattern pats[] = {
      AttentionPattern::causal(), AttentionPattern::sliding_window(1), AttentionPattern::sliding_window(7, 1),
      AttentionPattern::sliding_window(64, 64), with_globals(AttentionPattern::sliding_window(5, 2), {40, 41, 90}),
      AttentionPattern::block_random(16, 2, 9, 3, 1)};
  for (const auto& p : pats)
    for (int64_t q = 0; q < 150; ++q) {
      const auto spans = p.row_spans(q, 140);
      std::set<int64_t> from_spans;
      for (auto [a, b] : spans)
        for (int64_t k = a; k < b; ++k) from_spans.insert(k);
      std::set<int64_t> from_pred;
      for (int64_t k = 0; k < 140; ++k)
        if (p.allowed(q, k)) from_pred.insert(k);
      INFO(p.describe() << " q=" << q);
      REQUIRE(from_spans == from_pred);
    }
  const auto w = AttentionPattern::sliding_window(7);
  CHECK(w.allowed(100, 94));   // 7 keys: 94 .. 100
  CHECK(!w.allowed(100, 93));
  CHECK(!w.allowed(100, 101));  // causal
  const auto g = AttentionPattern::sliding_window(7, 2);
  CHECK(g.allowed(100, 1));    // global keys are seen by all
  CHECK(g.allowed(1, 0));      // global rows see all earlier keys...
  CHECK(!g.allowed(1, 2));     // ...causally
  CHECK(g.describe() == "sliding_window(w=7, global_first=2)");
}

TEST_CASE("split: runs lie wholly inside the pattern, runs + pieces cover each row exactly once",
          "[multigrain]") {
  const AttentionPattern pats[] = {
      AttentionPattern::causal(), AttentionPattern::sliding_window(1), AttentionPattern::sliding_window(7, 1),
      AttentionPattern::sliding_window(64), AttentionPattern::sliding_window(130, 64),
      with_globals(AttentionPattern::sliding_window(100, 4), {200, 201, 333}),
      AttentionPattern::block_random(64, 2, 3, 64, 1)};
  struct Shape {
    int64_t lq, lk;
  };
  for (const auto& p : pats)
    for (Shape s : {Shape{1, 1}, Shape{1, 700}, Shape{300, 300}, Shape{257, 500}, Shape{64, 1000}})
      for (Grain grain : kGrains) {
        const AttentionSplit sp = split_pattern(p, s.lq, s.lk, s.lk - s.lq, grain);
        INFO(p.describe() << " lq=" << s.lq << " lk=" << s.lk << " grain=" << grain_name(grain));
        int64_t allowed = 0;
        for (const QueryBlock& qb : sp.blocks)
          for (int64_t i = qb.i0; i < qb.i1; ++i) {
            const int64_t q = s.lk - s.lq + i;
            std::vector<int> cover(size_t(s.lk), 0);
            int64_t outside = 0;  // unmasked run keys the row may not see
            for (const CoarseRun& r : qb.runs) {
              REQUIRE(r.k0 % kKvBlock == 0);
              for (int64_t k = r.k0; k < r.k1; ++k) {
                const bool a = p.allowed(q, k);
                outside += !r.masked && !a;  // runs must lie wholly inside, for every row of the block
                cover[size_t(k)] += a;
              }
            }
            REQUIRE(outside == 0);
            for (const FineLayer& fl : qb.layers) {
              const int64_t lo = sp.bounds[size_t(fl.first + 2 * (i - qb.i0))];
              const int64_t hi = sp.bounds[size_t(fl.first + 2 * (i - qb.i0) + 1)];
              if (lo < hi) REQUIRE((fl.t0 <= lo && hi <= fl.t1 && fl.t0 % kKvBlock == 0));
              for (int64_t k = lo; k < hi; ++k) ++cover[size_t(k)];
            }
            int64_t wrong = 0;  // keys covered other than once if allowed, zero times if not
            for (int64_t k = 0; k < s.lk; ++k) {
              const bool a = p.allowed(q, k);
              wrong += cover[size_t(k)] != (a ? 1 : 0);
              allowed += a;
            }
            INFO("q=" << q);
            REQUIRE(wrong == 0);
          }
        CHECK(sp.allowed_pairs == allowed);
        if (grain == Grain::multi || grain == Grain::fine) CHECK(sp.coarse_pairs + sp.fine_pairs == allowed);
        if (grain == Grain::fine) CHECK(sp.coarse_pairs == 0);
        if (grain == Grain::coarse || grain == Grain::dense) CHECK(sp.fine_pairs == 0);
      }
  // A band of 512 over 64-token query blocks: 7 of its ~9 key blocks per query block are coarse.
  const AttentionSplit sp = split_pattern(AttentionPattern::sliding_window(512, 4), 4096, 4096, 0, Grain::multi);
  CHECK(double(sp.coarse_pairs) / double(sp.allowed_pairs) > 0.8);
}

TEST_CASE("split cache: computed once per (pattern, shape, grain)", "[multigrain]") {
  const auto p = AttentionPattern::sliding_window(33, 3);
  const auto a = cached_split(p, 100, 150, 50, Grain::multi);
  const auto b = cached_split(p, 100, 150, 50, Grain::multi);
  CHECK(a == b);
  CHECK(cached_split(p, 100, 150, 50, Grain::fine) != a);
  CHECK(cached_split(AttentionPattern::sliding_window(34, 3), 100, 150, 50, Grain::multi) != a);
}

TEST_CASE("multigrain prefill: windows 1, 7, 64, 512 x 0, 1, 64 global tokens, lengths 1 .. 2k",
          "[multigrain]") {
  for (int64_t w : {1, 7, 64, 512})
    for (int64_t g : {0, 1, 64})
      for (int64_t L : {1, 5, 130, 700, 2048}) {
        const int64_t H = L >= 2048 ? 1 : 4, K = L >= 2048 ? 1 : 2;
        check_prefill(L, 0, H, K, 16, AttentionPattern::sliding_window(w, g));
      }
}

TEST_CASE("multigrain prefill at 8k: window 512 with 0, 1 and 64 globals, MQA", "[multigrain]") {
  for (int64_t g : {0, 1, 64}) check_prefill(8192, 0, 1, 1, 8, AttentionPattern::sliding_window(512, g));
}

TEST_CASE("multigrain: MHA, GQA, MQA, d_head 7 .. 256, cached prefix, bf16, listed globals, causal",
          "[multigrain]") {
  check_prefill(200, 0, 4, 4, 64, AttentionPattern::sliding_window(64, 1));            // MHA
  check_prefill(200, 37, 8, 2, 24, AttentionPattern::sliding_window(7, 1));            // GQA
  check_prefill(150, 100, 8, 1, 256, AttentionPattern::sliding_window(64, 4));         // MQA, D 256
  check_prefill(97, 300, 3, 1, 7, AttentionPattern::sliding_window(100, 2));           // odd D
  check_prefill(300, 65, 2, 1, 32, AttentionPattern::sliding_window(64, 4), DType::bf16);
  check_prefill(400, 0, 2, 2, 16, with_globals(AttentionPattern::sliding_window(30), {3, 64, 65, 250}));
  check_prefill(333, 10, 2, 1, 16, AttentionPattern::causal());
}

TEST_CASE("multigrain: block-random (BigBird-style) patterns", "[multigrain]") {
  for (uint64_t seed : {1u, 2u, 3u})
    check_prefill(600, 40, 4, 2, 16, AttentionPattern::block_random(64, 3, seed, 64, 2));
  check_prefill(500, 0, 2, 1, 16, AttentionPattern::block_random(16, 4, 7, 5, 0));
}

TEST_CASE("multigrain decode and ragged batches: idle sequences, 1 and 2 threads", "[multigrain]") {
  const int64_t B = 4, K = 2, H = 4, D = 32;
  const int64_t lens[] = {1, 600, 3000, 1300};
  for (DType dt : {DType::f32, DType::bf16}) {
    KvCache cache(B, K, 3100, D, dt);
    for (int64_t b = 0; b < B; ++b) fill(cache, b, lens[b], 60 + uint64_t(b));
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      INFO("threads=" << threads << " dtype=" << dtype_name(dt));
      // decode: one new token per sequence, sequence 3 idle
      std::vector<int64_t> dec = {1, 1, 1, 0};
      Tensor q = random_tensor({B, 1, H, D}, 70, -3.f, 3.f);
      for (const auto& p : {AttentionPattern::sliding_window(512, 4), AttentionPattern::sliding_window(7),
                            AttentionPattern::causal(), AttentionPattern::block_random(64, 2, 5, 64, 1)})
        check_all(cache, q, dec, p);
      // ragged prefill: the last n_new[b] cached positions of each sequence are new
      std::vector<int64_t> pre = {1, 130, 0, 257};
      Tensor qp = random_tensor({B, 257, H, D}, 71, -2.f, 2.f);
      check_all(cache, qp, pre, AttentionPattern::sliding_window(64, 1));
    }
  }
  omp_set_num_threads(2);
}

TEST_CASE("multigrain: the check fails when the window is off by one", "[multigrain]") {
  // The mutation the tolerance must catch: a kernel run with window w + 1 against the reference at w.
  for (int64_t w : {7, 512}) {
    KvCache cache(1, 1, 1500, 16);
    fill(cache, 0, 1500, 80);
    Tensor q = random_tensor({1, 1500, 2, 16}, 81, -2.f, 2.f);
    Tensor ref, out;
    multigrain_attention_ref(q, cache, {}, AttentionPattern::sliding_window(w, 4), ref);
    multigrain_attention(q, cache, {}, AttentionPattern::sliding_window(w + 1, 4), out);
    INFO("w=" << w);
    CHECK(max_abs_diff(out, ref) > 10 * kMultigrainTol);
    multigrain_attention(q, cache, {}, AttentionPattern::sliding_window(w, 4), out);
    CHECK(max_abs_diff(out, ref) <= kMultigrainTol);
  }
}

TEST_CASE("attention pattern errors name the field", "[multigrain][errors]") {
  auto msg = [](const AttentionPattern& p) {
    try {
      p.validate();
    } catch (const tori::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(msg(AttentionPattern::sliding_window(0)), Catch::Contains("window = 0") && Catch::Contains(">= 1"));
  CHECK_THAT(msg(AttentionPattern::sliding_window(-3)), Catch::Contains("window = -3"));
  CHECK_THAT(msg(AttentionPattern::sliding_window(4, -1)), Catch::Contains("global_first = -1"));
  CHECK_THAT(msg(with_globals(AttentionPattern::sliding_window(4), {-2})), Catch::Contains("global_positions"));
  CHECK_THAT(msg(AttentionPattern::block_random(0, 1, 1, 4)), Catch::Contains("block = 0"));
  CHECK_THAT(msg(AttentionPattern::block_random(8, -1, 1, 4)), Catch::Contains("random_blocks = -1"));
  CHECK(msg(AttentionPattern::causal()) == "no error");
  KvCache cache(1, 1, 8, 4);
  fill(cache, 0, 8, 1);
  Tensor q = random_tensor({1, 8, 1, 4}, 2), out;
  CHECK_THROWS_AS(multigrain_attention(q, cache, {}, AttentionPattern::sliding_window(0), out), tori::InputError);
}
