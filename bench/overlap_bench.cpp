#include "bench/overlap_bench.hpp"

#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "collectives/max_over_ranks.hpp"

#include "collectives/collective_matmul.hpp"
#include "collectives/request_wait.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "models/prompts.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::bench {

namespace {

using collectives::CommTimeline;

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
  return collectives::max_over_ranks(sum / double(std::max(1u, std::thread::hardware_concurrency())));
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
    out.step.push_back(collectives::max_over_ranks(dt));
    out.cores_busy.push_back(busiest_host_cores_s(host, cpu));
    out.held.push_back(collectives::max_over_ranks(tl.held_s()));
    out.comm.push_back(collectives::max_over_ranks(tl.busy_s()));
    out.exposed.push_back(collectives::max_over_ranks(tl.exposed_s()));
    out.bytes.push_back(collectives::max_over_ranks(double(t1.bytes - t0.bytes)));
    out.messages.push_back(collectives::max_over_ranks(double(t1.messages - t0.messages)));
    for (CommTimeline::Section s : sections) {  // every rank has the same sections
      s.wall_s = collectives::max_over_ranks(s.wall_s), s.comm_s = collectives::max_over_ranks(s.comm_s);
      s.exposed_s = collectives::max_over_ranks(s.exposed_s);
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

// The batch's prompts: prompt_len tokens each, the same on every rank and in every run.
std::vector<models::TokenIds> make_prompts(int batch, int prompt_len, int64_t vocab) {
  std::vector<models::TokenIds> prompts(static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < prompt_len; ++i) prompts[size_t(b)].push_back(int32_t((b * 131 + i * 7 + 1) % vocab));
  return prompts;
}

// The link speed per phase (prefill = true) at which `plan`'s communication takes as long as its
// compute: measured with nothing overlapped and no link model (the header says how).
std::map<bool, double> balanced_gbps(const models::WeightSource& source, const OverlapBenchOptions& o,
                                     const OverlapPlan& plan, const std::vector<models::TokenIds>& prompts) {
  const double latency_us = o.collectives.link.latency_us;
  collectives::CollectivesOptions copt = o.collectives;
  copt.link = {};
  runtime::ShardOptions shard = o.shard;
  shard.overlap = collectives::Overlap::none;
  collectives::Torus torus(MPI_COMM_WORLD, o.torus);
  collectives::Collectives coll(torus, copt);
  runtime::ShardedModel model(source, coll, plan.plan, o.batch, shard);
  std::map<bool, double> gbps;
  for (bool prefill : o.phases) {
    const Measured m = measure(model, coll, prefill, prompts, o.steps);
    // The step's compute: what the computing thread did not wait, or, on a host with more
    // threads than cores, what the host's cores needed for the step if that is more (there a
    // rank mostly "waits" for the ranks holding the cores, docs/overlap.md).
    const double compute = collectives::spin_allowed() ? m.step - m.exposed
                                                       : std::max(m.step - m.exposed, m.cores_busy);
    const double budget = compute - m.messages * latency_us * 1e-6;
    if (m.bytes <= 0) throw InputError("--balance: plan " + plan.text + " sends nothing in " +
                                       (prefill ? "prefill" : "decode") + " on this torus (allowed: a plan that communicates)");
    if (budget <= 0)
      throw InputError("--balance: --link-latency-us " + std::to_string(latency_us) + " alone costs " +
                       std::to_string(m.messages * latency_us * 1e-3) + " ms per " +
                       (prefill ? "prefill" : "decode") + " step, more than its compute (" +
                       std::to_string(compute * 1e3) + " ms); allowed: a smaller latency");
    gbps[prefill] = m.bytes / budget / 1e9;
    spdlog::info("balance {} {}: compute {:.3f} ms (not waiting {:.3f} ms, cores busy {:.3f} ms), {:.0f} bytes in "
                 "{:.0f} messages per step -> link {:.4f} GB/s",
                 plan.text, prefill ? "prefill" : "decode", compute * 1e3, (m.step - m.exposed) * 1e3,
                 m.cores_busy * 1e3, m.bytes, m.messages, gbps[prefill]);
  }
  return gbps;
}

}  // namespace

int run_overlap_bench(const models::WeightSource& source, const OverlapBenchOptions& o) {
  const models::ModelConfig& cfg = source.config();
  const std::vector<models::TokenIds> prompts = make_prompts(o.batch, o.prompt_len, cfg.vocab);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0 && !o.json)
    std::printf("%-24s %-8s %-13s %9s %10s %10s %10s %10s %7s %8s\n", "plan", "phase", "overlap", "link_gbps",
                "step_ms", "compute_ms", "comm_ms", "exposed_ms", "hidden", "speedup");
  // Per plan, the link speed of each phase (prefill = true): --link-gbps, or --balance's.
  std::map<bool, double> given;
  for (bool prefill : o.phases) given[prefill] = o.collectives.link.gbps;
  std::vector<std::map<bool, double>> gbps;
  for (const OverlapPlan& plan : o.plans) gbps.push_back(o.balance ? balanced_gbps(source, o, plan, prompts) : given);
  // Round after round, every (plan, overlap) is built afresh and timed, so that a slow spell of a
  // shared machine lands on all of them alike; the medians are over every round's steps.
  std::map<std::tuple<size_t, size_t, bool>, Samples> samples;  // (plan, overlap, prefill)
  int ranks = 0;
  std::string torus_shape;
  // One record per (plan, overlap, phase), printed as the last round finishes it.
  auto report = [&](size_t i, size_t k) {
    const runtime::Plan& plan = o.plans[i].plan;
    std::map<bool, double>& link_gbps = gbps[i];
    const std::string& ov = o.overlaps[k];
    for (bool prefill : o.phases) {
      const Measured m = summarize(samples[{i, k, prefill}]);
      // Against --overlap none when it is listed at or before this overlap.
      const auto none = std::find(o.overlaps.begin(), o.overlaps.begin() + long(k) + 1, "none");
      const double speedup =
          none != o.overlaps.begin() + long(k) + 1
              ? summarize(samples[{i, size_t(none - o.overlaps.begin()), prefill}]).step / m.step
              : 0.0;
      if (rank != 0) continue;
      const char* phase = prefill ? "prefill" : "decode";
      nlohmann::json rec = {{"bench", "overlap"}, {"model", cfg.name}, {"plan", plan.str()}, {"phase", phase},
                            {"overlap", ov}, {"ranks", ranks}, {"torus", torus_shape},
                            {"batch", o.batch}, {"prompt_len", o.prompt_len}, {"dtype", o.dtype},
                            {"link_gbps", link_gbps[prefill]}, {"link_latency_us", o.collectives.link.latency_us},
                            {"balanced", o.balance}, {"threads", o.threads}, {"step_s", m.step},
                            {"compute_s", m.step - m.exposed}, {"comm_s", m.comm}, {"exposed_comm_s", m.exposed},
                            {"hidden_frac", hidden_frac(m.comm, m.exposed)}, {"bytes_per_step", m.bytes},
                            {"cores_busy_s", m.cores_busy}, {"link_held_s", m.held},
                            {"repeats", o.steps}, {"rounds", o.rounds}};
      if (speedup > 0) rec["speedup_vs_none"] = speedup;
      if (o.json)
        kernels::emit(rec);
      else
        std::printf("%-24s %-8s %-13s %9.4f %10.3f %10.3f %10.3f %10.3f %6.0f%% %7.2fx\n", plan.str().c_str(), phase,
                    ov.c_str(), link_gbps[prefill], m.step * 1e3, (m.step - m.exposed) * 1e3, m.comm * 1e3,
                    m.exposed * 1e3, hidden_frac(m.comm, m.exposed) * 100, speedup);
      if (!o.per_layer) continue;
      for (const auto& [id, s] : m.sections) {
        const std::string layer = id == CommTimeline::kOther ? "other" : std::to_string(id);
        if (o.json)
          kernels::emit({{"bench", "overlap_layer"}, {"model", cfg.name}, {"plan", plan.str()}, {"phase", phase},
                       {"overlap", ov}, {"ranks", ranks}, {"layer", layer},
                       {"link_gbps", link_gbps[prefill]}, {"wall_s", s.wall_s}, {"compute_s", s.compute_s()},
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
    for (size_t i = 0; i < o.plans.size(); ++i)
      for (size_t k = 0; k < o.overlaps.size(); ++k) {
        runtime::ShardOptions shard = o.shard;
        shard.overlap = collectives::parse_overlap(o.overlaps[k], "--overlaps");
        collectives::Torus torus(MPI_COMM_WORLD, o.torus);
        collectives::Collectives coll(torus, o.collectives);
        ranks = torus.ranks(), torus_shape = torus.shape().str();
        runtime::ShardedModel model(source, coll, o.plans[i].plan, o.batch, shard);
        for (bool prefill : o.phases) {
          coll.set_link({gbps[i][prefill], o.collectives.link.latency_us});
          measure(model, coll, prefill, prompts, o.steps, samples[{i, k, prefill}]);
        }
        if (round == o.rounds - 1) report(i, k);
      }
  return 0;
}

}  // namespace tori::bench
