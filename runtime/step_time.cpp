#include "runtime/step_time.hpp"

#include <algorithm>

namespace tori::runtime {

StepTime step_time(const StepCost& c, const HardwareProfile& hw, kernels::WeightFormat weights, int chips,
                   double act_scale) {
  StepTime t;
  const double peak = hw.peak(weights);
  t.compute_s = c.step.flops / peak;
  t.memory_s = (c.step.weight_bytes + c.step.kv_bytes) / hw.hbm_bandwidth;
  for (collectives::Axis a : collectives::kAxes) {
    const collectives::Traffic tr = c.step.traffic_on(a);
    t.comm_s += double(tr.messages) * hw.link_latency + double(tr.bytes) * act_scale / hw.link_bandwidth[size_t(a)];
  }
  const double chip = std::max(t.compute_s, t.memory_s);
  t.serial_s = chip + t.comm_s;
  t.overlap_s = std::max(chip, t.comm_s);
  const double n = chips, tok = double(std::max<int64_t>(1, c.tokens));
  auto mfu = [&](double s) { return s > 0 ? c.model_flops / (s * n * peak) : 0.0; };
  t.mfu_serial = mfu(t.serial_s);
  t.mfu_overlap = mfu(t.overlap_s);
  t.cost_serial = n * t.serial_s / tok;
  t.cost_overlap = n * t.overlap_s / tok;
  return t;
}

}  // namespace tori::runtime
