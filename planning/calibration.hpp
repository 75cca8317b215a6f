#pragma once
// Calibration: measures this machine and fits the `local` hardware profile (hardware_profile.hpp)
// that step_time.hpp prices a CPU rank's steps with. `tori calibrate` (launch/cmd_calibrate.cpp)
// parses the flags, calls calibrate_machine and writes the profile.
//
// `cpu` entries (calibrate_cpu), for 1 thread and for every core of the host. A thread count below
// the cores is measured as cores/threads ranks under mpirun all measuring at once (`tori calibrate
// --rank-figures`, rank_figures_yaml), so its figures include what ranks sharing a host cost each
// other (caches, memory bandwidth); they meet at a barrier before each figure. Three whole rounds
// run one after another (one with `quick`) and each figure is their median; within a round a
// timed figure is the median of its repeats (as the sweep reports what it measures):
//   matmul_gflops        kernels::matmul on packed K = N = 1024 weights (4 MiB f32: the size of a
//                        tiny or small model's shard) at M = 1, 8, 64, 512 rows, per weight format
//                        (f32, bf16, int8); matmul_small_gflops the same at K = N = 256 (a small
//                        shard runs further below peak)
//   pack_gbps            f32 weights of K = N = 1024 packed into bf16 and into int8
//                        (kernels::pack_weight, as weight-gathered layouts pack every step)
//   attention_gflops     kernels::attention, multiquery, H = 8, D = 64, B = 8 sequences with T = 256
//                        cached: one decode step (L = 1) and one prefill block (L = 32), both together
//   read_gbps            machine_limits.hpp's read-only sum over arrays far larger than the L3 (best
//                        of its repeats)
//   cache_read_gbps      the same over a 16 MiB array, which stays in the last-level cache: the speed
//                        of weights and KV caches that fit there (cache_mib)
//   overheads            what the model's FLOPs and bytes do not explain, per weight format: a
//                        one-rank ShardedModel of `model` (plan ws2d/heads) runs decode steps at
//                        batch 1 to 64 and prefill blocks of 16 tokens at batch 1 to 64 (M = 16 to
//                        1024); the measured minus the predicted time per layer (the reads priced as
//                        the ranks measuring together share the host), each point's median over the
//                        rounds, then a Theil-Sen line through decode's points (layer_overhead_us +
//                        decode_row_overhead_ns per row) and one through prefill's (layer +
//                        prefill_overhead_us, + row_overhead_ns per row), each part clamped at 0
// Host figures (calibrate_machine):
//   peak_tflops          the largest matmul rate measured per weight format (all cores)
//   hbm_*                physical memory and the all-core read bandwidth
//   link_*, collective_us   `mpirun -np 2 tori bench collectives` (over x, the `collectives`
//                        algorithm, 4 KiB, 256 KiB, 4 MiB and 16 MiB per rank, each point the best of
//                        3 launches): per collective kind the time of one call by the bytes it sends;
//                        the links get all_gather's latency (4 KiB) and its bandwidth between 256 KiB
//                        and 4 MiB (the ranks share one host, so y and z get the x figures)
//   link_model_wake_us   how late a 20 µs sleep wakes (the link model's holds are sleeps)
//   collective_sync_us, collective_step_gbps, rank_imbalance, decode_sequence_share   what 2-rank
//                        prefill and decode steps (`tori bench overlap`, nothing overlapped) take
//                        beyond what the rest of the profile predicts: per call, per byte sent, per
//                        second of compute, and the share of a decode row's overhead per sequence
//                        attended (fit_step_collectives in calibration.cpp says how)
#include <mpi.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "collectives/traffic.hpp"
#include "planning/hardware_profile.hpp"

namespace tori::planning {

struct CalibrationOptions {
  bool quick = false;               // fewer repeats and rounds (CI); figures are noisier
  std::string model = "palm-tiny";  // the model the overheads and the step figures are fitted on
  std::string matmul = "auto";      // --matmul backend
  std::string collectives = "mpi";  // --collectives algorithm the links are timed with
  std::string mpirun = "mpirun";    // starts the 2-rank measurements and the ranks sharing the host
  // Ranks measuring together (calibrate_machine runs a rank count below the cores as that many
  // ranks under mpirun, all measuring at once, so the figures include what the ranks sharing a
  // host cost each other: caches, memory bandwidth); they meet at a barrier before each figure.
  MPI_Comm sync = MPI_COMM_SELF;
};

// Measures one thread count (sets the thread count of every backend to `threads`): three whole
// rounds one after another (one with `quick`), each figure their median.
CpuCalibration calibrate_cpu(int threads, const CalibrationOptions& opt);

// What `tori calibrate --rank-figures` prints on rank 0: a profile holding only `c` (the other
// figures are placeholders), which calibrate_machine reads back from the ranks it started.
std::string rank_figures_yaml(const CpuCalibration& c);

// The links between 2 ranks of this host (`tori bench collectives`).
struct LinkFit {
  double gbps = 0, latency_us = 0;
  // per collective kind: (bytes sent, seconds) of one call at each measured size
  std::array<std::vector<std::pair<double, double>>, collectives::kCollectives.size()> kind_time{};
};

struct MachineCalibration {
  HardwareProfile profile;  // the `local` profile, every figure measured or fitted
  LinkFit link;             // the link measurements behind its link_* and collective_us
};

// Measures this machine and fits the whole `local` profile (about a minute; `quick`: one round
// instead of three). Run on one process, not under mpirun: it starts mpirun itself (opt.mpirun).
// Throws tori::Error when a measurement it started gives no figures.
MachineCalibration calibrate_machine(const CalibrationOptions& opt);

}  // namespace tori::planning
