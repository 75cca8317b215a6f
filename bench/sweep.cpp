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

#include "bench/record.hpp"
#include "bench/spawn.hpp"
#include "kernels/error.hpp"
#include "models/hf_checkpoint.hpp"
#include "runtime/placement.hpp"
#include "runtime/planner.hpp"
#include "runtime/threads.hpp"

namespace tori::bench {

namespace {

// The columns of the CSV, in order (every record has them).
const std::vector<std::string> kColumns = {
    "model",           "chips",          "torus",        "threads",     "batch",      "dtype",       "prompt_len",
    "phase",           "plan",           "overlap",      "link_gbps",   "measured_s", "predicted_s",
    "rel_err",         "pred_compute_s", "pred_memory_s", "pred_comm_s", "pred_overhead_s", "comm_s",
    "exposed_comm_s",  "comm_share",     "tokens_per_s", "mfu",         "mbu",        "auto",
    "fastest",         "peak_gflops_per_chip", "gbps_per_chip"};

std::string csv_cell(const nlohmann::json& v) {
  if (!v.is_string()) return v.dump();
  std::string s(1, '"');
  s += v.get<std::string>();
  s += '"';
  return s;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

}  // namespace

nlohmann::json SweepSummary::to_json() const {
  return {{"bench", "sweep_summary"},          {"points", points},
          {"records", records},                {"median_abs_rel_err", median_abs_rel_err},
          {"auto_within_10pct", auto_within_10pct}, {"worst_auto_over_fastest", worst_auto_ratio}};
}

SweepSummary run_sweep(const SweepOptions& o) {
  const auto source = models::open_model(o.model, 1234);
  const models::ModelConfig cfg = source->config();
  const runtime::HardwareProfile hw =
      runtime::with_link_model(runtime::load_hardware_profile(o.hardware), o.link_gbps, o.link_latency_us);
  const int cores = runtime::cores_on_host();
  if (o.repeats < 1) throw InputError("--repeats must be >= 1, got " + std::to_string(o.repeats));
  if (o.rounds < 1) throw InputError("--rounds must be >= 1, got " + std::to_string(o.rounds));
  if (o.prompt_len < 1) throw InputError("--prompt-len must be >= 1, got " + std::to_string(o.prompt_len));

  std::ofstream jsonl, csv;
  if (!o.out.empty()) {
    jsonl.open(o.out + ".jsonl");
    csv.open(o.out + ".csv");
    if (!jsonl || !csv) throw InputError("--out: cannot write '" + o.out + ".jsonl' / '.csv'");
    csv << join(kColumns, ',') << "\n";
  }
  std::vector<double> abs_err;
  SweepSummary sum;
  size_t auto_ok = 0, auto_n = 0;
  const double t_start = now_s();
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
              runtime::StepQuery sq;
              sq.config = cfg, sq.shape = shape, sq.plan = p, sq.prefill = prefill, sq.batch = batch;
              if (prefill) sq.decode_plan = p;
              sq.tokens = prefill ? o.prompt_len : 1;
              sq.cached = prefill ? 0 : o.prompt_len;
              const runtime::Work w = runtime::predict_step(sq).step;
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
        std::vector<std::string> plan_texts;
        for (const auto& p : plans) plan_texts.push_back(p.str());
        std::ostringstream cmd;
        cmd << mpirun_self(o.mpirun, n) << " --threads " << threads << " --json --collectives " << o.collectives << " --overlap " << o.overlap << " --matmul "
            << o.matmul;
        if (o.link_gbps > 0) cmd << " --link-gbps " << o.link_gbps << " --link-latency-us " << o.link_latency_us;
        cmd << " bench overlap --model " << o.model << " --torus " << shape.str() << " --plans "
            << join(plan_texts, ',')
            << " --overlaps " << o.overlap << " --batch " << batch << " --dtype " << dtype << " --prompt-len "
            << o.prompt_len << " --repeats " << o.repeats << " --rounds " << o.rounds;
        std::fprintf(stderr, "[sweep %.0fs] %d chip(s), batch %d, %s: %zu plan(s) ...\n", now_s() - t_start, n, batch,
                     dtype.c_str(), plans.size());
        const std::string out = run_capture(cmd.str());
        // (plan, phase) -> measured record
        std::map<std::pair<std::string, std::string>, nlohmann::json> got;
        for (const auto& j : json_records(out, "overlap"))
          got[{j["plan"].get<std::string>(), j["phase"].get<std::string>()}] = j;
        if (got.size() != 2 * plans.size())
          throw Error("bench sweep: `" + cmd.str() + "` gave " + std::to_string(got.size()) + " of " +
                      std::to_string(2 * plans.size()) + " records; its output:\n" + out);
        ++sum.points;

        runtime::PlannerQuery pq;
        pq.config = cfg;
        pq.shape = shape;
        pq.batch = batch;
        pq.prompt_len = o.prompt_len;
        pq.weights = wf;
        pq.resources = {threads, n};
        pq.overlapped = o.overlap != "none";
        for (bool prefill : {true, false}) {
          const std::string phase = prefill ? "prefill" : "decode";
          const int64_t cached = prefill ? 0 : o.prompt_len + (o.repeats + 1) / 2;
          std::vector<nlohmann::json> recs;
          size_t best_pred = 0, best_meas = 0;
          for (size_t i = 0; i < plans.size(); ++i) {
            const runtime::PlanCandidate c = runtime::price_phase(pq, hw, plans[i], prefill, nullptr, cached);
            runtime::StepQuery sq;  // the same step, for MFU/MBU's model FLOPs and bytes
            sq.config = cfg, sq.shape = shape, sq.plan = plans[i], sq.prefill = prefill, sq.batch = batch;
            if (prefill) sq.decode_plan = plans[i];
            sq.tokens = prefill ? o.prompt_len : 1;
            sq.cached = cached;
            sq.weights = wf;
            const runtime::StepCost cost = runtime::predict_step(sq);
            const auto it = got.find({runtime::Plan{plans[i], plans[i]}.str(), phase});
            if (it == got.end())
              throw Error("bench sweep: no " + phase + " record for plan " + plans[i].str() + ": " + out);
            const nlohmann::json& m = it->second;
            const double meas = m["step_s"].get<double>();
            const runtime::Utilisation u =
                runtime::utilisation(cost, meas, hw, wf, n, pq.resources);
            const double comm = m["comm_s"].get<double>(), exposed = m["exposed_comm_s"].get<double>();
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
                            {"measured_s", meas},
                            {"predicted_s", c.objective},
                            {"rel_err", (c.objective - meas) / meas},
                            {"pred_compute_s", c.time.compute_s},
                            {"pred_memory_s", c.time.memory_s},
                            {"pred_comm_s", c.time.comm_s},
                            {"pred_overhead_s", c.time.overhead_s},
                            {"comm_s", comm},
                            {"exposed_comm_s", exposed},
                            {"comm_share", meas > 0 ? exposed / meas : 0.0},
                            {"tokens_per_s", double(cost.tokens) / meas},
                            {"mfu", u.mfu},
                            {"mbu", u.mbu},
                            {"auto", false},
                            {"fastest", false},
                            {"peak_gflops_per_chip", c.time.peak_flops * 1e-9},
                            {"gbps_per_chip", c.time.bandwidth * 1e-9}});
            if (c.objective < recs[best_pred]["predicted_s"].get<double>()) best_pred = i;
            if (meas < recs[best_meas]["measured_s"].get<double>()) best_meas = i;
            abs_err.push_back(std::abs(c.objective - meas) / meas);
          }
          recs[best_pred]["auto"] = true;
          recs[best_meas]["fastest"] = true;
          const double ratio =
              recs[best_pred]["measured_s"].get<double>() / recs[best_meas]["measured_s"].get<double>();
          sum.worst_auto_ratio = std::max(sum.worst_auto_ratio, ratio);
          auto_ok += ratio <= 1.10;
          ++auto_n;
          std::fprintf(stderr, "[sweep %.0fs]   %s: auto %s %.3f ms, fastest %s %.3f ms (x%.2f)\n", now_s() - t_start,
                       phase.c_str(), plans[best_pred].str().c_str(), recs[best_pred]["measured_s"].get<double>() * 1e3,
                       plans[best_meas].str().c_str(), recs[best_meas]["measured_s"].get<double>() * 1e3, ratio);
          for (const auto& r : recs) {
            ++sum.records;
            if (o.json) emit(r);
            if (jsonl) jsonl << r.dump() << "\n";
            if (csv) {
              std::vector<std::string> cells;
              for (const auto& k : kColumns) cells.push_back(csv_cell(r[k]));
              csv << join(cells, ',') << "\n";
            }
          }
        }
      }
    }
  }
  sum.median_abs_rel_err = abs_err.empty() ? 0 : median(abs_err);
  sum.auto_within_10pct = auto_n ? double(auto_ok) / double(auto_n) : 0;
  if (o.json) emit(sum.to_json());
  if (jsonl) jsonl << sum.to_json().dump() << "\n";
  std::fprintf(stderr,
               "[sweep %.0fs] %zu points, %zu records: median |predicted - measured|/measured = %.1f%%; auto within "
               "10%% of the fastest at %.0f%% of (point, phase), worst x%.2f\n",
               now_s() - t_start, sum.points, sum.records, 100 * sum.median_abs_rel_err, 100 * sum.auto_within_10pct,
               sum.worst_auto_ratio);
  return sum;
}

}  // namespace tori::bench
