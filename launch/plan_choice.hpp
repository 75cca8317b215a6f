#pragma once
// The plan a command runs, from its --plan text: a plan string, `default` (runtime::default_plan:
// the paper's advice) or `auto` (planning/planner.hpp on the calibrated `local` profile, with the
// link model's figures when --link-gbps is on; rank 0 logs the choice and the top 3 candidates).
// A machine without a local profile is calibrated on first use: rank 0 runs `tori calibrate`
// (about a minute) while the other ranks wait asleep, then sends the profile to all.
// And the MFU/MBU of measured steps against the same profile (for the generate summary).
#include <optional>
#include <string>

#include "collectives/torus_shape.hpp"
#include "kernels/packed_weight.hpp"
#include "launch/command.hpp"
#include "models/config.hpp"
#include "runtime/factored_weights.hpp"
#include "runtime/plan.hpp"
#include "planning/step_time.hpp"

namespace tori::launch {

struct PlanContext {
  models::ModelConfig config;
  collectives::TorusShape shape;
  int64_t batch = 1;
  int64_t prompt_len = 1;  // the longest prompt (prefill L)
  int64_t gen_len = 1;
  kernels::WeightFormat weights = kernels::WeightFormat::f32;
  // Tokens per prefill step over the batch, as the run chunks its prefill (--prefill-chunk; 0: the
  // whole prompts): the planner prices the prefill chunk by chunk (planning/planner.hpp).
  int64_t prefill_chunk = 2048;  // runtime::ShardOptions::kDefaultPrefillChunk (asserted in plan_choice.cpp)
  // A TSVD checkpoint the run multiplies factored (runtime::run_pricing): priced as such.
  std::optional<runtime::TsvdPricing> tsvd;
};

// Collective over MPI_COMM_WORLD (every rank calls it). `flag` names the option in errors.
runtime::Plan resolve_plan(const std::string& text, const std::string& flag, const PlanContext& ctx,
                           const GlobalOptions& g);

// MFU and MBU of a measured prefill block / decode step (cached = T before it) on the `local`
// profile; nullopt when there is no local profile (run `tori calibrate`). Collective.
std::optional<planning::Utilisation> measured_utilisation(const PlanContext& ctx, const runtime::Plan& plan,
                                                         bool prefill, int64_t cached, double measured_s,
                                                         const GlobalOptions& g);

}  // namespace tori::launch
