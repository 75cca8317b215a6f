// The sliding-window KV cache (kernels/kv_cache.hpp): a sequence streamed through it step by step
// (decode steps, chunks up to max_step(), longer steps through widened()) attends exactly as the
// same pattern over a full cache of every position: multigrain attention on the window cache's
// slots against multigrain_attention_ref on the full cache's positions, after every step, for
// windows 1 .. 70 with and without sinks, MQA/GQA, f32 and bf16, ragged batches; and its memory
// stays sink + w - 1 + kWindowSlack slots however long the sequence.
#include <catch2/catch.hpp>

#include "kernels/error.hpp"
#include "kernels/multigrain_attention.hpp"
#include "tests/kernels/kernel_test_util.hpp"

using namespace tori::kernels;
using namespace tori::kernels::testing;

namespace {

// The multigrain kernel against its f64 reference (test_multigrain.cpp's kMultigrainTol): outputs
// are convex combinations of V rows in [-1, 1]; a position kept or dropped wrongly moves them by
// ~1/window >= 1e-2 here.
constexpr double kTol = 2e-5;

// Streams `steps` (new positions per step, per sequence; 0 = idle) through a window cache and a
// full cache; after each step compares every new query's output. Returns the largest difference.
double stream(int64_t window, int64_t sink, int64_t H, int64_t K, int64_t D, DType dtype,
              const std::vector<std::vector<int64_t>>& steps, int64_t max_seq) {
  const int64_t B = int64_t(steps.front().size()), row = K * D;
  const AttentionPattern p = AttentionPattern::sliding_window(window, sink);
  KvCache win(B, K, max_seq, D, dtype, window, sink), full(B, K, max_seq, D, dtype);
  double worst = 0;
  uint64_t seed = 11;
  for (const auto& n : steps) {
    int64_t L = 0;
    for (int64_t x : n) L = std::max(L, x);
    const Tensor q = random_tensor({B, L, H, D}, seed++);
    int64_t longest = 0;
    for (int64_t x : n) longest = std::max(longest, x);
    KvCache wide;
    const bool widen = longest > win.max_step();
    if (widen) wide = win.widened(longest);
    for (int64_t b = 0; b < B; ++b) {
      if (n[size_t(b)] == 0) continue;
      const Tensor k = random_tensor({n[size_t(b)], row}, seed++), v = random_tensor({n[size_t(b)], row}, seed++);
      full.append(b, k, v);
      win.append(b, k, v);
      if (widen) wide.append(b, k, v);
    }
    Tensor want, got;
    multigrain_attention_ref(q, full, n, p, want);
    multigrain_attention(q, widen ? wide : win, n, p, got);
    worst = std::max(worst, max_abs_diff(want, got));
    for (int64_t b = 0; b < B; ++b) {
      REQUIRE(win.positions(b) == full.length(b));
      REQUIRE(win.length(b) <= win.slots());
    }
  }
  return worst;
}

// A prompt of `prompt` positions in chunks of `chunk`, then `decode` single steps; sequence 1 starts
// later and is idle meanwhile (ragged).
std::vector<std::vector<int64_t>> schedule(int64_t prompt, int64_t chunk, int64_t decode) {
  std::vector<std::vector<int64_t>> s;
  for (int64_t done = 0; done < prompt; done += chunk) s.push_back({std::min(chunk, prompt - done), 0});
  s.push_back({0, 5});
  for (int64_t i = 0; i < decode; ++i) s.push_back({1, i % 3 == 0 ? 0 : 1});
  return s;
}

}  // namespace

TEST_CASE("window cache: every step attends as the full cache under the same pattern", "[kv_cache][window]") {
  for (int64_t window : {1, 16, 70})
    for (int64_t sink : {0, 4})
      for (int64_t chunk : {13, 160}) {
        CAPTURE(window, sink, chunk);
        // chunk 160: one step longer than max_step(), attended through widened().
        CHECK(stream(window, sink, 4, 1, 16, DType::f32, schedule(160, chunk, 100), 300) < kTol);
      }
  CHECK(stream(7, 4, 4, 1, 16, DType::f32, schedule(40, 1, 100), 300) < kTol);  // token by token
  CHECK(stream(9, 2, 6, 3, 8, DType::f32, schedule(100, 40, 90), 200) < kTol);   // GQA
  CHECK(stream(20, 1, 2, 2, 32, DType::bf16, schedule(90, 30, 80), 200) < kTol);  // MHA, bf16
}

TEST_CASE("window cache: memory and positions", "[kv_cache][window]") {
  CHECK(window_slots(32768, 512, 0) == 511 + kWindowSlack);
  CHECK(window_slots(32768, 512, 4) == 515 + kWindowSlack);
  CHECK(window_slots(300, 512, 4) == 300);  // a window past max_seq: a full cache
  CHECK(window_slots(300, 0, 0) == 300);
  KvCache c(2, 1, 10000, 8, DType::f32, 100, 4);
  CHECK(c.slots() == 4 + 99 + kWindowSlack);
  CHECK(c.max_step() == kWindowSlack);
  CHECK(c.k().nbytes() == size_t(2 * 1 * 192 * 8 * 4));  // slots rounded up to 64
  const Tensor row = random_tensor({1, 8}, 1);
  for (int i = 0; i < 5000; ++i) c.append(0, row, row);
  CHECK(c.positions(0) == 5000);
  CHECK(c.length(0) <= c.slots());
  CHECK(c.length(0) >= 4 + 99);  // the sinks and the window are always there
  c.clear(0);
  CHECK((c.positions(0) == 0 && c.length(0) == 0));
  CHECK_THROWS_AS(KvCache(1, 1, 10, 8, DType::f32, -1, 0), tori::Error);
  KvCache full(1, 1, 10, 8);
  for (int i = 0; i < 10; ++i) full.append(0, row, row);
  CHECK_THROWS_WITH(full.append(0, row, row), Catch::Contains("max_seq = 10"));
}

TEST_CASE("allowed_pairs: the closed form counts what the predicate allows", "[kv_cache][window]") {
  for (const AttentionPattern& p :
       {AttentionPattern::causal(), AttentionPattern::sliding_window(1), AttentionPattern::sliding_window(7, 3),
        AttentionPattern::sliding_window(16), AttentionPattern::sliding_window(5, 9)})
    for (int64_t offset : {0, 1, 4, 6, 30})
      for (int64_t lq : {0, 1, 2, 13, 40}) {
        double n = 0;
        for (int64_t q = offset; q < offset + lq; ++q)
          for (int64_t k = 0; k <= q; ++k) n += p.allowed(q, k);
        CAPTURE(p.describe(), offset, lq);
        CHECK(p.allowed_pairs(offset, lq) == n);
      }
}
