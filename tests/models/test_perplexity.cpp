// Perplexity's windows and statistics (models/perplexity.hpp) against hand-computed answers.
#include <cmath>

#include <catch2/catch.hpp>

#include "models/perplexity.hpp"

using namespace tori::models;

TEST_CASE("perplexity windows: whole windows of ctx, the remainder left out, BOS first", "[perplexity]") {
  TokenIds t;
  for (int32_t i = 10; i < 21; ++i) t.push_back(i);  // 11 tokens
  auto w = perplexity_windows(t, 4, -1);
  REQUIRE(w.size() == 2);
  CHECK(w[0] == TokenIds{10, 11, 12, 13});
  CHECK(w[1] == TokenIds{14, 15, 16, 17});
  w = perplexity_windows(t, 4, 1);
  CHECK(w[1] == TokenIds{1, 15, 16, 17});
  CHECK(first_scored(4) == 2);
  CHECK(scored_per_window(4) == 1);     // position 3, predicted from position 2
  CHECK(scored_per_window(512) == 255);  // llama-perplexity's n_ctx - 1 - n_ctx / 2
  CHECK(scored_per_window(5) == 2);
  CHECK_THROWS(perplexity_windows(t, 1, -1));
}

TEST_CASE("perplexity statistics: exp(mean NLL), the standard error of the mean", "[perplexity]") {
  // -log p = 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3.
  const Perplexity p = perplexity_of({{-1.0, -2.0}, {-3.0, -6.0}});
  CHECK(p.tokens == 4);
  CHECK(p.nll == Approx(3.0));
  CHECK(p.nll_stderr == Approx(std::sqrt(14.0 / 3.0 / 4.0)));
  CHECK(p.ppl == Approx(std::exp(3.0)));
  CHECK(p.ppl_stderr == Approx(std::exp(3.0) * std::sqrt(14.0 / 3.0 / 4.0)));
  CHECK_THROWS(perplexity_of({{-1.0}}));
}

TEST_CASE("log_sum_exp: large values without overflow", "[perplexity]") {
  const float x[3] = {1000.f, 1000.f, -1e30f};
  CHECK(log_sum_exp(x, 3) == Approx(1000.0 + std::log(2.0)));
  CHECK(std::isinf(log_sum_exp(x, 0)));
}
