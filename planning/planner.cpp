#include "planning/planner.hpp"

#include <algorithm>
#include <cstdio>

#include "kernels/error.hpp"
#include "runtime/placement.hpp"

namespace tori::planning {

using namespace runtime;  // the layouts and placements priced here

PlanCandidate price_phase(const PlannerQuery& q, const HardwareProfile& hw, const PhasePlan& plan, bool prefill,
                          const PhasePlan* decode_plan, int64_t cached) {
  StepQuery s;
  s.config = q.config;
  s.shape = q.shape;
  s.plan = plan;
  if (prefill) s.decode_plan = decode_plan ? *decode_plan : plan;
  s.prefill = prefill;
  s.batch = q.batch;
  s.tokens = prefill ? q.prompt_len : 1;
  s.cached = cached >= 0 ? cached : (prefill ? 0 : q.prompt_len + q.gen_len / 2);
  s.weights = q.weights;
  s.kv_elem_bytes = q.kv_elem_bytes;
  PlanCandidate c;
  c.plan = plan;
  c.time = step_time(predict_step(s), hw, q.weights, q.shape.ranks(), q.act_scale, q.resources);
  c.objective = q.overlapped ? c.time.overlap_s : c.time.serial_s;
  return c;
}

PlannerChoice choose_plan(const PlannerQuery& q, const HardwareProfile& hw) {
  const auto plans = valid_phase_plans(q.config, q.shape, q.batch);
  if (plans.empty()) {
    validate_phase(q.config, q.shape, parse_phase_plan("ws2d/heads", "--plan auto"), q.batch, "every");
    throw InputError("--plan auto: no plan runs model '" + q.config.name + "' on torus " + q.shape.str() +
                     " with batch " + std::to_string(q.batch));
  }
  auto by_time = [](const PlanCandidate& a, const PlanCandidate& b) { return a.objective < b.objective; };
  PlannerChoice out;
  for (const auto& p : plans) out.decode.push_back(price_phase(q, hw, p, false));
  std::stable_sort(out.decode.begin(), out.decode.end(), by_time);
  const PhasePlan decode = out.decode.front().plan;
  for (const auto& p : plans) out.prefill.push_back(price_phase(q, hw, p, true, &decode));
  std::stable_sort(out.prefill.begin(), out.prefill.end(), by_time);
  out.plan = Plan{out.prefill.front().plan, decode};
  return out;
}

std::string PlannerChoice::why(size_t top) const {
  std::string s = "plan auto: " + plan.str() + " (predicted per step:";
  for (const auto* phase : {&prefill, &decode}) {
    s += phase == &prefill ? " prefill " : "; decode ";
    for (size_t i = 0; i < std::min(top, phase->size()); ++i) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%s %.3g ms", i ? ", " : "", (*phase)[i].plan.str().c_str(),
                    (*phase)[i].objective * 1e3);
      s += buf;
    }
  }
  return s + ")";
}

}  // namespace tori::planning
