#include "bench/sweep.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <spdlog/spdlog.h>

#include "bench/csv.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "models/hf_checkpoint.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/placement.hpp"
#include "planning/planner.hpp"
#include "planning/spawn.hpp"
#include "runtime/threads.hpp"

namespace tori::bench {

namespace {

// The columns of the CSV, in order (every record has them).
const std::vector<std::string> kColumns = {
    "model",           "chips",          "torus",        "threads",     "batch",      "dtype",       "prompt_len",
    "phase",           "plan",           "overlap",      "link_gbps",   "measured_s", "predicted_s",
    "rel_err",         "pred_compute_s", "pred_memory_s", "pred_comm_s", "pred_overhead_s", "comm_s",
    "exposed_comm_s",  "comm_share",     "tokens_per_s", "mfu",         "mbu",        "auto",
    "fastest",         "refined",        "first_measured_s", "peak_gflops_per_chip", "gbps_per_chip"};

}  // namespace

nlohmann::json SweepSummary::to_json() const {
  return {{"bench", "sweep_summary"},          {"points", points},
          {"records", records},                {"median_abs_rel_err", median_abs_rel_err},
          {"auto_within_10pct", auto_within_10pct}, {"auto_within_10pct_first", auto_within_10pct_first},
          {"refined", refined},                {"worst_auto_over_fastest", worst_auto_ratio}};
}

SweepSummary run_sweep(const SweepOptions& o) {
  // The flags first: a bad value is reported as such, whatever else is missing (a profile, a model).
  if (o.repeats < 1) throw InputError("--repeats must be >= 1, got " + std::to_string(o.repeats));
  if (o.rounds < 1) throw InputError("--rounds must be >= 1, got " + std::to_string(o.rounds));
  if (o.refine_rounds < 0)
    throw InputError("--refine-rounds must be >= 0 (0: no refinement), got " + std::to_string(o.refine_rounds));
  if (!(o.refine_above >= 0))
    throw InputError("--refine-above must be >= 0 (1: refine whenever auto is not the fastest), got " +
                     std::to_string(o.refine_above));
  if (o.prompt_len < 1) throw InputError("--prompt-len must be >= 1, got " + std::to_string(o.prompt_len));
  const auto source = models::open_model(o.model, 1234);
  const models::ModelConfig cfg = source->config();
  const planning::HardwareProfile hw =
      planning::with_link_model(planning::load_hardware_profile(o.hardware), o.link_gbps, o.link_latency_us);
  const int cores = runtime::cores_on_host();

  RecordFiles files(o.out, kColumns);
  std::vector<double> abs_err;
  SweepSummary sum;
  size_t auto_ok = 0, auto_ok_first = 0, auto_n = 0;
  const double t_start = kernels::now_s();
  for (int n : o.chips) {
    if (n < 1) throw InputError("--chips: " + std::to_string(n) + " (allowed: 1 or more)");
    const collectives::TorusShape shape = collectives::auto_torus_shape(n);
    const int threads = std::max(1, cores / n);
    for (int batch : o.batches) {
      for (const std::string& dtype : o.dtypes) {
        const kernels::WeightFormat wf = kernels::parse_weight_format(dtype, "--dtypes");
        if (batch < 1) throw InputError("--batches: " + std::to_string(batch) + " (allowed: 1 or more)");
        std::vector<runtime::PhasePlan> plans;
        if (o.plans.empty()) {
          plans = runtime::valid_phase_plans(cfg, shape, batch);
        } else {
          for (const auto& p : o.plans) {
            runtime::PhasePlan pp = runtime::parse_phase_plan(p, "--plans");
            try {
              runtime::validate_phase(cfg, shape, pp, batch, "sweep");
              plans.push_back(pp);
            } catch (const InputError&) {
            }
          }
        }
        // Plans the cost model cannot tell apart on this torus (same FLOPs, bytes and traffic in both
        // phases: e.g. every batch:* variant on one chip) are measured once, as the first of them.
        {
          std::vector<runtime::PhasePlan> distinct;
          std::vector<std::vector<double>> seen;
          for (const auto& p : plans) {
            std::vector<double> sig;
            for (bool prefill : {true, false}) {
              planning::StepQuery sq;
              sq.config = cfg, sq.shape = shape, sq.plan = p, sq.prefill = prefill, sq.batch = batch;
              if (prefill) sq.decode_plan = p;
              sq.tokens = prefill ? o.prompt_len : 1;
              sq.cached = prefill ? 0 : o.prompt_len;
              const planning::Work w = planning::predict_step(sq).step;
              sig.insert(sig.end(), {w.flops, w.weight_bytes, w.kv_bytes});
              for (const auto& kind : w.traffic)
                for (const auto& t : kind) sig.insert(sig.end(), {double(t.bytes), double(t.messages)});
            }
            if (std::find(seen.begin(), seen.end(), sig) != seen.end()) continue;
            seen.push_back(sig);
            distinct.push_back(p);
          }
          plans = distinct;
        }
        if (plans.empty()) {
          spdlog::warn("bench sweep: no plan runs {} on {} chips at batch {}: skipped", cfg.name, n, batch);
          continue;
        }
        // (plan, phase) -> measured record, from one `bench overlap` launch of these plans and phases.
        const auto measure = [&](const std::vector<runtime::PhasePlan>& which, const std::string& phases,
                                 int rounds) {
          std::vector<std::string> plan_texts;
          for (const auto& p : which) plan_texts.push_back(p.str());
          std::ostringstream cmd;
          cmd << planning::mpirun_self(o.mpirun, n) << " --threads " << threads << " --json --collectives "
              << o.collectives << " --overlap " << o.overlap << " --matmul " << o.matmul;
          if (o.link_gbps > 0) cmd << " --link-gbps " << o.link_gbps << " --link-latency-us " << o.link_latency_us;
          cmd << " bench overlap --model " << o.model << " --torus " << shape.str() << " --plans "
              << join(plan_texts, ',') << " --overlaps " << o.overlap << " --phases " << phases << " --batch "
              << batch << " --dtype " << dtype << " --prompt-len " << o.prompt_len << " --repeats " << o.repeats
              << " --rounds " << rounds;
          const std::string out = planning::run_capture(cmd.str());
          std::map<std::pair<std::string, std::string>, nlohmann::json> got;
          for (const auto& j : planning::json_records(out, "overlap"))
            got[{j["plan"].get<std::string>(), j["phase"].get<std::string>()}] = j;
          const size_t want = which.size() * (phases == "prefill,decode" ? 2 : 1);
          if (got.size() != want)
            throw Error("bench sweep: `" + cmd.str() + "` gave " + std::to_string(got.size()) + " of " +
                        std::to_string(want) + " records; its output:\n" + out);
          return got;
        };
        std::fprintf(stderr, "[sweep %.0fs] %d chip(s), batch %d, %s: %zu plan(s) ...\n", kernels::now_s() - t_start, n,
                     batch, dtype.c_str(), plans.size());
        const auto got = measure(plans, "prefill,decode", o.rounds);
        ++sum.points;

        planning::PlannerQuery pq;
        pq.config = cfg;
        pq.shape = shape;
        pq.batch = batch;
        pq.prompt_len = o.prompt_len;
        pq.prefill_chunk = runtime::ShardOptions::kDefaultPrefillChunk;  // as the runtime runs it
        pq.weights = wf;
        pq.resources = {threads, n};
        pq.overlapped = o.overlap != "none";
        for (bool prefill : {true, false}) {
          const std::string phase = prefill ? "prefill" : "decode";
          const int64_t cached = prefill ? 0 : o.prompt_len + (o.repeats + 1) / 2;
          std::vector<nlohmann::json> recs;
          std::vector<planning::StepCost> costs;
          // The measured fields of record i from bench overlap's record m.
          const auto set_measured = [&](size_t i, const nlohmann::json& m) {
            nlohmann::json& r = recs[i];
            const double meas = m["step_s"].get<double>(), exposed = m["exposed_comm_s"].get<double>();
            const planning::Utilisation u = planning::utilisation(costs[i], meas, hw, wf, n, pq.resources);
            r["measured_s"] = meas;
            r["rel_err"] = (r["predicted_s"].get<double>() - meas) / meas;
            r["comm_s"] = m["comm_s"].get<double>();
            r["exposed_comm_s"] = exposed;
            r["comm_share"] = meas > 0 ? exposed / meas : 0.0;
            r["tokens_per_s"] = double(costs[i].tokens) / meas;
            r["mfu"] = u.mfu;
            r["mbu"] = u.mbu;
          };
          const auto measured = [&](size_t i) { return recs[i]["measured_s"].get<double>(); };
          size_t best_pred = 0;
          for (size_t i = 0; i < plans.size(); ++i) {
            const planning::PlanCandidate c = planning::price_phase(pq, hw, plans[i], prefill, nullptr, cached);
            planning::StepQuery sq;  // the same step, for MFU/MBU's model FLOPs and bytes
            sq.config = cfg, sq.shape = shape, sq.plan = plans[i], sq.prefill = prefill, sq.batch = batch;
            if (prefill) sq.decode_plan = plans[i];
            sq.tokens = prefill ? o.prompt_len : 1;
            sq.cached = cached;
            sq.weights = wf;
            costs.push_back(planning::predict_step(sq));
            const auto it = got.find({runtime::Plan{plans[i], plans[i]}.str(), phase});
            if (it == got.end()) throw Error("bench sweep: no " + phase + " record for plan " + plans[i].str());
            recs.push_back({{"bench", "sweep"},
                            {"model", cfg.name},
                            {"chips", n},
                            {"torus", shape.str()},
                            {"threads", threads},
                            {"batch", batch},
                            {"dtype", dtype},
                            {"prompt_len", o.prompt_len},
                            {"phase", phase},
                            {"plan", plans[i].str()},
                            {"overlap", o.overlap},
                            {"link_gbps", o.link_gbps},
                            {"predicted_s", c.objective},
                            {"pred_compute_s", c.time.compute_s},
                            {"pred_memory_s", c.time.memory_s},
                            {"pred_comm_s", c.time.comm_s},
                            {"pred_overhead_s", c.time.overhead_s},
                            {"auto", false},
                            {"fastest", false},
                            {"refined", false},
                            {"peak_gflops_per_chip", c.time.peak_flops * 1e-9},
                            {"gbps_per_chip", c.time.bandwidth * 1e-9}});
            set_measured(i, it->second);
            recs[i]["first_measured_s"] = measured(i);
            if (c.objective < recs[best_pred]["predicted_s"].get<double>()) best_pred = i;
          }
          // The fastest measured plan other than `skip` (plans.size() when none is skipped).
          const auto fastest_but = [&](size_t skip) {
            size_t best = plans.size();
            for (size_t i = 0; i < plans.size(); ++i)
              if (i != skip && (best == plans.size() || measured(i) < measured(best))) best = i;
            return best;
          };
          size_t best_meas = fastest_but(plans.size());
          const double first_ratio = measured(best_pred) / measured(best_meas);
          // Refinement: the auto plan against its fastest rival, head to head in one launch with more
          // rounds, when auto measured slower than that rival by more than --refine-above.
          const size_t rival = fastest_but(best_pred);
          if (o.refine_rounds > 0 && rival < plans.size() && measured(best_pred) > o.refine_above * measured(rival)) {
            std::fprintf(stderr, "[sweep %.0fs]   %s: auto %s %.3f ms against %s %.3f ms: refining (%d rounds) ...\n",
                         kernels::now_s() - t_start, phase.c_str(), plans[best_pred].str().c_str(),
                         measured(best_pred) * 1e3, plans[rival].str().c_str(), measured(rival) * 1e3, o.refine_rounds);
            const auto again = measure({plans[best_pred], plans[rival]}, phase, o.refine_rounds);
            for (size_t i : {best_pred, rival}) {
              recs[i]["refined"] = true;
              set_measured(i, again.at({runtime::Plan{plans[i], plans[i]}.str(), phase}));
            }
            ++sum.refined;
            best_meas = fastest_but(plans.size());
          }
          for (size_t i = 0; i < plans.size(); ++i)
            abs_err.push_back(std::abs(recs[i]["rel_err"].get<double>()));
          recs[best_pred]["auto"] = true;
          recs[best_meas]["fastest"] = true;
          const double ratio = measured(best_pred) / measured(best_meas);
          sum.worst_auto_ratio = std::max(sum.worst_auto_ratio, ratio);
          auto_ok += ratio <= 1.10;
          auto_ok_first += first_ratio <= 1.10;
          ++auto_n;
          std::fprintf(stderr, "[sweep %.0fs]   %s: auto %s %.3f ms, fastest %s %.3f ms (x%.2f)\n",
                       kernels::now_s() - t_start, phase.c_str(), plans[best_pred].str().c_str(),
                       measured(best_pred) * 1e3, plans[best_meas].str().c_str(), measured(best_meas) * 1e3, ratio);
          for (const auto& r : recs) {
            ++sum.records;
            if (o.json) kernels::emit(r);
            files.write(r);
          }
        }
      }
    }
  }
  sum.median_abs_rel_err = abs_err.empty() ? 0 : kernels::median(abs_err);
  sum.auto_within_10pct = auto_n ? double(auto_ok) / double(auto_n) : 0;
  sum.auto_within_10pct_first = auto_n ? double(auto_ok_first) / double(auto_n) : 0;
  if (o.json) kernels::emit(sum.to_json());
  files.write(sum.to_json(), false);
  std::fprintf(stderr,
               "[sweep %.0fs] %zu points, %zu records: median |predicted - measured|/measured = %.1f%%; auto within "
               "10%% of the fastest at %.0f%% of (point, phase) (%.0f%% before %zu refinement(s)), worst x%.2f\n",
               kernels::now_s() - t_start, sum.points, sum.records, 100 * sum.median_abs_rel_err,
               100 * sum.auto_within_10pct, 100 * sum.auto_within_10pct_first, sum.refined, sum.worst_auto_ratio);
  return sum;
}

}  // namespace tori::bench
