// `tori plan` / `--plan auto` on a TSVD checkpoint (planning/plan_table.hpp, planner.hpp with
// PlanTableQuery::tsvd): every plan priced with the factored weights' bytes, memory and gathers,
// linear in the factors' density (a planner pricing the model as dense fails every check), and
// the small-batch kernel's one pass over the factors at M <= kTsvdFusedMaxM (cost_model.hpp).
#include <catch2/catch.hpp>

#include "kernels/tsvd.hpp"
#include "models/config.hpp"
#include "planning/hardware_profile.hpp"
#include "planning/plan_table.hpp"

using namespace tori;

namespace {

runtime::TsvdPricing uniform(double density) {
  runtime::TsvdPricing p;
  p.tile = {32, 32};
  for (const char* kind : {"wq", "wk", "wv", "wo", "w_in", "w_gate", "w_out"}) p.density[kind] = density;
  return p;
}

std::vector<planning::PlanRow> rows(std::optional<runtime::TsvdPricing> tsvd, bool prefill) {
  planning::PlanTableQuery q{.config = models::load_model_config("llama-tiny"),
                             .shape = collectives::auto_torus_shape(2),
                             .batch = 8,
                             .prompt_len = 64,
                             .gen_len = 16,
                             .weights = kernels::WeightFormat::f32,
                             .prefill_chunk = 0,
                             .resources = {},
                             .tsvd = std::move(tsvd)};
  std::vector<planning::PlanRow> r;
  for (const auto& p : runtime::valid_phase_plans(q.config, q.shape, q.batch))
    r.push_back(planning::price_plan_row(q, planning::load_hardware_profile("tpu-v4"), p, prefill));
  return r;
}

}  // namespace

TEST_CASE("plan prices a TSVD checkpoint's factored weights: bytes, memory and gathers by density", "[plan][tsvd]") {
  for (bool prefill : {true, false}) {
    const auto dense = rows(std::nullopt, prefill), half = rows(uniform(0.5), prefill), quarter = rows(uniform(0.25), prefill);
    REQUIRE(dense.size() == half.size());
    for (size_t i = 0; i < dense.size(); ++i) {
      INFO((prefill ? "prefill " : "decode ") << dense[i].plan.str());
      // The decoder weights' share of bytes and memory shrinks with the density, the rest (embedding,
      // unembedding, KV cache) does not: dense − quarter = 1.5 × (dense − half).
      const double dw = dense[i].time.weights_s - half[i].time.weights_s;
      CHECK(dw > 0.3 * dense[i].time.weights_s);
      CHECK(dense[i].time.weights_s - quarter[i].time.weights_s == Approx(1.5 * dw).epsilon(1e-9));
      const double dm = dense[i].memory.weight_bytes - half[i].memory.weight_bytes;
      CHECK(dm > 0.3 * dense[i].memory.weight_bytes);
      // (Within 0.1 %: the dense estimate also counts the layers' norm weights, the factored one not.)
      CHECK(dense[i].memory.weight_bytes - quarter[i].memory.weight_bytes == Approx(1.5 * dm).epsilon(1e-3));
      // Weight-gathered layouts gather the factors: less traffic.
      if (dense[i].plan.str().starts_with("wg")) CHECK(half[i].time.comm_s < dense[i].time.comm_s);
    }
  }
}

TEST_CASE("cost model: a factored weight at M <= kTsvdFusedMaxM is one pass over its factors, GEMMs above",
          "[plan][tsvd]") {
  planning::StepQuery q;
  q.config = models::load_model_config("llama-tiny");
  q.shape = collectives::auto_torus_shape(1);
  q.plan = runtime::parse_phase_plan("ws2d/heads", "--plan");
  q.tsvd = uniform(0.5);
  for (int64_t M : {int64_t(1), kernels::kTsvdFusedMaxM, kernels::kTsvdFusedMaxM + 1}) {
    q.batch = M;
    const planning::StepCost c = planning::predict_step(q);
    bool tile_gemms = false;  // the GEMM path's [M, T_k] x [T_k, R_i]: K = the tile
    double flops = 0;
    for (const auto& m : c.layer.matmuls) {
      tile_gemms = tile_gemms || m.K == 32;
      flops += m.count * 2.0 * double(m.M) * double(m.K) * double(m.N);
    }
    INFO("M = " << M);
    CHECK(tile_gemms == (M > kernels::kTsvdFusedMaxM));
    CHECK(flops == Approx(c.layer.matmul_flops).epsilon(1e-9));  // the listed shapes carry the FLOPs
  }
}
