#pragma once
// HardwareProfile: the per-chip figures the cost model turns counts into times with. Profiles are
// YAML files: the built-in ones live in planning/profiles/*.yaml and are embedded into the binary
// (models/embed_presets.cmake); any other path is read from disk. Every key is required:
//   name                          string
//   peak_tflops_f32|bf16|int8     matmul peak per chip for that weight dtype, 1e12 FLOP/s
//   hbm_gib                       memory per chip, GiB (2^30 bytes)
//   hbm_gbps                      memory bandwidth, 1e9 bytes/s
//   link_gbps_x|y|z               bandwidth one rank sends at along that axis's ring, 1e9 bytes/s
//   link_latency_us               per block transfer (traffic.hpp's "message"), microseconds
// Unknown or missing keys, or non-positive values, are InputErrors naming the file and the key.
//
// Optional key `link_model_wake_us` (tori calibrate): how late a sleeping thread wakes here; the
// link model (--link-gbps) holds each collective back by sleeping, so each one costs this much more.
//
// Optional key `collective_us` (tori calibrate): per collective kind, the time of one call by the
// bytes it sends per rank (traffic.hpp's bytes), measured between 2 ranks of this host, e.g.
//   collective_us: {all_gather: {4096: 3, 262144: 40, 4194304: 250, 16777216: 3100}, ...}
// With it a call is priced from that curve (piecewise linear in bytes; the smallest point's time
// below it, the last segment extended above) instead of latency + bytes / link_gbps: a CPU's
// collectives slow down once their buffers leave the caches, and it reduces slower than it copies.
//
// Optional key `collective_sync_us` (tori calibrate): what each collective call of a step costs on
// this host beyond its collective_us time: the ranks reach it at different moments (one was
// descheduled, or finished its share later), fitted from a 2-rank decode.
//
// Optional keys `collective_step_gbps` and `rank_imbalance` (tori calibrate), fitted from 2-rank
// prefill steps: a collective call inside a step takes its collective_us time plus its bytes at
// collective_step_gbps (its buffers are packed into chunk order and come from and go to the
// caches of a step, where the curve times one buffer called over and over), and ranks in lockstep
// wait at their collectives for the slowest: rank_imbalance of a step's compute time (the same
// work runs at different speeds on a host's cores: one also serves interrupts, or is shared).
//
// Optional key `decode_sequence_share` (tori calibrate; 0 to 1, default 0.5): the share of a decode
// row's overhead (decode_row_overhead_ns) that is per sequence a rank attends (its attention call,
// its KV-cache append), the rest per head and F shard like a prefill row's (step_time.hpp); fitted
// from 2-rank decode steps of ws1d/heads (every sequence on each rank) against ws1d/batch:xyz (half).
//
// Optional key `cpu` (what `tori calibrate` measures on this machine, planning/calibration.hpp): a
// list with one entry per thread count a rank may run with; with it the step time prices a CPU
// rank by what it measured rather than by its peak (step_time.hpp):
//   - threads: 1
//     matmul_gflops_f32:  {1: 9.5, 8: 61, 64: 98, 512: 107}   # GFLOP/s by M (rows), K = N = 1024
//     matmul_gflops_bf16: {...}  matmul_gflops_int8: {...}
//     matmul_small_gflops_f32: {1: 5, 8: 30, ...}   # optional: the same at K = N = 256, by dtype
//     attention_gflops: 21          # kernels::attention over a KV cache (decode and prefill mix)
//     attention_gflops_bf16: 60     # optional: kernels::attention_bf16 (bf16 and int8 runs' prefill)
//     read_gbps: 19                 # memory read bandwidth with this many threads in total
//     cache_read_gbps: 60           # the same for a working set of up to cache_mib (in cache)
//     cache_mib: 16
//     layer_overhead_us: 35         # per layer and step: dispatch, norms, RoPE, softmax ... (fit)
//     prefill_overhead_us: 200      # per layer, added in a prefill block (fit)
//     row_overhead_ns: 120          # per layer, per prefill row (B_local·L) on one chip (fit)
//     decode_row_overhead_ns: 300   # optional: per layer, per decode row (a sequence: its own
//                                   # attention call and KV-cache append) (fit; default row_overhead_ns)
//     pack_gbps_bf16: 3             # optional: GB/s of f32 weights packed for the bf16 / int8
//     pack_gbps_int8: 2             # kernel (kernels::pack_weight; weight-gathered layouts pack
//                                   # every step); without them a pack is priced as a copy
//     overheads_bf16: {layer_us: 20, prefill_us: 0, row_ns: 90, decode_row_ns: 150}
//     overheads_int8: {...}         # optional: the four overheads above fitted on the model with
//                                   # bf16 / int8 weights (without: the f32 ones above)
//
// Optional key `matmul_efficiency` (accelerator profiles; without it every matmul runs at peak): the
// fraction of peak a local matmul [M, K] x [K, N] runs at, by its shape on one chip:
//   matmul_efficiency: {sustained: 0.85, row_multiple: 8, contraction_multiple: 128,
//                       output_multiple: 128, fill_rows: 128}
//   efficiency(M, K, N) = sustained · M / max(⌈M⌉_row, fill_rows) · K / ⌈K⌉_contraction · N / ⌈N⌉_output
// where ⌈x⌉_m rounds x up to a multiple of m: a systolic matrix unit works on whole tiles (K and N
// padded to the array's side, M to the vector registers' rows), and a weight tile takes fill_rows
// rows' time to load into the array, which only as many streamed rows hide (double-buffered), so
// fewer rows take as long. Attention's FLOPs (and any FLOPs not listed by shape) run at `sustained`.
// A CPU profile's `cpu` calibration prices matmuls by its measured rates instead (rows, and K·N).
//
// Optional key `link_efficiency` (0 to 1, default 1): the fraction of link_gbps a collective achieves
// when priced by the link figures (not by collective_us curves, which are measured).
//
// `tori calibrate` writes the `local` profile to profile_dir()/local.yaml; load_hardware_profile
// finds `<name>.yaml` there after the built-in names.
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectives/traffic.hpp"
#include "kernels/packed_weight.hpp"

namespace tori::planning {

inline constexpr double kGiga = 1e9;  // the profiles' GB/s and Gbit/s figures are in units of 1e9

// What FLOPs and bytes do not explain of a step, per layer (fitted; see the `cpu` key above).
struct Overheads {
  double layer_s = 0;       // per layer and step
  double prefill_s = 0;     // per layer, added in a prefill block
  double row_s = 0;         // per layer and prefill row
  double decode_row_s = 0;  // per layer and decode row
};

// One thread count's measured figures (see the `cpu` key above).
struct CpuCalibration {
  int threads = 1;
  std::array<std::vector<std::pair<double, double>>, 3> matmul_gflops;  // by WeightFormat: (M, GFLOP/s), M ascending
  std::array<std::vector<std::pair<double, double>>, 3> matmul_small_gflops;  // the same at K = N = 256 (optional)
  double attention_gflops = 0;
  // Prefill attention on bf16 tiles (kernels::attention_bf16: bf16 and int8 weights,
  // runtime::bf16_attention_applies); 0: not measured (a CPU without AVX512-BF16, an older
  // profile), priced at attention_gflops.
  double attention_bf16_gflops = 0;
  double read_gbps = 0;
  double cache_read_gbps = 0;
  double cache_bytes = 0;
  Overheads overhead;  // fitted on the model with f32 weights (layer_overhead_us, ...)
  std::array<std::optional<Overheads>, 3> format_overhead{};  // by WeightFormat: bf16's, int8's own
  // The overheads of a model with `f` weights: its own if fitted, else the f32 ones.
  const Overheads& overheads(kernels::WeightFormat f) const {
    const size_t i = size_t(kernels::priced_format(f));
    return format_overhead[i] ? *format_overhead[i] : overhead;
  }
  std::array<double, 3> pack_gbps{};  // by WeightFormat: f32 GB/s packed into it (0: not measured)
  // GFLOP/s of a matmul with M rows: log-log interpolation between the measured M, clamped.
  double matmul_rate(kernels::WeightFormat f, double M) const;
  // ... of [M, K] x [K, N]: with the K = N = 256 curve, interpolated log-log in sqrt(K·N) between
  // 256 and 1024 (clamped outside); without it, matmul_rate(f, M).
  double matmul_rate(kernels::WeightFormat f, double M, double K, double N) const;
};

// The matmul_efficiency key (above); the default runs every shape at peak.
struct MatmulEfficiency {
  double sustained = 1;
  int64_t row_multiple = 1, contraction_multiple = 1, output_multiple = 1, fill_rows = 1;
  // Fraction of peak for [M, K] x [K, N] (M, K, N >= 1).
  double of(double M, double K, double N) const;
};

struct HardwareProfile {
  std::string name;
  std::array<double, 3> peak_flops{};  // FLOP/s, by kernels::WeightFormat (f32, bf16, int8)
  double hbm_bytes = 0;                // bytes
  double hbm_bandwidth = 0;            // bytes/s
  std::array<double, 3> link_bandwidth{};  // bytes/s, by axis x, y, z
  double link_latency = 0;                 // s per message
  double link_model_wake = 0;              // s a link-model hold overshoots (optional)
  // collective_us: per kind, (bytes sent, seconds) ascending; empty: priced by the link figures.
  std::array<std::vector<std::pair<double, double>>, collectives::kCollectives.size()> collective_time{};
  double collective_sync = 0;  // s per collective call (collective_sync_us)
  double collective_step_bandwidth = 0;  // bytes/s of a call's extra time in a step (0: none)
  double rank_imbalance = 0;          // waits for the slowest rank per second of a step's compute
  double decode_sequence_share = 0.5;  // of a decode row's overhead, the part per sequence attended
  MatmulEfficiency matmul_efficiency;  // accelerator matmuls by shape (default: peak)
  double link_efficiency = 1;          // achieved fraction of link_gbps (priced by link figures)
  // Set by with_link_model (step_time.hpp): the emulated links a call cannot beat (0: none).
  double link_model_bandwidth = 0, link_model_latency = 0;

  // Seconds of one `kind` call sending `bytes` per rank from collective_us; < 0 without a curve.
  double collective_seconds(collectives::Collective kind, double bytes) const;

  std::vector<CpuCalibration> cpu;         // optional, ascending threads (tori calibrate)

  double peak(kernels::WeightFormat f) const { return peak_flops[size_t(kernels::priced_format(f))]; }
  // The calibration for `threads` (the largest measured count <= threads, else the smallest);
  // nullptr without a `cpu` key.
  const CpuCalibration* cpu_for(int threads) const;
};

// Where `tori calibrate` writes and load_hardware_profile looks for user profiles:
// $TORI_PROFILE_DIR, else <directory of the tori binary>/../.cache (the repo's .cache/ for build/tori).
std::string profile_dir();
// profile_dir()/local.yaml: the `local` profile `tori calibrate` writes.
std::string local_profile_path();
// Writes a profile as YAML (every key, the `cpu` list if any).
std::string hardware_profile_yaml(const HardwareProfile& p, const std::string& comment);

// `source` names the file in errors.
HardwareProfile parse_hardware_profile(const std::string& yaml_text, const std::string& source);
// A built-in name (hardware_profile_names()), a name with profile_dir()/<name>.yaml (e.g. `local`,
// written by `tori calibrate`), or a path to a YAML file.
HardwareProfile load_hardware_profile(const std::string& name_or_path);
std::vector<std::string> hardware_profile_names();

}  // namespace tori::planning
