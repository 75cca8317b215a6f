#pragma once
// StepTime: a StepCost (cost_model.hpp) priced on a HardwareProfile, per chip.
//   compute_s  = Σ matmul shapes 2·M·K·N / (peak(weight dtype) · efficiency(M, K, N)) + attention
//                FLOPs / (peak · sustained): the profile's matmul_efficiency (hardware_profile.hpp;
//                tpu-v4: MXU tiles of 128, rows in 8s, weight-tile fill; default: peak)
//   memory_s   = (weight bytes + KV-cache bytes) / HBM bandwidth  (= weights_s + kv_s)
//   comm_s     = Σ_calls Σ_axis (messages · latency + bytes · act_scale / (link_bandwidth_axis ·
//                link_efficiency)), or
//                with the profile's collective_us curves (tori calibrate) the curve's time for the
//                call's kind and bytes (at least the link model's time when one is on). The curves
//                are measured on a 2-rank ring; a longer ring's extra steps are not added. Plus
//                collective_sync per call (the profile's; ranks arriving at different moments).
//                A curve's time gets bytes / collective_step_gbps more (a call inside a step against
//                the same call timed alone), and a step with collectives adds
//                wait_s = rank_imbalance · chip_s (ranks in lockstep wait for the slowest).
//                — axes in sequence, as Tori's collectives run them axis by axis (ring_plan.hpp);
//                act_scale = activation element bytes / 4 rescales Tori's f32 wire bytes to the
//                activation dtype being modelled (bf16 on TPU: 0.5).
//   chip_s     = max(compute_s, memory_s) + overhead_s: compute and memory overlap on a chip
//                (roofline); overhead_s = 0 on an accelerator profile
//   serial_s   = chip_s + comm_s            (no overlap of communication; comm_s includes wait_s)
//   overlap_s  = max(chip_s, comm_s - wait_s) + wait_s  (ideal overlap, e.g. looped
//                CollectiveEinsum: transfers hide behind compute, waiting for the slowest does not)
//   mfu        = model FLOPs / (time · n · peak)   (docs/paper.md; model FLOPs exclude redundant K/V)
//   cost       = n · time / tokens                 (chip-seconds per token)
//
// A CPU rank (a profile with a `cpu` calibration, hardware_profile.hpp, and RankResources given)
// is priced by what `tori calibrate` measured for its thread count instead of by peak:
//   compute_s  = Σ matmul shapes 2·M·K·N / matmul_rate(dtype, M, K, N) + attention FLOPs / attention rate
//   memory_s   = bytes / (the read bandwidth this rank gets: its threads' figure, or the host's
//                figure for all ranks' threads shared evenly, whichever is lower; its threads'
//                cache figure when every rank's bytes fit in the calibrated cache size together)
//   overhead_s = layers · (layer_overhead + in a prefill: prefill_overhead + rows/split · row_overhead;
//                in decode: (φ·sequences attended + (1-φ)·rows/split) · decode_row_overhead, φ the
//                profile's decode_sequence_share, default 0.5) — the
//                overheads fitted with the step's weight dtype when the profile has them
//                (overheads_bf16/int8), else the f32 ones
//                + repack bytes (weight-gathered layouts, cost_model.hpp) / the read bandwidth
//                for two layers' gathered weights (cache speed when they fit, as memory_s)
//                + packed elements · 4 / the calibrated pack rate (bf16/int8 weight-gathered)
//                (dispatch, norms, RoPE, softmax, copies: what FLOPs and bytes do not explain; the
//                prefill per-row part, fitted on one rank, is elementwise work over heads and F,
//                which splits over the ranks not splitting the batch — an approximation; decode's
//                is φ per sequence attended (an attention call, a cache append), the rest per head)
//   peak       = the largest matmul rate measured at its thread count (MFU's yardstick)
#include "planning/cost_model.hpp"
#include "planning/hardware_profile.hpp"

namespace tori::planning {

// What one rank runs with on its host (only used with a calibrated CPU profile).
struct RankResources {
  int threads = 0;        // compute threads per rank; 0 = price by the profile's peak figures
  int ranks_on_host = 1;  // ranks sharing the host's memory bandwidth
};

// The parts of a step's time: the chip's, then each collective kind on each axis.
enum TimePartIndex : size_t { kPartCompute, kPartWeights, kPartKv, kPartOverhead, kPartSync, kPartWait, kPartComm };
inline constexpr size_t kTimeParts = kPartComm + collectives::kCollectives.size() * 3;
inline constexpr size_t comm_part(collectives::Collective k, collectives::Axis a) {
  return kPartComm + size_t(k) * 3 + size_t(a);
}

struct StepTime {
  double compute_s = 0, memory_s = 0, comm_s = 0, overhead_s = 0;
  double wait_s = 0;  // part of comm_s: waiting at collectives for the slowest rank
  // Where the time goes (tori plan --explain): memory_s = weights_s + kv_s; comm_s = sync_s +
  // wait_s + Σ comm_axis_s (each collective kind on each axis).
  double weights_s = 0, kv_s = 0, sync_s = 0;
  std::array<std::array<double, 3>, collectives::kCollectives.size()> comm_axis_s{};
  double matmul_flops_s = 0;  // part of compute_s: the listed matmul shapes (the rest: attention)
  // Each part's share of serial_s and of overlap_s on the critical path (explain.hpp), indexed by
  // TimePartIndex; summed over a chunked prefill's steps like the times (each step has its own
  // critical path), so each adds up to the whole's serial_s and overlap_s.
  std::array<double, kTimeParts> exposed_serial{}, exposed_overlap{};
  // Each part's own time in the same order.
  std::array<double, kTimeParts> alone() const;
  double serial_s = 0, overlap_s = 0;
  double mfu_serial = 0, mfu_overlap = 0;
  double cost_serial = 0, cost_overlap = 0;  // chip-seconds per token
  double peak_flops = 0;                     // per chip, the MFU yardstick used
  double bandwidth = 0;                      // per chip, bytes/s used for memory_s (MBU's yardstick)
};

// Every time of `t` (not its MFU or cost) times k: k equal steps.
StepTime scaled_times(StepTime t, double k);

StepTime step_time(const StepCost& cost, const HardwareProfile& hw, kernels::WeightFormat weights, int chips,
                   double act_scale = 1.0, RankResources res = {});

// A measured step against the model: MFU = model FLOPs / (measured_s · chips · peak) and MBU =
// bytes one chip reads (weights + KV cache) / (measured_s · bandwidth), with the peak and bandwidth
// step_time uses for this profile and rank resources.
struct Utilisation {
  double mfu = 0, mbu = 0;
};
Utilisation utilisation(const StepCost& cost, double measured_s, const HardwareProfile& hw,
                        kernels::WeightFormat weights, int chips, RankResources res = {});

// The profile as the link model (collectives/link_model.hpp, --link-gbps/--link-latency-us) makes
// the links look: when gbps > 0, a collective completes no earlier than the model says while the
// real transfer runs underneath, so each axis gets the lower of the two bandwidths and each
// message the larger of the two latencies (the modelled one plus how late a sleep wakes here,
// link_model_wake, since the hold is a sleep).
HardwareProfile with_link_model(HardwareProfile hw, double gbps, double latency_us);

}  // namespace tori::planning
