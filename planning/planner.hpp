#pragma once
// Planner: `--plan auto`. Ranks every phase plan valid for the actual torus, batch and lengths by the
// cost model's predicted step time (cost_model.hpp priced by step_time.hpp on a hardware profile,
// normally the calibrated `local` one) and picks the fastest per phase:
//   decode   L = 1, T = prompt + gen/2 (the mean context over the generated tokens)
//   prefill  L = prompt, T = 0, handing its KV cache to the chosen decode layout (the handoff's
//            traffic is part of the prefill's cost, so a prefill in decode's placement can win);
//            chunked (prefill_chunk, ShardedModel::chunk_tokens) it is the sum of its chunks' steps,
//            chunk k with L = the chunk's tokens and T = the tokens before it (each chunk gathers
//            the weight-gathered layouts' weights again)
// The objective is serial_s (compute + communication) unless `overlapped` (--overlap looped...),
// then overlap_s. why() says what was chosen and the top candidates with their predicted times.
#include <string>
#include <vector>

#include "runtime/plan.hpp"
#include "planning/step_time.hpp"

namespace tori::planning {

struct PlannerQuery {
  models::ModelConfig config;
  collectives::TorusShape shape;
  int64_t batch = 1;
  int64_t prompt_len = 1;  // L of the prefill (the longest prompt)
  int64_t gen_len = 1;
  kernels::WeightFormat weights = kernels::WeightFormat::f32;
  int64_t kv_elem_bytes = 4;
  int64_t prefill_chunk = 0;  // tokens per prefill step over the batch (0: the whole prompts)
  double act_scale = 1.0;  // Tori's activations are f32 (step_time.hpp)
  RankResources resources;
  bool overlapped = false;
  // A TSVD checkpoint whose factors the run multiplies (runtime::run_pricing): factored FLOPs,
  // bytes and weight gathers (cost_model.hpp StepQuery::tsvd); nullopt: dense.
  std::optional<runtime::TsvdPricing> tsvd;
};

struct PlanCandidate {
  PhasePlan plan;
  StepTime time;
  double objective = 0;  // the time ranked by (serial_s or overlap_s)
};

struct PlannerChoice {
  Plan plan;
  std::vector<PlanCandidate> prefill, decode;  // every valid candidate, fastest first
  std::string why(size_t top = 3) const;       // one line per phase: choice and the top candidates
};

// Throws InputError (the placement's reason) when no plan runs.
PlannerChoice choose_plan(const PlannerQuery& q, const HardwareProfile& hw);

// Tokens per sequence of one prefill chunk (ShardedModel::chunk_tokens): the whole prompt when
// chunk <= 0, else max(1, chunk / batch) up to the prompt.
int64_t chunk_tokens(int64_t chunk, int64_t batch, int64_t prompt_len);

// The sum of a chunked prefill's steps (counts and times add; MFU and cost from the sums).
StepTime add_steps(const StepTime& a, const StepTime& b);

// Predicted time of one phase plan (decode_plan: where a prefill hands its cache; empty = itself).
PlanCandidate price_phase(const PlannerQuery& q, const HardwareProfile& hw, const PhasePlan& plan, bool prefill,
                          const PhasePlan* decode_plan = nullptr, int64_t cached = -1);

}  // namespace tori::planning
