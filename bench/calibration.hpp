#pragma once
// Calibration of the `local` hardware profile (`tori calibrate`, launch/cmd_calibrate.cpp): what
// one rank of this CPU does with a given number of threads, in the terms the step time prices
// (runtime/step_time.hpp, runtime/hardware_profile.hpp's `cpu` entries):
//   matmul_gflops  kernels::matmul on packed K = N = 1024 weights (4 MiB f32: the size of a tiny or
//                  small model's shard) at M = 1, 8, 64, 512 rows, per weight dtype
// Every figure is the best of its repeats (the least disturbed by other work on a shared host).
//   attention      kernels::attention, multiquery, H = 8, D = 64, B = 8 sequences at T = 256
//                  cached: one decode step (L = 1) and one prefill block (L = 32); GFLOP/s of both
//   read_gbps      machine_limits.hpp's read-only sum over arrays far larger than the L3
//   cache_read_gbps  the same over a 16 MiB array, which stays in the last-level cache: the speed of
//                  weights and KV caches that fit there (cache_mib)
//   overheads      what the model's FLOPs and bytes do not explain: a one-rank ShardedModel of
//                  `model` runs decode steps at batch 1 and prefill blocks of 32 tokens at batch 1
//                  and 4 (M = 32, 128); the measured minus the predicted time per layer gives a
//                  fixed part per layer (decode), and an extra fixed part and a part per row in
//                  prefill (three points, three unknowns; each clamped at 0; step_time.hpp)
// Link figures come from `tori bench collectives` under mpirun (cmd_calibrate.cpp).
#include <mpi.h>

#include <string>

#include "runtime/hardware_profile.hpp"

namespace tori::bench {

struct CalibrationOptions {
  bool quick = false;              // fewer repeats (CI); figures are noisier
  std::string model = "palm-tiny"; // the model the overheads are fitted on
  std::string matmul = "auto";     // --matmul backend
};

// Measures one thread count (sets the thread count of every backend to `threads`).
runtime::CpuCalibration calibrate_cpu(int threads, const CalibrationOptions& opt);

}  // namespace tori::bench
