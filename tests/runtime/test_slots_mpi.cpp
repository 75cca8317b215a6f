// ShardedModel's slot operations (what `tori serve` schedules with): prefill of only some
// sequences (the others idle), prefill continued in pieces (chunked at the caller), decode with
// idle sequences, and one sequence's cache emptied and reused while the others keep theirs. For
// a batch-sharded and a head-sharded layout on this torus (each in both phases, and the pair that
// hands prefill's cache over from the one placement to the other), each sequence's logits
// equal the single-process reference running that sequence alone (relative error <= 1e-4: the
// layouts only reorder f32 sums, as in `tori verify`).
#include <mpi.h>

#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>

#include "collectives/collectives.hpp"
#include "kernels/flop_counter.hpp"
#include "models/config.hpp"
#include "models/reference_model.hpp"
#include "models/synthetic_weights.hpp"
#include "runtime/active_batch.hpp"
#include "runtime/placement.hpp"
#include "runtime/sharded_model.hpp"
#include "runtime/threads.hpp"

using namespace tori;
using kernels::Tensor;
using models::TokenIds;

namespace {

constexpr int64_t B = 8;  // slots; divides every rank count's batch shards
constexpr int32_t kIdle = runtime::ShardedModel::kIdle;

// max |got - want| / max |want| over one row of logits.
double rel_error(const float* got, const float* want, int64_t V) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < V; ++i) {
    num = std::max(num, std::abs(double(got[i]) - double(want[i])));
    den = std::max(den, std::abs(double(want[i])));
  }
  return num / den;
}

// One sequence's life in a slot: its prompt (given in pieces) then the tokens it decodes; the
// reference runs it alone and keeps the logits after its prompt and after each decoded token.
struct Sequence {
  TokenIds prompt, decoded;
  std::vector<std::vector<float>> want;  // [1 + decoded.size()][V]
};

void run_alone(const models::WeightSource& w, Sequence& s) {
  models::ReferenceModel ref(w);
  ref.reset(1);
  const int64_t V = w.config().vocab;
  Tensor p = ref.prefill({s.prompt})[0];
  s.want.emplace_back(p.data<float>() + (p.size(0) - 1) * V, p.data<float>() + p.size(0) * V);
  for (int32_t t : s.decoded) {
    Tensor d = ref.decode({t});
    s.want.emplace_back(d.data<float>(), d.data<float>() + V);
  }
}

// What every test here runs on: the ranks' torus, one compute thread per rank (8 ranks share 2
// cores in CI), smollm-tiny with synthetic weights of `seed`.
struct Tiny {
  collectives::Torus torus{MPI_COMM_WORLD, "auto"};
  collectives::Collectives coll{torus};
  models::ModelConfig cfg = models::load_model_config("smollm-tiny");
  models::SyntheticWeights w;
  int64_t V = cfg.vocab;
  explicit Tiny(uint64_t seed) : w(cfg, seed) { runtime::apply_threads(1, MPI_COMM_WORLD); }
};

}  // namespace

TEST_CASE("slot operations equal each sequence run alone, batch- and head-sharded attention", "[slots]") {
  Tiny tiny(11);
  auto& [torus, coll, cfg, w, V] = tiny;

  // a and b share slot 1 one after the other; c arrives in two pieces; d joins late.
  Sequence a{{5, 17, 42, 9}, {7}, {}}, b{{300, 2}, {11, 12}, {}}, c{{1, 2, 3, 4, 5, 6, 7}, {8, 9}, {}},
      d{{60, 61, 62}, {63}, {}};
  for (Sequence* s : {&a, &b, &c, &d}) run_alone(w, *s);

  auto phases = runtime::valid_phase_plans(cfg, torus.shape(), B);
  REQUIRE(!phases.empty());
  // The first batch-sharded and the first head-sharded layout, each in both phases (the cache
  // written in place), and prefill in the one, decode in the other (the cache handed over).
  auto first = [&](runtime::AttnLayout a) {
    return *std::find_if(phases.begin(), phases.end(), [&](const runtime::PhasePlan& p) { return p.attn == a; });
  };
  const runtime::PhasePlan batch = first(runtime::AttnLayout::batch), heads = first(runtime::AttnLayout::heads);
  std::vector<runtime::Plan> plans{{batch, batch}, {heads, heads}, {batch, heads}};
  bool batch_sharded = false, head_sharded = false;
  for (const runtime::Plan& plan : plans) {
    runtime::ShardedModel m(w, coll, plan, B);
    const bool chunks = m.prefill_continues();
    INFO("plan " << plan.str() << (chunks ? "" : " (cache handoff)"));
    auto check = [&](const float* got, const Sequence& s, size_t step) {
      CHECK(rel_error(got, s.want.at(step).data(), V) <= 1e-4);
    };
    auto prefill = [&](std::vector<std::pair<int64_t, TokenIds>> pieces) {
      std::vector<TokenIds> p(B);
      for (auto& [slot, ids] : pieces) p[size_t(slot)] = ids;
      auto out = m.prefill(p);
      for (int64_t s = 0; s < B; ++s) CHECK(out[size_t(s)].size(0) == (p[size_t(s)].empty() ? 0 : 1));
      return out;
    };
    auto decode = [&](std::vector<std::pair<int64_t, int32_t>> tokens) {
      TokenIds t(B, kIdle);
      for (auto& [slot, id] : tokens) t[size_t(slot)] = id;
      return m.decode(t);
    };
    const TokenIds c1(c.prompt.begin(), c.prompt.begin() + 3), c2(c.prompt.begin() + 3, c.prompt.end());
    // Step 1: a in slot 1, c's first piece in slot 4 (or all of c when prefill cannot continue).
    auto p1 = prefill({{1, a.prompt}, {4, chunks ? c1 : c.prompt}});
    check(p1[1].data<float>(), a, 0);
    if (!chunks) check(p1[4].data<float>(), c, 0);
    // Step 2: a decodes alone (c is between pieces or waiting; the rest are empty).
    check(decode({{1, a.decoded[0]}}).data<float>() + 1 * V, a, 1);
    // Step 3: c's second piece, d joins in slot 6; a's cache is full of tokens and stays idle.
    auto p3 = chunks ? prefill({{4, c2}, {6, d.prompt}}) : prefill({{6, d.prompt}});
    if (chunks) check(p3[4].data<float>(), c, 0);
    check(p3[6].data<float>(), d, 0);
    // Step 4: a leaves, b reuses slot 1.
    m.reset(1);
    CHECK(m.length(1) == 0);
    CHECK(m.length(4) == int64_t(c.prompt.size()));
    check(prefill({{1, b.prompt}})[1].data<float>(), b, 0);
    // Steps 5-6: everyone decodes, then d has finished and idles.
    Tensor d5 = decode({{1, b.decoded[0]}, {4, c.decoded[0]}, {6, d.decoded[0]}});
    check(d5.data<float>() + 1 * V, b, 1);
    check(d5.data<float>() + 4 * V, c, 1);
    check(d5.data<float>() + 6 * V, d, 1);
    Tensor d6 = decode({{1, b.decoded[1]}, {4, c.decoded[1]}});
    check(d6.data<float>() + 1 * V, b, 2);
    check(d6.data<float>() + 4 * V, c, 2);
    CHECK(m.length(6) == int64_t(d.prompt.size() + 1));
    CHECK_THROWS(m.decode(TokenIds(B, kIdle)));
    CHECK_THROWS(m.prefill(std::vector<TokenIds>(B)));
    (plan.decode.attn == runtime::AttnLayout::batch ? batch_sharded : head_sharded) = true;
  }
  CHECK((batch_sharded && head_sharded));  // both attention families ran
}

// A decode step computes only the rows of the sequences that decode (runtime/active_batch.hpp):
// in every decode layout valid on this torus (weight-stationary 1D/2D, weight-gathered; head- and
// batch-sharded attention), plain and looped chains, steps with every sequence, one, several in
// one attention batch shard and none in the others, and the last alone give each active
// sequence's logits equal to the reference running it alone (1e-4, as above); the caches stay
// where they are, so the sequences skipped meanwhile continue correctly afterwards.
TEST_CASE("decode on some slots computes their rows only, every decode layout", "[slots]") {
  Tiny tiny(12);
  auto& [torus, coll, cfg, w, V] = tiny;
  // Steps: which slots decode (their next token each time).
  const std::vector<std::vector<int64_t>> steps{{0, 1, 2, 3, 4, 5, 6, 7}, {0}, {0, 1, 5}, {7}, {2, 3, 4, 6}};
  std::vector<Sequence> seqs(B);
  for (int64_t b = 0; b < B; ++b) {
    auto& s = seqs[size_t(b)];
    for (int64_t i = 0; i <= b % 3 + 1; ++i) s.prompt.push_back(int32_t(7 * b + 3 * i + 1));
    for (const auto& st : steps)
      if (std::count(st.begin(), st.end(), b)) s.decoded.push_back(int32_t(100 + 13 * b + int64_t(s.decoded.size())));
    run_alone(w, s);
  }
  int64_t layouts = 0;
  for (const runtime::PhasePlan& p : runtime::valid_phase_plans(cfg, torus.shape(), B))
    for (collectives::Overlap ov : {collectives::Overlap::none, collectives::Overlap::looped}) {
      runtime::ShardOptions opt;
      opt.overlap = ov;
      runtime::ShardedModel m(w, coll, runtime::Plan{p, p}, B, opt);
      INFO("decode plan " << p.str() << (ov == collectives::Overlap::none ? "" : ", looped"));
      std::vector<TokenIds> prompts;
      for (const auto& s : seqs) prompts.push_back(s.prompt);
      auto first = m.prefill(prompts);
      for (int64_t b = 0; b < B; ++b) CHECK(rel_error(first[size_t(b)].data<float>(), seqs[size_t(b)].want[0].data(), V) <= 1e-4);
      std::vector<size_t> done(B, 0);  // tokens each sequence has decoded
      for (const auto& st : steps) {
        TokenIds t(B, kIdle);
        for (int64_t b : st) t[size_t(b)] = seqs[size_t(b)].decoded[done[size_t(b)]];
        const Tensor lg = m.decode(t);
        for (int64_t b = 0; b < B; ++b) {
          const bool active = t[size_t(b)] != kIdle;
          if (active) ++done[size_t(b)];
          CHECK(m.length(b) == int64_t(seqs[size_t(b)].prompt.size() + done[size_t(b)]));
          if (active) CHECK(rel_error(lg.data<float>() + b * V, seqs[size_t(b)].want[done[size_t(b)]].data(), V) <= 1e-4);
          else CHECK(*std::max_element(lg.data<float>() + b * V, lg.data<float>() + (b + 1) * V) == 0.f);
        }
      }
      ++layouts;
    }
  CHECK(layouts >= 2);
}

// A prefill step computes only the rows of the sequences given tokens (as decode does) when the
// plan keeps the cache in place: in every layout valid for both phases on this torus, a chunked
// prefill where some slots bring pieces and the others idle gives each sequence's logits equal to
// the reference running it alone (1e-4, as above), and a step with one sequence of eight costs
// fewer matmul FLOPs than the whole batch would (the rows of one attention batch shard padded to
// the fullest, instead of all B).
TEST_CASE("prefill on some slots computes their rows only, every layout that keeps the cache", "[slots]") {
  Tiny tiny(13);
  auto& [torus, coll, cfg, w, V] = tiny;
  // Slot b's prompt has 3 + b % 4 tokens; it arrives in two pieces of which the first has 2.
  std::vector<Sequence> seqs(B);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < 3 + b % 4; ++i) seqs[size_t(b)].prompt.push_back(int32_t(11 * b + 5 * i + 2));
    run_alone(w, seqs[size_t(b)]);
  }
  // Steps: which slots bring a piece (first its 2 tokens, then the rest).
  const std::vector<std::vector<int64_t>> steps{{3}, {0, 1, 3}, {5, 6, 7}, {0, 1, 2, 4}, {2, 4, 5, 6, 7}};
  int64_t layouts = 0, narrowed = 0;
  for (const runtime::PhasePlan& p : runtime::valid_phase_plans(cfg, torus.shape(), B)) {
    runtime::ShardedModel m(w, coll, runtime::Plan{p, p}, B);
    if (!m.prefill_continues()) continue;
    INFO("plan " << p.str());
    std::vector<size_t> given(B, 0);
    for (const auto& st : steps) {
      std::vector<TokenIds> pieces(B);
      for (int64_t b : st) {
        const TokenIds& pr = seqs[size_t(b)].prompt;
        const size_t n = given[size_t(b)] == 0 ? 2 : pr.size() - 2;
        pieces[size_t(b)].assign(pr.begin() + long(given[size_t(b)]), pr.begin() + long(given[size_t(b)] + n));
      }
      kernels::reset_flop_count();
      const auto out = m.prefill(pieces);
      const uint64_t flops = kernels::flop_count().matmul;
      for (int64_t b = 0; b < B; ++b) {
        given[size_t(b)] += pieces[size_t(b)].size();
        CHECK(m.length(b) == int64_t(given[size_t(b)]));
        if (!pieces[size_t(b)].empty() && given[size_t(b)] == seqs[size_t(b)].prompt.size())
          CHECK(rel_error(out[size_t(b)].data<float>(), seqs[size_t(b)].want[0].data(), V) <= 1e-4);
      }
      if (st.size() == 1) {
        // Matmul FLOPs are 2·M·K·N, linear in the rows: the layers of the narrowed step cost the
        // whole batch's times B_a / B, plus the unembedding of its one last row (u per row).
        runtime::ShardedModel full(w, coll, runtime::Plan{p, p}, B);
        kernels::reset_flop_count();
        full.prefill(std::vector<TokenIds>(B, pieces[size_t(st[0])]));
        const uint64_t whole = kernels::flop_count().matmul;
        const uint64_t u = uint64_t(2 * cfg.d_model * m.shard_config().vocab / torus.ranks());
        std::vector<bool> one(B, false);
        one[size_t(st[0])] = true;
        const int64_t rows = runtime::active_batch(B, B / m.placement(false).attn_batch_local, one).rows;
        CHECK(flops == (whole - B * u) / B * uint64_t(rows) + u);
        narrowed += rows < B;
      }
    }
    ++layouts;
  }
  CHECK(layouts >= 2);
  CHECK(narrowed >= 1);  // some layout computed fewer rows than the batch
}
