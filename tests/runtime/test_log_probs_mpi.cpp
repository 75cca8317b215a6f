// Perplexity's sharded log-probabilities (runtime::ShardedModel::prefill_log_probs: logits kept
// vocabulary-sharded, a log-sum-exp per rank block, runtime/token_log_probs.hpp) against the
// single-process reference's f64 log-softmax of its full logits (models::reference_log_probs), for
// every layout valid on this torus in each phase (and each with the next one for decode, as
// `tori verify --plan all`), on a serial grouped-query model whose vocabulary runs padded on 8
// ranks (500 -> 504: the padded columns must not enter the log-sum-exp) and on PaLM's parallel
// multiquery block. The windows are scored as `tori perplexity` scores them: batches of windows,
// the second half of each, the last batch partly idle.
//
// Tolerance 1e-4 absolute per token: the layouts only reorder f32 sums (verify's f32 bound is 1e-4
// relative of max|logit|, ~1e-6 measured) and each rank's block log-sum-exp passes through f32
// (~1e-7 relative of |lse| ~ 6 here); counting the 4 padded columns (logit 0) moves log p by
// 5.8e-3 at 8 ranks (measured by mutating token_log_probs: docs/perplexity.md).
#include <mpi.h>

#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>

#include "collectives/collectives.hpp"
#include "models/config.hpp"
#include "models/perplexity.hpp"
#include "models/reference_model.hpp"
#include "models/synthetic_weights.hpp"
#include "runtime/placement.hpp"
#include "runtime/sharded_model.hpp"
#include "runtime/threads.hpp"
#include "runtime/token_log_probs.hpp"

using namespace tori;
using models::TokenIds;

namespace {

constexpr double kTolerance = 1e-4;

// A text of n tokens in [0, V): a counter-based hash, the same on every rank.
TokenIds text(int64_t n, int64_t V) {
  TokenIds t;
  for (int64_t i = 0; i < n; ++i) t.push_back(int32_t((i * 2654435761u + 12345u) % uint64_t(V)));
  return t;
}

double max_error(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& want) {
  REQUIRE(got.size() == want.size());
  double e = 0;
  for (size_t w = 0; w < got.size(); ++w) {
    REQUIRE(got[w].size() == want[w].size());
    for (size_t i = 0; i < got[w].size(); ++i) e = std::max(e, std::abs(got[w][i] - want[w][i]));
  }
  return e;
}

void check_every_plan(const models::ModelConfig& cfg, int64_t batch) {
  collectives::Torus torus(MPI_COMM_WORLD, "auto");
  collectives::Collectives coll(torus);
  const models::SyntheticWeights w(cfg, 5);
  const int64_t ctx = 16, first = models::first_scored(ctx);
  // 5 windows (BOS 1 first): with batch 4 the second batch has one window and three idle slots.
  const std::vector<TokenIds> windows = models::perplexity_windows(text(5 * ctx + 3, cfg.vocab), ctx, 1);
  REQUIRE(windows.size() == 5);
  models::ReferenceModel ref(w);
  const auto want = models::reference_log_probs(ref, windows, first, batch);
  const models::Perplexity want_ppl = models::perplexity_of(want);

  auto phases = runtime::valid_phase_plans(cfg, torus.shape(), batch);
  REQUIRE(!phases.empty());
  std::vector<runtime::Plan> plans;
  for (size_t k = 0; k < phases.size(); ++k) {
    plans.push_back({phases[k], phases[k]});
    if (phases.size() > 1) plans.push_back({phases[k], phases[(k + 1) % phases.size()]});
  }
  for (const runtime::Plan& plan : plans) {
    INFO("model " << cfg.name << ", plan " << plan.str() << " on " << torus.shape().str());
    runtime::ShardedModel m(w, coll, plan, batch);
    std::vector<std::vector<double>> got;
    for (size_t w0 = 0; w0 < windows.size(); w0 += size_t(batch)) {
      std::vector<TokenIds> part(static_cast<size_t>(batch), TokenIds{});
      for (size_t b = 0; b < size_t(batch) && w0 + b < windows.size(); ++b) part[b] = windows[w0 + b];
      m.reset();
      auto lp = m.prefill_log_probs(part, first);
      for (size_t b = 0; b < size_t(batch); ++b) {
        if (w0 + b < windows.size())
          got.push_back(lp[b]);
        else
          CHECK(lp[b].empty());  // an idle slot scores nothing
      }
    }
    CHECK(max_error(got, want) <= kTolerance);
    const models::Perplexity p = models::perplexity_of(got);
    CHECK(p.tokens == 5 * models::scored_per_window(ctx));
    CHECK(std::abs(p.ppl - want_ppl.ppl) <= kTolerance * want_ppl.ppl);
  }
}

}  // namespace

TEST_CASE("sharded log-probabilities equal the reference's, every plan, padded vocabulary", "[perplexity]") {
  runtime::apply_threads(1, MPI_COMM_WORLD);  // 8 ranks share 2 cores in CI
  models::ModelConfig cfg = models::load_model_config("smollm-tiny");
  cfg.vocab = 500;  // 504 on 8 ranks: four padded logits columns on the last block
  cfg.name = "smollm-tiny-v500";
  check_every_plan(cfg, 4);
}

TEST_CASE("sharded log-probabilities equal the reference's, every plan, parallel multiquery block",
          "[perplexity][parallel]") {
  runtime::apply_threads(1, MPI_COMM_WORLD);
  check_every_plan(models::load_model_config("palm-tiny"), 4);
}

TEST_CASE("token_log_probs: vocabulary blocks with padding and the target in any block", "[perplexity]") {
  collectives::Torus torus(MPI_COMM_WORLD, "auto");
  collectives::Collectives coll(torus);
  const int64_t n = torus.ranks(), V = 37, Vn = (V + n - 1) / n, R = 5;  // padded to n·Vn >= V
  // Full logits [R, V] the same on every rank; this rank's block, padding columns set to a large
  // value that must not count.
  std::vector<float> full(size_t(R * V));
  for (int64_t i = 0; i < R * V; ++i) full[size_t(i)] = float(std::sin(double(i) * 0.7) * 4.0);
  const int64_t g = torus.shard_index(collectives::Axes::xyz), v0 = g * Vn;
  kernels::Tensor part({R, Vn}, kernels::DType::f32);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < Vn; ++j) part.set(r * Vn + j, v0 + j < V ? full[size_t(r * V + v0 + j)] : 50.f);
  const std::vector<int32_t> targets{0, 36, 18, 7, 29};
  const auto got = runtime::token_log_probs(coll, collectives::Axes::xyz, part, v0, V, targets);
  for (int64_t r = 0; r < R; ++r) {
    const double want = double(full[size_t(r * V + targets[size_t(r)])]) - models::log_sum_exp(&full[size_t(r * V)], V);
    CHECK(std::abs(got[size_t(r)] - want) <= 1e-5);
  }
}
