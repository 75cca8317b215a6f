#pragma once
// `tori bench sweep` (launch/cmd_bench_sweep.cpp): measured against predicted over a grid of
// chip counts × batch sizes × weight dtypes × plans × phases. It runs on one process and, per (chips, batch),
// starts `mpirun -np n [--oversubscribe when n > cores] tori --threads cores/n --json bench
// overlap ...` — the same layer-stack step measurement `tori bench overlap` makes (median over
// repeats × rounds of the slowest rank, the plans of a point timed in turn round after round, so
// that a slow spell of a shared machine does not pick the fastest plan; prefill: reset + prefill of B prompts of prompt_len tokens;
// decode: one step, T = prompt_len + (repeats + 1)/2 on average) — for every plan valid at that
// point (each used for both phases; plans the cost model cannot tell apart there, such as every
// batch:* variant on one chip, are measured once). Beside each measurement it records the cost model's
// prediction on the hardware profile (normally `local`, with the link model's figures when
// --link-gbps is on) and which plan `--plan auto` would pick for that phase. Output: JSON lines
// (stdout, and <out>.jsonl) and CSV (<out>.csv), one record per (chips, batch, phase, plan):
//   chips torus threads batch dtype prompt_len phase plan overlap link_gbps measured_s predicted_s
//   rel_err pred_compute_s pred_memory_s pred_comm_s pred_overhead_s comm_s exposed_comm_s
//   comm_share tokens_per_s mfu mbu auto fastest refined first_measured_s peak_gflops_per_chip
//   gbps_per_chip
// Where the auto plan measured slower than its fastest rival (by more than refine_above), the two
// are timed again head to head in one launch with refine_rounds rounds; those measurements replace
// both records' (the first kept as first_measured_s). Then a summary record: median |predicted -
// measured| / measured, and the share of (point, phase) where the auto plan's measured time is
// within 10% of the fastest measured plan's, after and before refinement. Progress goes to stderr.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tori::bench {

struct SweepOptions {
  std::string model = "palm-tiny";
  std::vector<int> chips = {1, 2};
  std::vector<int> batches = {1, 4, 16, 64};
  std::vector<std::string> dtypes = {"f32", "bf16"};  // weight formats
  std::vector<std::string> plans;  // empty: every plan valid at each point
  int prompt_len = 16;
  int repeats = 5;
  int rounds = 6;  // bench overlap --rounds: every plan of a point timed in turn, 6 times (fewer let
                   // near-tie plans swap order by noise: docs/cost_model.md "tori bench sweep")
  // Refinement: where the auto plan measured slower than its fastest rival by more than refine_above
  // (1.0: whenever it was not the fastest), the two are timed again head to head, in one launch with
  // refine_rounds rounds, and those measurements replace both (the first kept as first_measured_s).
  int refine_rounds = 6;  // 0: no refinement
  double refine_above = 1.0;
  std::string hardware = "local";
  std::string out;                 // prefix of <out>.jsonl and <out>.csv (empty: stdout only)
  std::string mpirun = "mpirun";
  // Passed through to every run (global options).
  std::string collectives = "mpi", overlap = "none", matmul = "auto";
  double link_gbps = 0, link_latency_us = 0;
  bool json = true;
};

struct SweepSummary {
  size_t points = 0, records = 0;
  double median_abs_rel_err = 0;
  double auto_within_10pct = 0;  // fraction of (point, phase) where auto's measured <= 1.1 × fastest
  double auto_within_10pct_first = 0;  // the same before refinement
  size_t refined = 0;                  // (point, phase) timed again head to head
  double worst_auto_ratio = 0;
  nlohmann::json to_json() const;
};

SweepSummary run_sweep(const SweepOptions& opt);

}  // namespace tori::bench
