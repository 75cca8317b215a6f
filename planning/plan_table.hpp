#pragma once
// PlanTable: what `tori plan` prints for one configuration — every valid phase plan priced as the
// planner prices it (planner.hpp: a prefill keeps its cache in place, chunked prefill as the sum
// of its chunks) with its memory per chip, fastest first by the overlapped latency. Shared by the
// table, the Pareto sweep (pareto.hpp) and the side-by-side explanation (explain.hpp).
//   Memory in the run's formats: on an accelerator profile activations at the modelled activation
//   bytes (bf16: 2, f32: 4) and weight-gathered layouts gathering their stored weights (no f32
//   plain copy); on a calibrated CPU profile as Tori runs (f32 activations and plain copies).
//   Prefill chunk: given (tokens over the batch, 0 = whole prompts) or auto: per plan the longest
//   chunk (whole prompts, then halving the tokens per sequence) whose memory fits the chip.
#include <string>
#include <vector>

#include "planning/cost_model.hpp"
#include "planning/hardware_profile.hpp"
#include "planning/step_time.hpp"

namespace tori::planning {

struct PlanTableQuery {
  models::ModelConfig config;
  collectives::TorusShape shape;
  int64_t batch = 1;
  int64_t prompt_len = 1;  // prefill L (T = 0)
  int64_t gen_len = 0;     // decode: T = prompt_len + gen_len / 2; memory: the KV cache at prompt + gen
  kernels::WeightFormat weights = kernels::WeightFormat::bf16;
  int64_t prefill_chunk = -1;  // tokens per prefill step over the batch; 0 = whole prompts; < 0 auto
  RankResources resources;     // a calibrated CPU profile's ranks (threads 0: accelerator pricing)
  std::optional<runtime::TsvdPricing> tsvd;  // a TSVD checkpoint run factored (planner.hpp); nullopt: dense
};

struct PlanRow {
  PhasePlan plan;
  StepTime time;
  MemoryCost memory;
  int64_t chunk = 0;  // tokens per sequence of a prefill step (1 in decode)
  bool fits = false;  // memory.total() <= the profile's memory per chip
};

// Every valid plan of the phase, fastest first (overlap_s); empty when no plan runs.
std::vector<PlanRow> rank_phase_plans(const PlanTableQuery& q, const HardwareProfile& hw, bool prefill);

// One plan priced and sized as rank_phase_plans does.
PlanRow price_plan_row(const PlanTableQuery& q, const HardwareProfile& hw, const PhasePlan& plan, bool prefill);

// Activations modelled in bf16 for bf16/int8 weights (Tori runs f32: traffic is scaled by this).
double activation_scale(kernels::WeightFormat w);

}  // namespace tori::planning
