#pragma once
// The latency–cost Pareto frontier (`tori plan --pareto`; the paper's Figure 1): for each chip count
// and batch size of a sweep and each phase, the fastest plan that fits in memory (plan_table.hpp),
// then per phase the points no other point beats in both latency and cost (chip-seconds per token).
//   prefill  latency = the whole prefill of B prompts of prompt_len tokens (chunked to fit);
//            cost = chips · latency / (B · prompt_len)
//   decode   latency = one step (one token per sequence) at T = prompt_len + gen_len / 2;
//            cost = chips · latency / B
#include <string>
#include <vector>

#include "planning/plan_table.hpp"

namespace tori::planning {

struct FrontierPoint {
  bool prefill = false;
  int chips = 0;
  std::string torus;  // auto_torus_shape(chips)
  int64_t batch = 0;
  PlanRow best;       // the fastest plan that fits
  int plans_fitting = 0;
  bool frontier = false;  // on its phase's latency–cost frontier
};

struct SweepQuery {
  PlanTableQuery base;  // shape and batch are set per point
  std::vector<int> chips;
  std::vector<int64_t> batches;
};

// Every (phase, chips, batch) with a fitting plan, frontier marked; points with none are left out.
std::vector<FrontierPoint> sweep_frontier(const SweepQuery& q, const HardwareProfile& hw);

// Marks frontier on each phase's points: a point is on it unless another of its phase is at most
// as slow and at most as costly and strictly better in one of the two.
void mark_frontier(std::vector<FrontierPoint>& points);

// The sweep as CSV (a header, one line per point) and as JSON (the query and a list of points).
std::string frontier_csv(const std::vector<FrontierPoint>& points);
std::string frontier_json(const SweepQuery& q, const HardwareProfile& hw, const std::vector<FrontierPoint>& points);

// A comma-separated list of positive whole numbers (--chips, --batches); `flag` names it in errors.
std::vector<int64_t> parse_count_list(const std::string& text, const std::string& flag);

}  // namespace tori::planning
