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
//                   the same work can be faster there (more ranks than cores, README "Overlap").
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
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "collectives/collective_matmul.hpp"
#include "collectives/request_wait.hpp"
#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/plan_choice.hpp"
#include "launch/sharded_run.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/prompts.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::launch {

namespace {

using collectives::CommTimeline;

struct OverlapOptions {
  std::string model = "llama-tiny";
  unsigned long long seed = 1234;
  std::string torus;
  std::vector<std::string> plans = {"ws2d/heads", "wg_xyz/batch:xyz"};
  std::vector<std::string> overlaps = {"none", "looped", "looped-bidir"};
  std::vector<std::string> phases = {"prefill", "decode"};
  int batch = 8;
  int prompt_len = 32;
  int steps = 8;
  int rounds = 1;
  std::string dtype = "f32";  // weights
  bool balance = false;
  bool per_layer = false;
};

// Medians over the timed steps of the slowest rank's figures.
struct Measured {
  double step = 0, comm = 0, exposed = 0;
  double cores_busy = 0;  // the busiest host's CPU seconds per step / its cores
  double held = 0;        // exposed time asleep on the link model's holds
  double bytes = 0, messages = 0;  // sent per step by this rank, all axes (slowest rank's count)
  std::map<int, CommTimeline::Section> sections;
};

// The timed steps themselves (slowest rank's figures), gathered over --rounds.
struct Samples {
  std::vector<double> step, comm, exposed, bytes, messages, cores_busy, held;
  std::map<int, std::vector<CommTimeline::Section>> per_section;
};

// CPU seconds this process (all its threads) has used.
double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The ranks sharing this rank's host (MPI_COMM_TYPE_SHARED), freed with the object.
struct HostComm {
  MPI_Comm comm = MPI_COMM_NULL;
  HostComm() { MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &comm); }
  ~HostComm() { MPI_Comm_free(&comm); }
  HostComm(const HostComm&) = delete;
  HostComm& operator=(const HostComm&) = delete;
};

// The CPU seconds of this host's ranks together / its cores, the largest over the hosts.
double busiest_host_cores_s(const HostComm& host, double cpu_s) {
  double sum = 0;
  MPI_Allreduce(&cpu_s, &sum, 1, MPI_DOUBLE, MPI_SUM, host.comm);
  return max_over_ranks(sum / double(std::max(1u, std::thread::hardware_concurrency())));
}

void measure(runtime::ShardedModel& model, collectives::Collectives& coll, bool prefill,
             const std::vector<models::TokenIds>& prompts, int steps, Samples& out) {
  auto& tl = coll.timeline();
  const HostComm host;
  for (int r = 0; r < steps + 1; ++r) {  // the first run is a warm-up
    if (prefill || r == 0) model.reset(), model.prefill(prompts);
    MPI_Barrier(MPI_COMM_WORLD);
    const collectives::Traffic t0 = coll.traffic().total();
    tl.reset();
    const double cpu0 = process_cpu_s();
    const double start = kernels::now_s();
    if (prefill) {
      model.reset();
      model.prefill(prompts);
    } else {
      model.decode(models::TokenIds(prompts.size(), 1));
    }
    const double dt = kernels::now_s() - start;
    const double cpu = process_cpu_s() - cpu0;
    const auto sections = tl.sections();
    const collectives::Traffic t1 = coll.traffic().total();
    if (r == 0) continue;
    out.step.push_back(max_over_ranks(dt));
    out.cores_busy.push_back(busiest_host_cores_s(host, cpu));
    out.held.push_back(max_over_ranks(tl.held_s()));
    out.comm.push_back(max_over_ranks(tl.busy_s()));
    out.exposed.push_back(max_over_ranks(tl.exposed_s()));
    out.bytes.push_back(max_over_ranks(double(t1.bytes - t0.bytes)));
    out.messages.push_back(max_over_ranks(double(t1.messages - t0.messages)));
    for (CommTimeline::Section s : sections) {  // every rank has the same sections
      s.wall_s = max_over_ranks(s.wall_s), s.comm_s = max_over_ranks(s.comm_s);
      s.exposed_s = max_over_ranks(s.exposed_s);
      out.per_section[s.id].push_back(s);
    }
  }
}

Measured summarize(const Samples& v) {
  Measured m{kernels::median(v.step),       kernels::median(v.comm),  kernels::median(v.exposed),
             kernels::median(v.cores_busy), kernels::median(v.held),  kernels::median(v.bytes),
             kernels::median(v.messages),   {}};
  for (const auto& [id, secs] : v.per_section) {
    CommTimeline::Section s;
    s.id = id;
    std::vector<double> w, c, e;
    for (const auto& x : secs) w.push_back(x.wall_s), c.push_back(x.comm_s), e.push_back(x.exposed_s);
    s.wall_s = kernels::median(w), s.comm_s = kernels::median(c), s.exposed_s = kernels::median(e);
    m.sections[id] = s;
  }
  return m;
}

Measured measure(runtime::ShardedModel& model, collectives::Collectives& coll, bool prefill,
                 const std::vector<models::TokenIds>& prompts, int steps) {
  Samples v;
  measure(model, coll, prefill, prompts, steps, v);
  return summarize(v);
}

double hidden_frac(double comm, double exposed) { return comm > 0 ? std::clamp(1.0 - exposed / comm, 0.0, 1.0) : 0.0; }

int run_overlap(const OverlapOptions& o, const GlobalOptions& g) {
  auto source = models::open_model(o.model, o.seed);
  const auto& cfg = source->config();
  std::vector<models::TokenIds> prompts(static_cast<size_t>(o.batch));
  for (int b = 0; b < o.batch; ++b)
    for (int i = 0; i < o.prompt_len; ++i) prompts[size_t(b)].push_back(int32_t((b * 131 + i * 7 + 1) % cfg.vocab));
  std::vector<bool> phases;
  for (const std::string& p : o.phases) {
    if (p != "prefill" && p != "decode") throw InputError("--phases: '" + p + "' (allowed: prefill, decode)");
    phases.push_back(p == "prefill");
  }
  for (const std::string& ov : o.overlaps) collectives::parse_overlap(ov, "--overlaps");
  if (o.rounds < 1) throw InputError("--rounds: " + std::to_string(o.rounds) + " (allowed: 1 or more)");
  if (o.steps < 1) throw InputError("--repeats: " + std::to_string(o.steps) + " (allowed: 1 or more)");
  if (g.rank == 0 && !g.json)
    std::printf("%-24s %-8s %-13s %9s %10s %10s %10s %10s %7s %8s\n", "plan", "phase", "overlap", "link_gbps",
                "step_ms", "compute_ms", "comm_ms", "exposed_ms", "hidden", "speedup");
  const kernels::WeightFormat weights = kernels::parse_weight_format(o.dtype, "--dtype");
  struct PlanRun {
    runtime::Plan plan;
    std::map<bool, double> gbps;  // per phase (prefill = true)
  };
  std::vector<PlanRun> runs;
  for (const std::string& plan_text : o.plans) {
    PlanRun run{resolve_plan(plan_text, "--plans",
                             {cfg, collectives::resolve_torus_shape(o.torus, g.world_size), o.batch, o.prompt_len,
                              o.steps, weights},
                             g),
                {}};
    for (bool prefill : phases) run.gbps[prefill] = g.link_gbps;
    if (o.balance) {
      // Compute time and traffic of the plan with nothing overlapped and no link model.
      GlobalOptions go = g;
      go.overlap = "none", go.link_gbps = 0, go.link_latency_us = 0;
      ShardedRun env(o.torus, go);
      env.shard.format = weights;
      runtime::ShardedModel model(*source, *env.coll, run.plan, o.batch, env.shard);
      for (bool prefill : phases) {
        const Measured m = measure(model, *env.coll, prefill, prompts, o.steps);
        // The step's compute: what the computing thread did not wait, or, on a host with more
        // threads than cores, what the host's cores needed for the step if that is more (there a
        // rank mostly "waits" for the ranks holding the cores, README "Overlap").
        const double compute = collectives::spin_allowed() ? m.step - m.exposed
                                                           : std::max(m.step - m.exposed, m.cores_busy);
        const double budget = compute - m.messages * g.link_latency_us * 1e-6;
        if (m.bytes <= 0) throw InputError("--balance: plan " + plan_text + " sends nothing in " +
                                           (prefill ? "prefill" : "decode") + " on this torus (allowed: a plan that communicates)");
        if (budget <= 0)
          throw InputError("--balance: --link-latency-us " + std::to_string(g.link_latency_us) + " alone costs " +
                           std::to_string(m.messages * g.link_latency_us * 1e-3) + " ms per " +
                           (prefill ? "prefill" : "decode") + " step, more than its compute (" +
                           std::to_string(compute * 1e3) + " ms); allowed: a smaller latency");
        run.gbps[prefill] = m.bytes / budget / 1e9;
        spdlog::info("balance {} {}: compute {:.3f} ms (not waiting {:.3f} ms, cores busy {:.3f} ms), {:.0f} bytes in "
                     "{:.0f} messages per step -> link {:.4f} GB/s",
                     plan_text, prefill ? "prefill" : "decode", compute * 1e3, (m.step - m.exposed) * 1e3,
                     m.cores_busy * 1e3, m.bytes, m.messages, run.gbps[prefill]);
      }
    }
    runs.push_back(std::move(run));
  }
  // Round after round, every (plan, overlap) is built afresh and timed, so that a slow spell of a
  // shared machine lands on all of them alike; the medians are over every round's steps.
  std::map<std::tuple<size_t, size_t, bool>, Samples> samples;  // (plan, overlap, prefill)
  int ranks = 0;
  std::string torus;
  // One record per (plan, overlap, phase), printed as the last round finishes it.
  auto report = [&](size_t i, size_t k) {
    const runtime::Plan& plan = runs[i].plan;
    std::map<bool, double>& gbps = runs[i].gbps;
    const std::string& ov = o.overlaps[k];
    for (bool prefill : phases) {
      const Measured m = summarize(samples[{i, k, prefill}]);
      // Against --overlap none when it is listed at or before this overlap.
      const auto none = std::find(o.overlaps.begin(), o.overlaps.begin() + long(k) + 1, "none");
      const double speedup =
          none != o.overlaps.begin() + long(k) + 1
              ? summarize(samples[{i, size_t(none - o.overlaps.begin()), prefill}]).step / m.step
              : 0.0;
      if (g.rank != 0) continue;
      const char* phase = prefill ? "prefill" : "decode";
      nlohmann::json rec = {{"bench", "overlap"}, {"model", cfg.name}, {"plan", plan.str()}, {"phase", phase},
                            {"overlap", ov}, {"ranks", ranks}, {"torus", torus},
                            {"batch", o.batch}, {"prompt_len", o.prompt_len}, {"dtype", o.dtype}, {"link_gbps", gbps[prefill]},
                            {"link_latency_us", g.link_latency_us}, {"balanced", o.balance},
                            {"threads", g.threads_applied}, {"step_s", m.step}, {"compute_s", m.step - m.exposed},
                            {"comm_s", m.comm}, {"exposed_comm_s", m.exposed},
                            {"hidden_frac", hidden_frac(m.comm, m.exposed)}, {"bytes_per_step", m.bytes},
                            {"cores_busy_s", m.cores_busy}, {"link_held_s", m.held},
                            {"repeats", o.steps}, {"rounds", o.rounds}};
      if (speedup > 0) rec["speedup_vs_none"] = speedup;
      if (g.json)
        kernels::emit(rec);
      else
        std::printf("%-24s %-8s %-13s %9.4f %10.3f %10.3f %10.3f %10.3f %6.0f%% %7.2fx\n", plan.str().c_str(), phase,
                    ov.c_str(), gbps[prefill], m.step * 1e3, (m.step - m.exposed) * 1e3, m.comm * 1e3,
                    m.exposed * 1e3, hidden_frac(m.comm, m.exposed) * 100, speedup);
      if (!o.per_layer) continue;
      for (const auto& [id, s] : m.sections) {
        const std::string layer = id == CommTimeline::kOther ? "other" : std::to_string(id);
        if (g.json)
          kernels::emit({{"bench", "overlap_layer"}, {"model", cfg.name}, {"plan", plan.str()}, {"phase", phase},
                       {"overlap", ov}, {"ranks", ranks}, {"layer", layer},
                       {"link_gbps", gbps[prefill]}, {"wall_s", s.wall_s}, {"compute_s", s.compute_s()},
                       {"comm_s", s.comm_s}, {"exposed_comm_s", s.exposed_s},
                       {"hidden_frac", hidden_frac(s.comm_s, s.exposed_s)}});
        else
          std::printf("  layer %-16s %-8s %-13s %9s %10.3f %10.3f %10.3f %10.3f %6.0f%%\n", layer.c_str(), phase,
                      ov.c_str(), "", s.wall_s * 1e3, s.compute_s() * 1e3, s.comm_s * 1e3, s.exposed_s * 1e3,
                      hidden_frac(s.comm_s, s.exposed_s) * 100);
      }
    }
  };
  for (int round = 0; round < o.rounds; ++round)
    for (size_t i = 0; i < runs.size(); ++i)
      for (size_t k = 0; k < o.overlaps.size(); ++k) {
        GlobalOptions go = g;
        go.overlap = o.overlaps[k];
        ShardedRun env(o.torus, go);
        env.shard.format = weights;
        ranks = env.torus.ranks(), torus = env.torus.shape().str();
        runtime::ShardedModel model(*source, *env.coll, runs[i].plan, o.batch, env.shard);
        for (bool prefill : phases) {
          env.coll->set_link({runs[i].gbps[prefill], g.link_latency_us});
          measure(model, *env.coll, prefill, prompts, o.steps, samples[{i, k, prefill}]);
        }
        if (round == o.rounds - 1) report(i, k);
      }
  return 0;
}

}  // namespace

void add_bench_overlap_command(CLI::App& bench, Commands& out) {
  auto o = std::make_shared<OverlapOptions>();
  CLI::App* app = bench.add_subcommand(
      "overlap", "communication hidden by the overlapped layouts, per plan and phase (--link-gbps or --balance)");
  app->add_option("--model", o->model, "preset, model YAML or checkpoint")->capture_default_str();
  app->add_option("--torus", o->torus, "torus shape XxYxZ (default: auto)");
  app->add_option("--plans", o->plans, "plans to measure (or auto, default)")->delimiter(',')->capture_default_str();
  app->add_option("--overlaps", o->overlaps, "none,looped,looped-bidir (none first gives speedup_vs_none)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--phases", o->phases, "prefill,decode")->delimiter(',')->capture_default_str();
  app->add_option("--batch", o->batch, "sequences")->capture_default_str();
  app->add_option("--prompt-len", o->prompt_len, "prefill tokens per sequence")->capture_default_str();
  app->add_option("--repeats", o->steps, "timed steps per phase (median reported)")->capture_default_str();
  app->add_option("--rounds", o->rounds,
                  "times every (plan, overlap) is rebuilt and timed, in turn; the median is over all rounds' steps")
      ->capture_default_str();
  app->add_option("--dtype", o->dtype, "weight format: f32|bf16|int8")->capture_default_str();
  app->add_flag("--balance", o->balance,
                "per plan and phase, set the link speed so that communication takes as long as compute "
                "(measured with --overlap none and no link model; keeps --link-latency-us)");
  app->add_flag("--per-layer", o->per_layer, "also print each layer's compute, communication and exposed time");
  out.push_back({app, [o](const GlobalOptions& g) { return run_overlap(*o, g); }});
}

}  // namespace tori::launch
