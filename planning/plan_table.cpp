#include "planning/plan_table.hpp"

#include <algorithm>

#include "planning/planner.hpp"
#include "runtime/placement.hpp"

namespace tori::planning {

double activation_scale(kernels::WeightFormat w) { return w == kernels::WeightFormat::f32 ? 1.0 : 0.5; }

namespace {

int64_t kv_elem_bytes(kernels::WeightFormat w) { return w == kernels::WeightFormat::f32 ? 4 : 2; }

MemoryCost memory_of(const PlanTableQuery& q, const HardwareProfile& hw, const PhasePlan& p, bool prefill,
                     int64_t Lc) {
  const bool accel = hw.cpu.empty();
  const double act_b = accel ? 4.0 * activation_scale(q.weights) : 4.0;
  const double gathered_b = accel ? runtime::weight_element_bytes(q.weights) : 4.0, plain_b = accel ? 0.0 : 4.0;
  const runtime::StepShape step{.batch = q.batch, .tokens = prefill ? Lc : 1, .prompt = q.prompt_len,
                                .act_bytes = act_b, .gathered_bytes = gathered_b, .placed_copy = !accel};
  return predict_memory(q.config, q.shape, p, p, q.batch, q.prompt_len + q.gen_len, q.weights,
                        kv_elem_bytes(q.weights), prefill ? step : runtime::StepShape{0},
                        prefill ? runtime::StepShape{0} : step, plain_b, q.tsvd ? &*q.tsvd : nullptr);
}

}  // namespace

PlanRow price_plan_row(const PlanTableQuery& q, const HardwareProfile& hw, const PhasePlan& p, bool prefill) {
  int64_t Lc = 1;
  if (prefill) {
    if (q.prefill_chunk >= 0) {
      Lc = chunk_tokens(q.prefill_chunk, q.batch, q.prompt_len);
    } else {
      Lc = q.prompt_len;
      while (Lc > 1 && memory_of(q, hw, p, true, Lc).total() > hw.hbm_bytes) Lc = (Lc + 1) / 2;
    }
  }
  PlannerQuery pq{.config = q.config, .shape = q.shape, .batch = q.batch, .prompt_len = q.prompt_len,
                  .gen_len = q.gen_len, .weights = q.weights, .kv_elem_bytes = kv_elem_bytes(q.weights),
                  .prefill_chunk = Lc * q.batch, .act_scale = activation_scale(q.weights),
                  .resources = q.resources, .overlapped = true, .tsvd = q.tsvd};
  PlanRow r{p, price_phase(pq, hw, p, prefill).time, memory_of(q, hw, p, prefill, Lc), Lc, false};
  r.fits = r.memory.total() <= hw.hbm_bytes;
  return r;
}

std::vector<PlanRow> rank_phase_plans(const PlanTableQuery& q, const HardwareProfile& hw, bool prefill) {
  std::vector<PlanRow> rows;
  for (const auto& p : runtime::valid_phase_plans(q.config, q.shape, q.batch))
    rows.push_back(price_plan_row(q, hw, p, prefill));
  std::stable_sort(rows.begin(), rows.end(),
                   [](const PlanRow& a, const PlanRow& b) { return a.time.overlap_s < b.time.overlap_s; });
  return rows;
}

}  // namespace tori::planning
