#include "planning/step_time.hpp"

#include "runtime/attention_kernel.hpp"
#include "runtime/memory_estimate.hpp"

#include <algorithm>

namespace tori::planning {

using namespace runtime;  // the layouts and placements priced here

namespace {


struct Rates {
  const CpuCalibration* cpu = nullptr;  // null: accelerator pricing by peak
  double peak = 0, bandwidth = 0;
};

// bytes: what one rank reads per step (its working set: weights and KV cache).
Rates rates_of(const HardwareProfile& hw, kernels::WeightFormat weights, RankResources res, double bytes) {
  Rates r;
  r.peak = hw.peak(weights);
  r.bandwidth = hw.hbm_bandwidth;
  if (res.threads <= 0 || hw.cpu.empty()) return r;
  r.cpu = hw.cpu_for(res.threads);
  const auto& curve = r.cpu->matmul_gflops[size_t(kernels::priced_format(weights))];
  r.peak = 0;
  for (const auto& [M, g] : curve) r.peak = std::max(r.peak, g * kGiga);
  const int ranks = std::max(1, res.ranks_on_host);
  const CpuCalibration* host = hw.cpu_for(res.threads * ranks);
  // Every rank's working set in the host's cache: read at this rank's cache speed (caches scale
  // with the cores using them), else at memory speed, which the host's ranks share.
  const bool cached = bytes * ranks <= host->cache_bytes && r.cpu->cache_read_gbps > 0;
  r.bandwidth = cached ? r.cpu->cache_read_gbps * kGiga : std::min(r.cpu->read_gbps, host->read_gbps / ranks) * kGiga;
  return r;
}

// Readying weight-gathered weights for the kernel (cost_model.hpp): the rearranging copies at the
// read bandwidth of two layers' gathered weights (the cache's when they fit), and the packing at the
// calibrated pack rate (f32 bytes in per second: oneDNN's reorder into its blocked bf16/int8 layout,
// which moves far fewer bytes per second than a copy), or as read 4 + write bytes(dtype) at that
// bandwidth when the profile has none.
double repack_s(const Work& w, const HardwareProfile& hw, kernels::WeightFormat weights, RankResources res) {
  const Rates r = rates_of(hw, weights, res, w.repack_block_bytes);
  const double pack = r.cpu ? r.cpu->pack_gbps[size_t(kernels::priced_format(weights))] : 0.0;
  return w.repack_bytes / r.bandwidth + (pack > 0 ? w.pack_elements * 4.0 / (pack * kGiga)
                                                  : w.pack_elements * (4.0 + runtime::weight_element_bytes(weights)) / r.bandwidth);
}

}  // namespace

StepTime step_time(const StepCost& c, const HardwareProfile& hw, kernels::WeightFormat weights, int chips,
                   double act_scale, RankResources res) {
  StepTime t;
  const Rates r = rates_of(hw, weights, res, c.step.weight_bytes + c.step.kv_bytes);
  t.peak_flops = r.peak;
  t.bandwidth = r.bandwidth;
  if (r.cpu) {
    // Each matmul shape (predict_step lists them all) at its measured rate for its rows and size.
    for (const MatmulShape& m : c.step.matmuls)
      t.compute_s += m.count * 2.0 * double(m.M) * double(m.K) * double(m.N) /
                     (r.cpu->matmul_rate(weights, double(m.M), double(m.K), double(m.N)) * kGiga);
    // Attention at the calibrated rate of the kernel the run uses: bf16 and int8 runs' prefill on
    // bf16 tiles (runtime/attention_kernel.hpp), everything else the f32 kernel.
    const double attn_gflops = c.prefill && r.cpu->attention_bf16_gflops > 0 &&
                                       runtime::bf16_attention_applies(weights, kernels::Backend::onednn)
                                   ? r.cpu->attention_bf16_gflops
                                   : r.cpu->attention_gflops;
    t.compute_s += c.step.attn_flops / (attn_gflops * kGiga);
    // Per-row work beyond the matmuls. Prefill's B·L rows (RoPE, softmax, SwiGLU) run over this
    // rank's share of the heads and F: they split over the ranks not splitting the batch (all n for
    // weight-stationary layouts; weight-gathered ones hold whole F for their rows). A decode row is
    // a sequence: part of its work is per sequence attended (an attention call, the append of its
    // one K/V head: heads-sharded attention does it for every sequence on every rank, batch-sharded
    // for B_a), part per query head like prefill's. A one-rank calibration cannot tell the parts
    // apart: the profile's decode_sequence_share is fitted on 2-rank steps (tori calibrate; 0.5
    // without it). Either fixed extreme mis-ranked near-tie decode plans on our 2-core machines
    // (docs/cost_model.md).
    const double split_rows = double(c.rows) / double(std::max<int64_t>(1, c.row_split));
    const double phi = hw.decode_sequence_share;
    const double rows =
        c.prefill ? split_rows : phi * double(c.sequences > 0 ? c.sequences : c.rows) + (1 - phi) * split_rows;
    const Overheads& o = r.cpu->overheads(weights);
    t.overhead_s = double(c.layers) * (o.layer_s + (c.prefill ? o.prefill_s : 0.0) +
                                       rows * (c.prefill ? o.row_s : o.decode_row_s)) +
                   repack_s(c.step, hw, weights, res);
    t.matmul_flops_s = t.compute_s - c.step.attn_flops / (attn_gflops * kGiga);
  } else {
    // Each matmul shape at the profile's efficiency for it; the FLOPs not listed by shape
    // (attention's) at the sustained rate of a large matmul.
    const MatmulEfficiency& e = hw.matmul_efficiency;
    double listed = 0;
    for (const MatmulShape& m : c.step.matmuls) {
      const double f = m.count * 2.0 * double(m.M) * double(m.K) * double(m.N);
      listed += f;
      t.matmul_flops_s += f / (r.peak * e.of(double(m.M), double(m.K), double(m.N)));
    }
    t.compute_s = t.matmul_flops_s + std::max(0.0, c.step.flops - listed) / (r.peak * e.sustained);
  }
  t.weights_s = c.step.weight_bytes / r.bandwidth;
  t.kv_s = c.step.kv_bytes / r.bandwidth;
  t.memory_s = t.weights_s + t.kv_s;
  // Call by call and axis by axis: from the measured curve of its kind if the profile has one (plus
  // its bytes at collective_step_gbps; no faster than the link model, if on), else latency per
  // message + bytes / link bandwidth.
  for (const CommCall& call : c.step.calls) {
    t.sync_s += call.count * hw.collective_sync;  // the ranks meeting (profile: collective_sync_us)
    for (collectives::Axis a : collectives::kAxes) {
      const collectives::Traffic& tr = call.traffic[size_t(a)];
      if (tr.bytes == 0 && tr.messages == 0) continue;
      const double bytes = double(tr.bytes) * act_scale, msgs = double(tr.messages);
      double s = hw.collective_seconds(call.kind, bytes);
      if (s < 0) {
        s = msgs * hw.link_latency + bytes / (hw.link_bandwidth[size_t(a)] * hw.link_efficiency);
      } else {
        if (hw.collective_step_bandwidth > 0) s += bytes / hw.collective_step_bandwidth;
        if (hw.link_model_bandwidth > 0)
          s = std::max(s, msgs * hw.link_model_latency + bytes / hw.link_model_bandwidth);
      }
      t.comm_axis_s[size_t(call.kind)][size_t(a)] += call.count * s;
    }
  }
  t.comm_s = t.sync_s;
  for (const auto& kind : t.comm_axis_s)
    for (double s : kind) t.comm_s += s;
  const double chip = std::max(t.compute_s, t.memory_s) + t.overhead_s;
  // Ranks in lockstep: at its collectives a rank waits for the slowest (profile: rank_imbalance).
  if (!c.step.calls.empty()) t.wait_s = hw.rank_imbalance * chip;
  t.comm_s += t.wait_s;
  t.serial_s = chip + t.comm_s;
  t.overlap_s = std::max(chip, t.comm_s - t.wait_s) + t.wait_s;
  // The critical path: of the chip's time the larger of compute and memory (weights + KV), and the
  // overhead; serially every collective after it, overlapped the longer of the chip's and the
  // collectives' own times; waiting for the slowest rank always.
  const std::array<double, kTimeParts> alone = t.alone();
  const bool compute_bound = t.compute_s >= t.memory_s;
  const bool chip_longer = chip >= t.comm_s - t.wait_s;
  for (size_t i = 0; i < kTimeParts; ++i) {
    const bool chip_part = i <= kPartOverhead;
    const bool on_chip_path = i == kPartOverhead || (i == kPartCompute) == compute_bound;
    t.exposed_serial[i] = (chip_part ? on_chip_path : true) ? alone[i] : 0.0;
    t.exposed_overlap[i] =
        (i == kPartWait || (chip_part ? chip_longer && on_chip_path : !chip_longer)) ? alone[i] : 0.0;
  }
  const double n = chips, tok = double(std::max<int64_t>(1, c.tokens));
  auto mfu = [&](double s) { return s > 0 ? c.model_flops / (s * n * r.peak) : 0.0; };
  t.mfu_serial = mfu(t.serial_s);
  t.mfu_overlap = mfu(t.overlap_s);
  t.cost_serial = n * t.serial_s / tok;
  t.cost_overlap = n * t.overlap_s / tok;
  return t;
}

std::array<double, kTimeParts> StepTime::alone() const {
  std::array<double, kTimeParts> a{};
  a[kPartCompute] = compute_s, a[kPartWeights] = weights_s, a[kPartKv] = kv_s, a[kPartOverhead] = overhead_s;
  a[kPartSync] = sync_s, a[kPartWait] = wait_s;
  for (collectives::Collective k : collectives::kCollectives)
    for (collectives::Axis x : collectives::kAxes) a[comm_part(k, x)] = comm_axis_s[size_t(k)][size_t(x)];
  return a;
}

StepTime scaled_times(StepTime t, double k) {
  for (size_t i = 0; i < kTimeParts; ++i) t.exposed_serial[i] *= k, t.exposed_overlap[i] *= k;
  for (double* x : {&t.compute_s, &t.memory_s, &t.comm_s, &t.overhead_s, &t.wait_s, &t.serial_s, &t.overlap_s,
                    &t.weights_s, &t.kv_s, &t.sync_s, &t.matmul_flops_s})
    *x *= k;
  for (auto& kind : t.comm_axis_s)
    for (double& s : kind) s *= k;
  return t;
}

Utilisation utilisation(const StepCost& c, double measured_s, const HardwareProfile& hw,
                        kernels::WeightFormat weights, int chips, RankResources res) {
  Utilisation u;
  if (!(measured_s > 0)) return u;
  const Rates r = rates_of(hw, weights, res, c.step.weight_bytes + c.step.kv_bytes);
  u.mfu = c.model_flops / (measured_s * double(chips) * r.peak);
  u.mbu = (c.step.weight_bytes + c.step.kv_bytes) / (measured_s * r.bandwidth);
  return u;
}

HardwareProfile with_link_model(HardwareProfile hw, double gbps, double latency_us) {
  if (gbps <= 0) return hw;
  // The link model holds a collective back until its modelled time while the real transfer runs
  // underneath, so a collective takes the longer of the two: per message and per byte, the slower.
  for (double& b : hw.link_bandwidth) b = std::min(b, gbps * kGiga);
  hw.link_model_bandwidth = gbps * kGiga;
  hw.link_model_latency = latency_us * 1e-6 + hw.link_model_wake;
  // Each hold is a sleep that wakes link_model_wake late (one hold per collective call: per message
  // on a 2-rank ring, an approximation on longer rings).
  hw.link_latency = std::max(hw.link_latency, latency_us * 1e-6 + hw.link_model_wake);
  return hw;
}

}  // namespace tori::planning
