#pragma once
// Calibration of the `local` hardware profile (`tori calibrate`, launch/cmd_calibrate.cpp): what
// one rank of this CPU does with a given number of threads, in the terms the step time prices
// (planning/step_time.hpp, planning/hardware_profile.hpp's `cpu` entries):
//   matmul_gflops  kernels::matmul on packed K = N = 1024 weights (4 MiB f32: the size of a tiny or
//                  small model's shard) at M = 1, 8, 64, 512 rows, per weight dtype; and the same
//                  at K = N = 256 (matmul_small_gflops: a small shard runs further below peak)
// Every timed figure is the median of its repeats (as the sweep reports what it measures);
// bandwidths come from machine_limits.hpp (best of its repeats).
//   attention      kernels::attention, multiquery, H = 8, D = 64, B = 8 sequences at T = 256
//                  cached: one decode step (L = 1) and one prefill block (L = 32); GFLOP/s of both
//   read_gbps      machine_limits.hpp's read-only sum over arrays far larger than the L3
//   cache_read_gbps  the same over a 16 MiB array, which stays in the last-level cache: the speed of
//                  weights and KV caches that fit there (cache_mib)
//   overheads      what the model's FLOPs and bytes do not explain: a one-rank ShardedModel of
//                  `model` runs decode steps at batch 1 and 4 and prefill blocks of 32 tokens at
//                  batch 1, 4 and 16 (M = 32, 128, 512); the measured minus the predicted time per
//                  layer gives a fixed part per layer (decode's mean), and an extra fixed part and
//                  a part per row in prefill (a least-squares line; each clamped at 0; step_time.hpp)
// Link figures come from `tori bench collectives` under mpirun (cmd_calibrate.cpp).
#include <mpi.h>

#include <string>

#include "planning/hardware_profile.hpp"

namespace tori::bench {

struct CalibrationOptions {
  bool quick = false;              // fewer repeats (CI); figures are noisier
  std::string model = "palm-tiny"; // the model the overheads are fitted on
  std::string matmul = "auto";     // --matmul backend
  // Ranks measuring together (`tori calibrate` runs a rank count below the cores as that many
  // ranks under mpirun, all measuring at once, so the figures include what the ranks sharing a
  // host cost each other: caches, memory bandwidth); they meet at a barrier before each figure.
  MPI_Comm sync = MPI_COMM_SELF;
};

// Measures one thread count (sets the thread count of every backend to `threads`): three whole
// rounds one after another (one with `quick`), each figure their median.
planning::CpuCalibration calibrate_cpu(int threads, const CalibrationOptions& opt);

}  // namespace tori::bench
