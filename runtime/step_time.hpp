#pragma once
// StepTime: a StepCost (cost_model.hpp) priced on a HardwareProfile, per chip.
//   compute_s  = step FLOPs / peak(weight dtype)
//   memory_s   = (weight bytes + KV-cache bytes) / HBM bandwidth
//   comm_s     = Σ_axis (messages_axis · latency + bytes_axis · act_scale / link_bandwidth_axis)
//                — axes in sequence, as Tori's collectives run them axis by axis (ring_plan.hpp);
//                act_scale = activation element bytes / 4 rescales Tori's f32 wire bytes to the
//                activation dtype being modelled (bf16 on TPU: 0.5).
//   chip_s     = max(compute_s, memory_s): compute and memory overlap on a chip (roofline)
//   serial_s   = chip_s + comm_s            (no overlap of communication)
//   overlap_s  = max(chip_s, comm_s)        (ideal overlap, e.g. looped CollectiveEinsum)
//   mfu        = model FLOPs / (time · n · peak)   (PAPER.md; model FLOPs exclude redundant K/V)
//   cost       = n · time / tokens                 (chip-seconds per token)
#include "runtime/cost_model.hpp"
#include "runtime/hardware_profile.hpp"

namespace tori::runtime {

struct StepTime {
  double compute_s = 0, memory_s = 0, comm_s = 0;
  double serial_s = 0, overlap_s = 0;
  double mfu_serial = 0, mfu_overlap = 0;
  double cost_serial = 0, cost_overlap = 0;  // chip-seconds per token
};

StepTime step_time(const StepCost& cost, const HardwareProfile& hw, kernels::WeightFormat weights, int chips,
                   double act_scale = 1.0);

}  // namespace tori::runtime
