#include "planning/planner.hpp"

#include <algorithm>
#include <cstdio>

#include "kernels/error.hpp"
#include "runtime/placement.hpp"

namespace tori::planning {

using namespace runtime;  // the layouts and placements priced here

int64_t chunk_tokens(int64_t chunk, int64_t batch, int64_t prompt_len) {
  if (chunk <= 0) return prompt_len;
  return std::clamp<int64_t>(chunk / std::max<int64_t>(1, batch), 1, prompt_len);
}

StepTime add_steps(const StepTime& a, const StepTime& b) {
  StepTime t = a;
  t.compute_s += b.compute_s, t.memory_s += b.memory_s, t.comm_s += b.comm_s, t.overhead_s += b.overhead_s;
  t.wait_s += b.wait_s, t.serial_s += b.serial_s, t.overlap_s += b.overlap_s;
  t.weights_s += b.weights_s, t.kv_s += b.kv_s, t.sync_s += b.sync_s, t.matmul_flops_s += b.matmul_flops_s;
  for (size_t k = 0; k < t.comm_axis_s.size(); ++k)
    for (size_t a = 0; a < 3; ++a) t.comm_axis_s[k][a] += b.comm_axis_s[k][a];
  for (size_t i = 0; i < kTimeParts; ++i) t.exposed_serial[i] += b.exposed_serial[i], t.exposed_overlap[i] += b.exposed_overlap[i];
  // MFU and cost are ratios to the time: weighted by each part's time they add up to the whole's.
  auto mix = [](double x, double sx, double y, double sy) { return sx + sy > 0 ? (x * sx + y * sy) / (sx + sy) : 0.0; };
  t.mfu_serial = mix(a.mfu_serial, a.serial_s, b.mfu_serial, b.serial_s);
  t.mfu_overlap = mix(a.mfu_overlap, a.overlap_s, b.mfu_overlap, b.overlap_s);
  t.cost_serial = a.cost_serial + b.cost_serial;  // chip-seconds per token: tokens of the whole batch
  t.cost_overlap = a.cost_overlap + b.cost_overlap;
  return t;
}

PlanCandidate price_phase(const PlannerQuery& q, const HardwareProfile& hw, const PhasePlan& plan, bool prefill,
                          const PhasePlan* decode_plan, int64_t cached) {
  StepQuery s;
  s.config = q.config;
  s.shape = q.shape;
  s.plan = plan;
  if (prefill) s.decode_plan = decode_plan ? *decode_plan : plan;
  s.prefill = prefill;
  s.batch = q.batch;
  s.weights = q.weights;
  s.kv_elem_bytes = q.kv_elem_bytes;
  s.tsvd = q.tsvd;
  const int64_t T0 = cached >= 0 ? cached : (prefill ? 0 : q.prompt_len + q.gen_len / 2);
  PlanCandidate c;
  c.plan = plan;
  auto price = [&](int64_t L, int64_t T) {
    s.tokens = L;
    s.cached = T;
    s.logits = !prefill || T + L >= T0 + q.prompt_len;  // a chunked prefill's last chunk
    return step_time(predict_step(s), hw, q.weights, q.shape.ranks(), q.act_scale, q.resources);
  };
  if (!prefill) {
    c.time = price(1, T0);
  } else {
    // Chunk by chunk; each chunk's cost per token is over the whole batch's tokens (B·L), so that
    // the chunks' costs add up to the prefill's. The full chunks differ only in the tokens cached
    // before them, which attention's FLOPs and KV bytes grow linearly with: the first and the last
    // full chunk are priced and the ones between interpolated (their mean times their count; the
    // logits, computed after the last chunk only, thereby counted full/2 times); a shorter last
    // chunk is priced alone.
    const int64_t Lc = chunk_tokens(q.prefill_chunk, q.batch, q.prompt_len);
    const int64_t full = q.prompt_len / Lc, rest = q.prompt_len % Lc;
    auto priced = [&](int64_t L, int64_t T, double count) {
      StepTime t = scaled_times(price(L, T), count);
      const double sh = double(L) / double(q.prompt_len);
      t.cost_serial *= sh * count, t.cost_overlap *= sh * count;
      return t;
    };
    if (full == 1) {
      c.time = priced(Lc, T0, 1);
    } else {
      const double between = double(full) / 2.0;  // first and last each stand for half the full chunks
      c.time = add_steps(priced(Lc, T0, between), priced(Lc, T0 + (full - 1) * Lc, between));
    }
    if (rest > 0) c.time = add_steps(c.time, priced(rest, T0 + full * Lc, 1));
  }
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
