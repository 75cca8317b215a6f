// Activation memory predicted == measured: for every valid phase plan on small models, what a
// prefill and a decode step allocate beyond what the model held before it (tensors and the
// collectives' scratch, kernels/allocation_counter.hpp) against runtime::activation_bytes, the
// formula ShardedModel refuses a run with and `tori plan` reports (runtime/memory_estimate.hpp).
// Tolerance: the formula adds up the runtime's large buffers at each moment of a step; small ones
// (norm statistics [M, 1], RoPE positions, per-sequence bookkeeping) and the 64-byte rounding of
// every allocation are left out, so the measurement may exceed it by 5% + 16 KiB; and it assumes
// the temporaries of a moment (attention's copies, the collectives' scratch) all live at once, which
// they do not always: it may exceed the measurement by 20% + 16 KiB (observed at 1, 2 and 4 ranks:
// within 1% for prefill; at 8 ranks up to 16% over for serial blocks, whose attention copies are
// freed sooner than counted). A prediction that fits is therefore safe.
#include <mpi.h>

#include <catch2/catch.hpp>

#include "collectives/collectives.hpp"
#include "collectives/torus.hpp"
#include "kernels/allocation_counter.hpp"
#include "models/synthetic_weights.hpp"
#include "runtime/attention_layouts.hpp"
#include "runtime/memory_estimate.hpp"
#include "runtime/placement.hpp"
#include "runtime/sharded_model.hpp"
#include "runtime/threads.hpp"

using namespace tori;
using namespace tori::runtime;

namespace {

constexpr double kUnder = 0.05, kOver = 0.20, kSlack = 16 * 1024;

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Bytes allocated beyond what was live when f started, at the peak of f.
template <class F>
double measured_peak(F&& f) {
  const int64_t before = kernels::tensor_bytes_live();
  kernels::reset_tensor_bytes_peak();
  f();
  return double(kernels::tensor_bytes_peak() - before);
}

void check(const char* what, double predicted, double measured) {
  INFO(what << ": predicted " << predicted << " B, measured " << measured << " B (ratio "
            << measured / predicted << ")");
  CHECK(measured <= predicted * (1 + kUnder) + kSlack);
  CHECK(measured >= predicted * (1 - kOver) - kSlack);
}

void check_plan(const models::ModelConfig& cfg, collectives::Collectives& coll, const Plan& plan, int64_t B,
                int64_t L) {
  const auto& torus = coll.torus();
  models::SyntheticWeights src(cfg, 7);
  ShardedModel model(src, coll, plan, B);
  std::vector<models::TokenIds> prompts(size_t(B), models::TokenIds(size_t(L), 3));
  const models::ModelConfig& pc = model.shard_config();
  INFO("model " << cfg.name << " torus " << torus.shape().str() << " rank " << torus.rank() << " plan "
                << plan.str() << " B " << B << " L " << L);
  const double pre = measured_peak([&] { model.prefill(prompts); });
  StepShape ps{.batch = B, .tokens = L};
  if (needs_cache_handoff(model.placement(true), model.placement(false))) ps.handoff = &model.placement(false);
  check("prefill", activation_bytes(pc, model.placement(true), ps), pre);
}

// A decode step first thing (its collectives' scratch grows from nothing, as in a run's first step).
void check_decode(const models::ModelConfig& cfg, collectives::Collectives& coll, const Plan& plan, int64_t B) {
  models::SyntheticWeights src(cfg, 7);
  ShardedModel model(src, coll, plan, B);
  INFO("model " << cfg.name << " torus " << coll.torus().shape().str() << " rank " << coll.torus().rank() << " plan "
                << plan.str() << " B " << B);
  const double dec = measured_peak([&] { model.decode(models::TokenIds(size_t(B), 1)); });
  check("decode", activation_bytes(model.shard_config(), model.placement(false), StepShape{.batch = B, .tokens = 1}),
        dec);
}

void check_model(const std::string& name, int64_t L) {
  const int n = world_size();
  collectives::Torus torus(MPI_COMM_WORLD, collectives::auto_torus_shape(n));
  collectives::CollectivesOptions opt;
  opt.progress_thread = false;  // ranks oversubscribe the cores: no busy progress threads
  apply_threads(1, MPI_COMM_WORLD);
  const models::ModelConfig cfg = models::load_model_config(name);
  const int64_t B = std::max(2, n);
  const auto plans = valid_phase_plans(cfg, torus.shape(), B);
  REQUIRE(!plans.empty());
  for (size_t i = 0; i < plans.size(); ++i) {
    // A fresh Collectives per plan: its scratch buffers grow from nothing, as in a run.
    {
      collectives::Collectives coll(torus, opt);
      check_plan(cfg, coll, Plan{plans[i], plans[i]}, B, L);
    }
    if (i % 3 == 0) {  // (a third of them: CI time)
      collectives::Collectives coll(torus, opt);
      check_plan(cfg, coll, Plan{plans[i], plans[(i + 1) % plans.size()]}, B, L);  // usually a handoff
    }
    {
      collectives::Collectives coll(torus, opt);
      check_decode(cfg, coll, Plan{plans[i], plans[i]}, B);
    }
  }
}

}  // namespace

TEST_CASE("activation memory predicted == measured, palm-tiny (parallel, multiquery)", "[memory]") {
  check_model("palm-tiny", 32);
}

TEST_CASE("activation memory predicted == measured, llama-tiny (serial, grouped)", "[memory]") {
  check_model("llama-tiny", 24);
}

// Chunked prefill (ShardOptions::prefill_chunk): a long prompt batch's activation peak is the
// chunk's, not the whole batch's — measured against the formula at the chunk's shape, and against
// the same prefill in one step (which must need at least twice as much here: 30 chunks, but the
// weight-gathered layout's gathered weights are the same whatever the chunk).
TEST_CASE("chunked prefill: activation memory bounded by the chunk", "[memory]") {
  const int n = world_size();
  collectives::Torus torus(MPI_COMM_WORLD, collectives::auto_torus_shape(n));
  collectives::CollectivesOptions copt;
  copt.progress_thread = false;
  apply_threads(1, MPI_COMM_WORLD);
  const models::ModelConfig cfg = models::load_model_config("palm-tiny");
  const int64_t B = std::max(2, n), L = cfg.max_seq - 16, chunk = 8 * B;  // 8 tokens per sequence
  std::vector<models::TokenIds> prompts(size_t(B), models::TokenIds(size_t(L), 5));
  for (const char* p : {"ws2d/heads", "wg_xyz/batch:xyz"}) {
    const PhasePlan pp = parse_phase_plan(p, "test");
    const Plan plan{pp, pp};
    auto peak = [&](int64_t prefill_chunk) {
      collectives::Collectives coll(torus, copt);
      models::SyntheticWeights src(cfg, 7);
      ShardOptions o;
      o.prefill_chunk = prefill_chunk;
      ShardedModel model(src, coll, plan, B, o);
      const double got = measured_peak([&] { model.prefill(prompts); });
      const int64_t Lc = model.chunk_tokens(L);
      return std::make_pair(got, activation_bytes(model.shard_config(), model.placement(true),
                                                   StepShape{.batch = B, .tokens = Lc, .prompt = L}));
    };
    const auto [chunked, predicted] = peak(chunk);
    const auto [whole, predicted_whole] = peak(0);
    INFO("plan " << p << " rank " << torus.rank() << ": chunked peak " << chunked << " B (predicted " << predicted
                 << "), unchunked " << whole << " B (predicted " << predicted_whole << ")");
    check("chunked prefill", predicted, chunked);
    check("unchunked prefill", predicted_whole, whole);
    CHECK(whole >= 2 * chunked);
  }
}
