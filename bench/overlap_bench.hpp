#pragma once
// `tori bench overlap`: how much communication the overlapped layouts hide. Runs a model's prefill
// and decode steps in each plan with --overlap none, looped and looped-bidir (under the link model
// given by --link-gbps / --link-latency-us, or chosen by --balance), and prints per (plan, phase,
// overlap) the median step time and where it went (CommTimeline, comm_timeline.hpp):
//   comm_s          time communication was under way per step (union of collectives' spans,
//                   incl. the link model's hold), slowest rank
//   exposed_comm_s  time the computing thread waited on communication per step, slowest rank
//   compute_s       step_s - exposed_comm_s
//   hidden_frac     1 - exposed / comm: the share of communication hidden behind compute
//   speedup         step_s of --overlap none / this step_s (when none is listed at or before it
//                   in --overlaps)
//   link_held_s     the part of exposed_comm_s spent asleep on the link model's hold (the data
//                   had arrived, the modelled transfer had not ended), slowest rank; the rest of
//                   the exposed time waited for the data itself (a peer not there yet)
//   cores_busy_s    CPU time per step of all ranks on the busiest host (every thread: compute,
//                   progress, polling) / that host's cores: the step time those cores would need
//                   if they were never idle. Near step_s, the host is saturated and no schedule of
//                   the same work can be faster there (more ranks than cores, docs/overlap.md).
// --rounds R times every (plan, overlap) R times in turn, each time built afresh, and reports the
// medians over all R·repeats steps: on a shared machine a slow spell then lands on every plan
// alike instead of on whichever was being timed (tori bench sweep uses 6). --balance's own
// measurement (below) runs once per plan, before the rounds.
// --per-layer adds one record per layer (and "other": embedding, final norm, logits) with the
// same figures inside that layer's section of the step.
// --balance: first runs the plan with --overlap none and no link model, takes its compute time T
// and the bytes B and messages S it sends per step, and sets, per phase, the link speed G at which
// those would take T on the link: S·U + B/G = T (U = --link-latency-us). Communication then costs
// as much as compute when nothing overlaps, which is the regime the paper's techniques target.
// T is step − exposed, or, when the host runs more threads than it has cores, cores_busy_s if
// larger: there the cores are the limit and a rank's "exposed" time is mostly other ranks' compute.
#include <string>
#include <vector>

#include "collectives/collectives.hpp"
#include "models/weight_source.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/plan.hpp"

namespace tori::bench {

// A plan to measure: as the user gave it (--balance's errors name it so) and as resolved.
struct OverlapPlan {
  std::string text;
  runtime::Plan plan;
};

struct OverlapBenchOptions {
  std::string torus;  // --torus: "" / auto or XxYxZ
  std::vector<OverlapPlan> plans;
  std::vector<std::string> overlaps = {"none", "looped", "looped-bidir"};  // each a valid --overlap
  std::vector<bool> phases = {true, false};  // prefill = true, decode = false
  int batch = 8;
  int prompt_len = 32;
  int steps = 8;   // --repeats: timed steps per phase and round (>= 1)
  int rounds = 1;  // >= 1
  std::string dtype = "f32";  // the weights' format as given (recorded; shard.format is the parsed one)
  bool balance = false;
  bool per_layer = false;
  // The runs' collectives (algorithm, transport) and link model (--link-gbps, --link-latency-us;
  // --balance replaces the speed per plan and phase), and their shards (backend, weight format;
  // the overlap is set per run from `overlaps`).
  collectives::CollectivesOptions collectives;
  runtime::ShardOptions shard;
  bool json = false;
  int threads = 1;  // recorded in each record
};

// Runs the benchmark on MPI_COMM_WORLD (every rank calls it), rank 0 printing the records on
// stdout. Throws tori::InputError where --balance finds no link speed. Returns 0.
int run_overlap_bench(const models::WeightSource& model, const OverlapBenchOptions& opt);

}  // namespace tori::bench
