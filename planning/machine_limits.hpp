#pragma once
// This machine's limits, measured in the same run as the benchmark that reports ratios to them:
//   peak matmul throughput per dtype — a large square GEMM through oneDNN with packed weights
//     (f32; bf16 via AVX512-BF16/AMX when present; int8 = u8 x s8 -> s32 VNNI/AMX), in GFLOP/s
//     (int8: GOP/s);
//   memory bandwidth — stream-like kernels over buffers far larger than the last-level cache:
//     triad a = b + s*c (STREAM convention: 3 x 4 bytes per element, write-allocate not counted)
//     and read-only sum (what weight/KV-cache streaming does; 8 sequential streams per thread read in
//     lockstep, as a GEMV reads several weight panels), in GB/s (1e9 bytes).
// Both use the current OpenMP thread count (runtime::apply_threads set it from --threads).
// Used by calibration (calibration.hpp: the read bandwidths) and by `tori bench kernels`
// (bench/kernels_bench.hpp), which puts the figures beside each record.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace tori::planning {

struct MachineLimitsOptions {
  int64_t gemm_size = 4096;     // M = N = K of the peak GEMM
  int64_t stream_mib = 0;       // MiB per stream array (3 arrays for triad); 0: auto_stream_mib()
  int repeats = 5;              // best of this many timed runs (after one warm-up)
};

struct MachineLimits {
  int threads = 1;
  std::string cpu_features;
  double f32_gflops = 0, bf16_gflops = 0, int8_gops = 0;
  double triad_gbps = 0, read_gbps = 0;
  int64_t stream_mib = 0;  // the array size used

  // GEMM peak for a kernel whose arithmetic runs in `dtype` ("f32", "bf16", "int8").
  double peak_gflops(std::string_view dtype) const;
  // Bandwidth limit for streaming kernels: the higher of triad and read (the stricter yardstick).
  double peak_gbps() const { return triad_gbps > read_gbps ? triad_gbps : read_gbps; }
  nlohmann::json to_json() const;  // {"bench":"machine_limits", ...}
};

MachineLimits measure_machine_limits(const MachineLimitsOptions& opt = {});

// Stream arrays far above the last-level cache: twice its size as the OS reports it, at least
// 256 MiB. (A 2-core Sapphire Rapids VM reports a 480 MiB L3; with 128 MiB arrays its 2-thread read
// came out at 37-41 GB/s against 29 GB/s from 256 MiB up: partly cache.)
int64_t auto_stream_mib();

// The host's 1-minute load average (/proc/loadavg), or -1 where it cannot be read: benchmarks on a
// shared machine put it next to every figure.
double load_average_1m();

}  // namespace tori::planning
