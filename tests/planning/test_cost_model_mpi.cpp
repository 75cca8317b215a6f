// Predicted == counted: for every valid phase plan on the tiny presets, the cost model's traffic
// (per collective kind, per axis, bytes and messages) equals what this rank's Collectives counted,
// per layer (ShardedModel::layer_traffic) and for the whole prefill and decode step — with and
// without a KV-cache handoff between phases, for the mpi and ring algorithms, and for a decode step
// of one sequence alone (only its rows computed) — and its matmul and
// attention FLOPs equal what this rank's kernels counted (kernels/flop_counter.hpp), exactly (FLOPs
// are whole numbers far below 2^53, so the model's doubles hold them exactly). And the KV-cache
// bytes the memory estimate and `tori plan --max-context` price == what the caches allocate.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "collectives/collectives.hpp"
#include "collectives/torus.hpp"
#include "kernels/flop_counter.hpp"
#include "models/context_window.hpp"
#include "models/synthetic_weights.hpp"
#include "models/tsvd_checkpoint.hpp"
#include "planning/cost_model.hpp"
#include "runtime/active_batch.hpp"
#include "runtime/memory_estimate.hpp"
#include "runtime/padding.hpp"
#include "runtime/placement.hpp"
#include "runtime/sharded_model.hpp"
#include "runtime/threads.hpp"

using namespace tori;
using namespace tori::runtime;
using namespace tori::planning;
using collectives::Axis;

namespace {

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

std::string table_str(const TrafficTable& t) {
  std::string s;
  for (size_t k = 0; k < t.size(); ++k)
    for (Axis a : collectives::kAxes)
      if (t[k][size_t(a)].bytes || t[k][size_t(a)].messages)
        s += std::string(collectives::collective_name(collectives::kCollectives[k])) + "/" + std::string(1, 
             collectives::axis_name(a)) + ":" + std::to_string(t[k][size_t(a)].bytes) + "B," +
             std::to_string(t[k][size_t(a)].messages) + "m ";
  return s;
}

// This rank's torus and collectives for a test: no busy progress threads (ranks oversubscribe
// the cores), one compute thread.
collectives::CollectivesOptions quiet_options() {
  collectives::CollectivesOptions opt;
  opt.progress_thread = false;
  apply_threads(1, MPI_COMM_WORLD);
  return opt;
}
struct World {
  collectives::Torus torus{MPI_COMM_WORLD, collectives::auto_torus_shape(world_size())};
  collectives::Collectives coll{torus, quiet_options()};
};

TrafficTable counted_total(const collectives::Collectives& coll) {
  TrafficTable t{};
  for (size_t k = 0; k < t.size(); ++k)
    for (Axis a : collectives::kAxes) t[k][size_t(a)] = coll.traffic().get(collectives::kCollectives[k], a);
  return t;
}

void check_plan(const models::WeightSource& src, collectives::Collectives& coll, const Plan& plan, int64_t B,
                kernels::WeightFormat format = kernels::WeightFormat::f32) {
  const auto& torus = coll.torus();
  const models::ModelConfig& cfg = src.config();
  ShardOptions so;
  so.format = format;
  ShardedModel model(src, coll, plan, B, so);
  // Prompts of unequal length: padded to the longest, L = max.
  std::vector<models::TokenIds> prompts;
  int64_t L = 0;
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < B; ++b) {
    prompts.push_back(models::TokenIds(size_t(2 + b % 3), int32_t(b + 1)));
    lengths.push_back(int64_t(prompts.back().size()));
    L = std::max<int64_t>(L, lengths.back());
  }
  auto check_flops = [](const char* phase, const StepCost& c) {
    const kernels::FlopCount got = kernels::flop_count();
    INFO(phase << " FLOPs: predicted matmul " << c.step.matmul_flops << " attention " << c.step.attn_flops
                << ", counted matmul " << got.matmul << " attention " << got.attention);
    CHECK(c.step.matmul_flops == double(got.matmul));
    CHECK(c.step.attn_flops == double(got.attention));
  };
  StepQuery q;
  q.config = cfg;
  q.shape = torus.shape();
  q.coords = torus.coords();
  q.batch = B;
  q.tsvd = tsvd_pricing(src);  // TSVD checkpoints: the factored weights' FLOPs and gathers
  q.weights = format;

  coll.traffic().reset();
  kernels::reset_flop_count();
  model.prefill(prompts);
  q.plan = plan.prefill;
  q.decode_plan = plan.decode;
  q.prefill = true;
  q.tokens = L;
  q.seq_tokens = lengths;
  StepCost pre = predict_step(q);
  INFO("model " << cfg.name << " torus " << torus.shape().str() << " rank " << torus.rank() << " plan " << plan.str()
                << (pre.handoff ? " (handoff)" : ""));
  {
    INFO("prefill layer: predicted " << table_str(pre.layer.traffic) << " counted " << table_str(model.layer_traffic(true)));
    CHECK(pre.layer.traffic == model.layer_traffic(true));
  }
  {
    TrafficTable got = counted_total(coll);
    INFO("prefill step: predicted " << table_str(pre.step.traffic) << " counted " << table_str(got));
    CHECK(pre.step.traffic == got);
  }
  check_flops("prefill", pre);

  coll.traffic().reset();
  kernels::reset_flop_count();
  model.decode(models::TokenIds(size_t(B), 1));
  q.plan = plan.decode;
  q.decode_plan.reset();
  q.prefill = false;
  q.tokens = 1;
  q.cached = L;
  q.seq_tokens.clear();
  q.seq_cached = lengths;
  StepCost dec = predict_step(q);
  {
    INFO("decode layer: predicted " << table_str(dec.layer.traffic) << " counted " << table_str(model.layer_traffic(false)));
    CHECK(dec.layer.traffic == model.layer_traffic(false));
  }
  {
    TrafficTable got = counted_total(coll);
    INFO("decode step: predicted " << table_str(dec.step.traffic) << " counted " << table_str(got));
    CHECK(dec.step.traffic == got);
  }
  check_flops("decode", dec);

  // A decode step of sequence 0 alone computes only its rows (runtime/active_batch.hpp): priced as
  // a decode of the B_a rows, the padding rows bringing no token.
  coll.traffic().reset();
  kernels::reset_flop_count();
  models::TokenIds one(size_t(B), ShardedModel::kIdle);
  one[0] = 1;
  model.decode(one);
  std::vector<bool> active(size_t(B), false);
  active[0] = true;
  const ActiveBatch a = active_batch(B, B / model.placement(false).attn_batch_local, active);
  q.batch = a.rows;
  q.seq_tokens.assign(size_t(a.rows), 0);
  q.seq_cached.assign(size_t(a.rows), 0);
  for (int64_t r = 0; r < a.rows; ++r)
    if (const int64_t b = a.sequence[size_t(r)]; b >= 0) q.seq_tokens[size_t(r)] = 1, q.seq_cached[size_t(r)] = lengths[size_t(b)] + 1;
  StepCost part = predict_step(q);
  {
    INFO("decode of sequence 0 alone (" << a.rows << " rows): layer predicted " << table_str(part.layer.traffic)
                                        << " counted " << table_str(model.layer_traffic(false)));
    CHECK(part.layer.traffic == model.layer_traffic(false));
    CHECK(part.step.traffic == counted_total(coll));
  }
  check_flops("decode of sequence 0 alone", part);
}

void check_model(const std::string& name, collectives::Algorithm algo) {
  const int n = world_size();
  collectives::Torus torus(MPI_COMM_WORLD, collectives::auto_torus_shape(n));
  collectives::CollectivesOptions opt;
  opt.algorithm = algo;
  opt.progress_thread = false;  // ranks oversubscribe the cores: no busy progress threads
  apply_threads(1, MPI_COMM_WORLD);
  collectives::Collectives coll(torus, opt);
  const models::ModelConfig cfg = models::load_model_config(name);
  const int64_t B = std::max(2, n);
  const auto plans = valid_phase_plans(cfg, torus.shape(), B);
  REQUIRE(!plans.empty());
  models::SyntheticWeights src(cfg, 7);
  for (size_t i = 0; i < plans.size(); ++i) {
    check_plan(src, coll, Plan{plans[i], plans[i]}, B);                        // same placement
    check_plan(src, coll, Plan{plans[i], plans[(i + 1) % plans.size()]}, B);  // usually a handoff
  }
}

}  // namespace

TEST_CASE("predicted traffic and FLOPs == counted, palm-tiny (mpi and ring)", "[cost_model]") {
  check_model("palm-tiny", collectives::Algorithm::mpi);
  check_model("palm-tiny", collectives::Algorithm::ring);
}

TEST_CASE("predicted traffic and FLOPs == counted, llama-tiny", "[cost_model]") {
  check_model("llama-tiny", collectives::Algorithm::mpi);
}

TEST_CASE("predicted traffic and FLOPs == counted, gpt-tiny", "[cost_model]") {
  check_model("gpt-tiny", collectives::Algorithm::mpi);
}

TEST_CASE("predicted traffic == counted traffic, smollm-tiny (heads padded on 2+ ranks)", "[cost_model]") {
  check_model("smollm-tiny", collectives::Algorithm::mpi);
}

// TSVD (runtime/factored_weights.hpp): llama-tiny compressed at ratio 2 (tile 32, rank 8), every
// plan run factored — weight-stationary shards, looped tiles and gathered factors alike — its
// counted FLOPs (tsvd_matmul's GEMMs) and traffic (the factor gathers) == predicted; and with int8
// factors in an int8 run (the gathers then carry each tile's V scales too).
static void check_tsvd(const std::string& factor_dtype, kernels::WeightFormat format) {
  const int n = world_size();
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  World world;
  const collectives::Torus& torus = world.torus;
  collectives::Collectives& coll = world.coll;
  const models::ModelConfig cfg = models::load_model_config("llama-tiny");
  const std::string dir = "cost-tsvd-" + factor_dtype + "-np" + std::to_string(n);  // in the test's working directory
  if (rank == 0) {
    models::TsvdCompressOptions co;
    co.rule.ratio = 2;
    co.factor_dtype = factor_dtype;
    co.tile = {32, 32};  // divides every shard of every layout up to 8 ranks
    models::compress_tsvd(models::SyntheticWeights(cfg, 7), "llama-tiny", 7, co, dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  {
    const models::TsvdWeights src(std::make_unique<models::SyntheticWeights>(cfg, 7), dir);
    REQUIRE(tsvd_pricing(src));
    CHECK(tsvd_pricing(src)->density.at("w_in") == Approx(0.5));
    CHECK(tsvd_pricing(src)->int8 == (factor_dtype == "int8"));
    const int64_t B = std::max(2, n);
    const auto plans = valid_phase_plans(cfg, torus.shape(), B);
    for (size_t i = 0; i < plans.size(); ++i)
      check_plan(src, coll, Plan{plans[i], plans[(i + 1) % plans.size()]}, B, format);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(dir);
}

TEST_CASE("predicted traffic and FLOPs == counted, llama-tiny TSVD ratio 2", "[cost_model]") {
  check_tsvd("f32", kernels::WeightFormat::f32);
}

// (At 2 and 8 ranks only, for test time: what int8 adds, the V scales in the gathers, needs a gather.)
TEST_CASE("predicted traffic and FLOPs == counted, llama-tiny TSVD ratio 2, int8 factors run int8", "[cost_model]") {
  if (world_size() == 2 || world_size() == 8) check_tsvd("int8", kernels::WeightFormat::int8);
}

// Chunked prefill (ShardOptions::prefill_chunk): the whole prefill's counted traffic and FLOPs ==
// the sum of the predicted chunks' (chunk k: L = its tokens, T = tokens before it, each sequence's
// real new tokens in it; the prompts' lengths differ, so later chunks run on fewer sequences'
// rows when the cache stays in place), with and without a handoff.
TEST_CASE("chunked prefill: predicted traffic and FLOPs == counted, palm-tiny", "[cost_model]") {
  const int n = world_size();
  collectives::Torus torus(MPI_COMM_WORLD, collectives::auto_torus_shape(n));
  collectives::CollectivesOptions opt;
  opt.progress_thread = false;
  apply_threads(1, MPI_COMM_WORLD);
  collectives::Collectives coll(torus, opt);
  const models::ModelConfig cfg = models::load_model_config("palm-tiny");
  const int64_t B = std::max(2, n);
  const auto plans = valid_phase_plans(cfg, torus.shape(), B);
  std::vector<models::TokenIds> prompts;
  for (int64_t b = 0; b < B; ++b) prompts.push_back(models::TokenIds(size_t(3 + 2 * (b % 3)), int32_t(b + 1)));
  int64_t L = 0;
  for (const auto& p : prompts) L = std::max<int64_t>(L, int64_t(p.size()));
  for (size_t i = 0; i < plans.size(); ++i) {
    const Plan plan{plans[i], plans[(i + 1) % plans.size()]};
    models::SyntheticWeights src(cfg, 7);
    ShardOptions so;
    so.prefill_chunk = 2 * B;  // 2 tokens per sequence and chunk
    ShardedModel model(src, coll, plan, B, so);
    coll.traffic().reset();
    kernels::reset_flop_count();
    model.prefill(prompts);
    const int64_t Lc = model.chunk_tokens(L);
    REQUIRE(Lc == 2);
    StepQuery q;
    q.config = cfg;
    q.shape = torus.shape();
    q.coords = torus.coords();
    q.batch = B;
    q.plan = plan.prefill;
    q.decode_plan = plan.decode;
    q.prefill = true;
    Work sum;
    for (int64_t c0 = 0; c0 < L; c0 += Lc) {
      q.tokens = std::min(Lc, L - c0);
      q.logits = c0 + q.tokens == L;  // the logits after the last chunk only
      std::vector<int64_t> seq_tokens, seq_cached;
      for (const auto& p : prompts) {
        const int64_t len = int64_t(p.size());
        seq_tokens.push_back(std::clamp<int64_t>(len - c0, 0, q.tokens));
        seq_cached.push_back(std::min(len, c0));
      }
      // A chunk that some sequences sit out runs on the others' rows only when the cache stays
      // in place (runtime/active_batch.hpp): priced as a prefill of the B_a rows, the padding
      // rows bringing no token, ending with the logits of all B sequences' last rows.
      std::vector<bool> active(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b) active[size_t(b)] = seq_tokens[size_t(b)] > 0;
      const ActiveBatch a = active_batch(B, B / model.placement(false).attn_batch_local, active);
      StepQuery qc = q;
      if (model.prefill_continues() && a.rows < B) {
        qc.batch = a.rows;
        qc.decode_plan.reset();  // no handoff: prefill writes decode's cache in place
        qc.logit_rows = B;
        qc.seq_tokens.assign(size_t(a.rows), 0);
        qc.seq_cached.assign(size_t(a.rows), 0);
        for (int64_t r = 0; r < a.rows; ++r)
          if (const int64_t b = a.sequence[size_t(r)]; b >= 0)
            qc.seq_tokens[size_t(r)] = seq_tokens[size_t(b)], qc.seq_cached[size_t(r)] = seq_cached[size_t(b)];
      } else {
        qc.seq_tokens = seq_tokens, qc.seq_cached = seq_cached;
      }
      sum += predict_step(qc).step;
    }
    const kernels::FlopCount got = kernels::flop_count();
    INFO("torus " << torus.shape().str() << " rank " << torus.rank() << " plan " << plan.str() << ": predicted "
                  << table_str(sum.traffic) << " counted " << table_str(counted_total(coll)));
    CHECK(sum.traffic == counted_total(coll));
    CHECK(sum.matmul_flops == double(got.matmul));
    CHECK(sum.attn_flops == double(got.attention));
  }
}

// KV-cache memory: what the caches allocate (ShardedModel::cache_bytes; a run sizes them to its
// context through its source's max_seq, models/context_window.hpp) == runtime::kv_cache_bytes, the
// formula the memory check, `tori plan` and `tori plan --max-context` price — for full causal,
// every-layer-local (window 12 + 4 sinks) and mixed local/global attention (Gemma 3's kind), every
// decode layout (smollm-tiny: KV heads padded on 2+ ranks), contexts below, at and past a window
// cache's slots (4 + 11 + kWindowSlack = 79). With that budget, --max-context finds the context or
// a longer one whose allocation is the same, and the next position no longer fits (or, every layer
// local, "unbounded" once the budget holds the windows' slots).
TEST_CASE("predicted KV-cache bytes == allocated, and --max-context", "[cost_model][memory]") {
  World world;
  const int64_t B = std::max(2, world_size());
  const models::ModelConfig full = models::load_model_config("smollm-tiny");
  models::ModelConfig local = full, mixed = full;
  local.sliding_window = 12, local.sink_tokens = 4;
  mixed.sliding_window = 12, mixed.global_every = 2, mixed.rope_theta_local = 10000;  // layer 1 global
  for (const models::ModelConfig& cfg : {full, local, mixed}) {
    const models::SyntheticWeights src(cfg, 7);
    std::set<std::pair<int64_t, size_t>> shapes;  // (sequences, KV heads) a rank's caches hold
    for (const PhasePlan& p : valid_phase_plans(cfg, world.torus.shape(), B)) {
      // One plan per distinct cache shape (CI time: the caches depend on nothing else).
      const Placement pl = make_placement(padded_config(cfg, world.torus.ranks()), world.torus.shape(),
                                          world.torus.coords(), p, B);
      if (!shapes.insert({pl.attn_batch_local, pl.kv_heads.size()}).second) continue;
      for (int64_t ctx : {int64_t(1), int64_t(40), int64_t(79), int64_t(80), cfg.max_seq}) {
        const models::ContextWindow window(src, ctx);
        ShardedModel model(window, world.coll, Plan{p, p}, B);
        const double allocated = double(model.cache_bytes());
        const Placement& dec = model.placement(false);
        INFO("window " << cfg.sliding_window << " sinks " << cfg.sink_tokens << " global_every " << cfg.global_every
                       << " plan " << p.str() << " context " << ctx << " rank " << world.torus.rank());
        CHECK(allocated == kv_cache_bytes(model.shard_config(), dec, 4, ctx));
        const int64_t most = max_context(cfg, world.torus.shape(), p, B, allocated, 4);
        // Unbounded only where the cache stops growing within the budget (every layer local).
        const bool stops = kv_cache_bytes(model.shard_config(), dec, 4, int64_t(1) << 40) <= allocated;
        CHECK((most == kUnboundedContext) == stops);
        if (stops) {
          CHECK((cfg.sliding_window > 0 && cfg.global_every == 0));
        } else {
          CHECK(most >= ctx);
          CHECK(kv_cache_bytes(model.shard_config(), dec, 4, most) == allocated);
          CHECK(kv_cache_bytes(model.shard_config(), dec, 4, most + 1) > allocated);
        }
      }
    }
  }
}
