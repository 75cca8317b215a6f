// `tori plan`: ranks every valid phase plan for a model on N chips of a hardware profile by the
// cost model's predicted step latency (planning/cost_model.hpp, planning/step_time.hpp). Pure
// arithmetic: no MPI, no weights. Prefill: L = --prompt-len, T = 0. Decode: L = 1, T = prompt-len +
// gen-len/2 (the mean context over the generated tokens). Memory per chip counts weights and the KV
// cache at prompt-len + gen-len tokens. With a calibrated CPU profile (--hardware local, written by
// `tori calibrate`) each chip is a rank of this host with cores/chips threads (step_time.hpp).
// Prefill in chunks (--prefill-chunk; auto: per plan the longest whose memory fits): memory counts
// the chunk's activations (runtime::activation_bytes), time the sum of the chunks' steps.
// --max-context: per attention layout (decode FFN ws2d when valid), the longest context whose KV
// cache fits in --kv-mem-frac of the profile's memory.
// --explain PLAN|top: per phase, where the step time goes for the chosen plan beside PLAN
// (planning/explain.hpp).
// --model a TSVD checkpoint directory (tori compress): its source model's config, and the
// factored weights priced as a run of --dtype multiplies them (runtime::run_pricing: FLOPs and
// bytes 1/ratio of dense per kind, weight gathers of factors, the small-batch kernel at M <= 16);
// a header line says so. Reads the checkpoint's header and tsvd.json, no factors. --pareto: the latency-cost frontier over --chips x --batches
// (planning/pareto.hpp), written as OUT.json and OUT.csv; bench/plot-frontier draws OUT.png.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "models/config.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/tsvd_checkpoint.hpp"
#include "planning/cost_model.hpp"
#include "planning/hardware_profile.hpp"
#include "planning/explain.hpp"
#include "planning/pareto.hpp"
#include "planning/plan_table.hpp"
#include "planning/planner.hpp"
#include "runtime/factored_weights.hpp"
#include "runtime/placement.hpp"
#include "planning/step_time.hpp"
#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

struct PlanOptions {
  std::string model = "palm-540b";
  std::string hardware = "tpu-v4";
  std::string chips = "64";  // a list with --pareto
  bool pareto = false;
  std::string batches = "1,2,4,8,16,32,64,128,256,512,1024";  // --pareto
  std::string out = "pareto";                                  // --pareto: OUT.json, OUT.csv
  std::string explain;                                         // --explain PLAN|top
  int64_t batch = 512, prompt_len = 2048, gen_len = 64;
  std::string dtype = "bf16";
  bool max_context = false;
  double kv_mem_frac = 0.3;
  std::string prefill_chunk = "auto";  // tokens per prefill step over the batch, 0 = none, auto
};

// A prefill chunk (tokens over the batch) from --prefill-chunk: -1 for auto.
int64_t parse_chunk(const std::string& v) {
  if (v == "auto") return -1;
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  throw InputError("--prefill-chunk: '" + v + "' (allowed: auto, or tokens per prefill step over the batch >= 0; 0 = none)");
}

constexpr double kGB = 1e9;

// A calibrated CPU profile (`local`) prices ranks of this host: `chips` ranks sharing its cores.
planning::RankResources resources_for(const planning::HardwareProfile& hw, int chips) {
  return hw.cpu.empty() ? planning::RankResources{}
                        : planning::RankResources{std::max(1, runtime::cores_on_host() / chips), chips};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f.flush()) throw InputError("--out: cannot write '" + path + "'");
}

// --pareto: the sweep over --chips and --batches (planning/pareto.hpp), written as OUT.json and
// OUT.csv; the frontier printed (bench/plot-frontier draws the PNG from OUT.json).
int run_pareto(const PlanOptions& o, const planning::PlanTableQuery& base, const planning::HardwareProfile& hw,
               const GlobalOptions& g) {
  planning::SweepQuery sq{.base = base, .batches = planning::parse_count_list(o.batches, "--batches")};
  for (int64_t n : planning::parse_count_list(o.chips, "--chips")) sq.chips.push_back(int(n));
  if (!hw.cpu.empty() && sq.chips.size() > 1)
    throw InputError("--pareto --chips: one chip count with a calibrated CPU profile ('" + hw.name +
                     "': its ranks share this host's cores), got '" + o.chips + "'");
  sq.base.resources = resources_for(hw, sq.chips.front());
  const std::vector<planning::FrontierPoint> points = planning::sweep_frontier(sq, hw);
  if (points.empty())
    throw InputError("--pareto: no plan of model '" + base.config.name + "' fits on " + o.chips + " chips of " +
                     hw.name + " at any batch of " + o.batches);
  write_file(o.out + ".json", planning::frontier_json(sq, hw, points));
  write_file(o.out + ".csv", planning::frontier_csv(points));
  for (bool prefill : {true, false}) {
    if (!g.json)
      std::printf("%s frontier, %s %s on %s (%s):\n%6s %6s %-16s %11s %13s %7s %6s\n", prefill ? "prefill" : "decode",
                  base.config.name.c_str(), o.dtype.c_str(), hw.name.c_str(),
                  prefill ? ("prompt " + std::to_string(base.prompt_len)).c_str()
                          : ("context " + std::to_string(base.prompt_len + base.gen_len / 2)).c_str(),
                  "chips", "batch", "plan", "latency_s", "chip-s/token", "MFU", "chunk");
    for (const planning::FrontierPoint& p : points) {
      if (p.prefill != prefill || !p.frontier) continue;
      if (g.json)
        kernels::emit({{"bench", "plan_pareto"}, {"phase", prefill ? "prefill" : "decode"}, {"chips", p.chips},
                       {"batch", p.batch}, {"plan", p.best.plan.str()}, {"latency_s", p.best.time.overlap_s},
                       {"cost_chip_s_per_token", p.best.time.cost_overlap}, {"mfu", p.best.time.mfu_overlap}});
      else
        std::printf("%6d %6lld %-16s %11.4g %13.4g %6.1f%% %6lld\n", p.chips, (long long)p.batch,
                    p.best.plan.str().c_str(), p.best.time.overlap_s, p.best.time.cost_overlap,
                    100 * p.best.time.mfu_overlap, (long long)p.best.chunk);
    }
    if (!g.json) std::printf("\n");
  }
  if (!g.json) std::printf("wrote %s.json and %s.csv (%zu points; bench/plot-frontier %s.json --out DIR draws them)\n",
                           o.out.c_str(), o.out.c_str(), points.size(), o.out.c_str());
  return 0;
}

// --explain PLAN|top: per phase, where the step time goes for the chosen (fastest fitting) plan
// beside PLAN's phase plan (or the next two fitting plans), part by part (planning/explain.hpp).
int explain(const planning::PlanTableQuery& q, const planning::HardwareProfile& hw, const std::string& what,
            const GlobalOptions& g) {
  std::optional<runtime::Plan> asked;
  if (what != "top") asked = runtime::parse_plan(what, "--explain");
  for (bool prefill : {true, false}) {
    const char* phase = prefill ? "prefill" : "decode";
    const std::vector<planning::PlanRow> rows = planning::rank_phase_plans(q, hw, prefill);
    std::vector<planning::PlanRow> shown;
    for (const auto& r : rows)
      if (r.fits && shown.empty()) shown.push_back(r);
    if (shown.empty()) shown.push_back(rows.front());  // none fits: the fastest, marked as not fitting
    if (asked) {
      const runtime::PhasePlan p = prefill ? asked->prefill : asked->decode;
      runtime::validate_phase(q.config, q.shape, p, q.batch, std::string("--explain ") + phase);
      if (!(p == shown.front().plan)) shown.push_back(planning::price_plan_row(q, hw, p, prefill));
    } else {
      for (const auto& r : rows)
        if (r.fits && shown.size() < 3 && !(r.plan == shown.front().plan)) shown.push_back(r);
    }
    // The parts, in the order of the first plan's, then any the others add.
    std::vector<std::vector<planning::TimePart>> parts;
    std::vector<std::string> names;
    for (const auto& r : shown) {
      parts.push_back(planning::time_parts(r.time));
      for (const auto& part : parts.back())
        if (std::find(names.begin(), names.end(), part.name) == names.end()) names.push_back(part.name);
    }
    auto find = [](const std::vector<planning::TimePart>& v, const std::string& n) {
      for (const auto& p : v)
        if (p.name == n) return p;
      return planning::TimePart{n, 0, 0};
    };
    if (g.json) {
      for (size_t i = 0; i < shown.size(); ++i) {
        nlohmann::json j = {{"bench", "plan_explain"}, {"phase", phase}, {"plan", shown[i].plan.str()},
                            {"chosen", i == 0}, {"fits", shown[i].fits}, {"latency_s", shown[i].time.overlap_s},
                            {"mfu", shown[i].time.mfu_overlap}, {"chunk_tokens_per_seq", shown[i].chunk}};
        for (const auto& part : parts[i]) j["parts"][part.name] = {{"alone_s", part.alone_s}, {"exposed_s", part.exposed_s}};
        kernels::emit(j);
      }
      continue;
    }
    std::printf("%s on %d x %s (torus %s), %s, batch %lld: where the time goes (alone / exposed on the critical "
                "path, share of the step)\n%-18s", phase, q.shape.ranks(), hw.name.c_str(), q.shape.str().c_str(),
                q.config.name.c_str(), (long long)q.batch, "");
    for (size_t i = 0; i < shown.size(); ++i)
      std::printf(" | %-31s", (shown[i].plan.str() + (i == 0 ? " (chosen)" : shown[i].fits ? "" : " (no fit)")).c_str());
    std::printf("\n");
    for (const auto& n : names) {
      std::printf("%-18s", n.c_str());
      for (size_t i = 0; i < shown.size(); ++i) {
        const planning::TimePart p = find(parts[i], n);
        std::printf(" | %10.4g %10.4g %7.1f%% ", p.alone_s, p.exposed_s, 100 * p.exposed_s / shown[i].time.overlap_s);
      }
      std::printf("\n");
    }
    auto line = [&](const char* label, auto value, const char* fmt) {
      std::printf("%-18s", label);
      for (const auto& r : shown) std::printf(fmt, value(r));
      std::printf("\n");
    };
    line("step time s", [](const planning::PlanRow& r) { return r.time.overlap_s; }, " | %21.4g  100.0%% ");
    line("MFU %", [](const planning::PlanRow& r) { return 100 * r.time.mfu_overlap; }, " | %30.1f ");
    line("chip-s/token", [](const planning::PlanRow& r) { return r.time.cost_overlap; }, " | %30.4g ");
    line("memory GB", [](const planning::PlanRow& r) { return r.memory.total() / kGB; }, " | %30.2f ");
    if (prefill) line("chunk tokens/seq", [](const planning::PlanRow& r) { return double(r.chunk); }, " | %30.0f ");
    std::printf("\n");
  }
  return 0;
}

// The line saying how a TSVD checkpoint is priced: density per kind, tile, factor format.
std::string tsvd_line(const std::string& dir, const std::optional<runtime::TsvdPricing>& p, kernels::WeightFormat wf) {
  std::string s = "TSVD checkpoint " + dir + ": ";
  if (!p)
    return s + "--dtype " + std::string(kernels::weight_format_name(wf)) +
           " runs the product U·V as dense weights (factors run at f32, bf16, and int8 when stored int8): priced dense";
  s += "factored weights priced at their numbers per dense element (";
  bool first = true;
  for (const auto& [kind, d] : p->density) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.3f", first ? "" : ", ", kind.c_str(), d);
    s += buf;
    first = false;
  }
  return s + "), tile " + std::to_string(p->tile.rows) + "x" + std::to_string(p->tile.cols) + ", " +
         (wf == kernels::WeightFormat::int8 ? "int8" : std::string(kernels::weight_format_name(wf))) +
         " factors; dense kinds and the embedding priced dense";
}

int run_plan(const PlanOptions& o, const GlobalOptions& g) {
  if (g.rank != 0) return 0;
  const kernels::WeightFormat wf = kernels::parse_weight_format(o.dtype, "--dtype");
  // Any model (a preset or YAML: its config; a checkpoint: its header; a TSVD checkpoint: also its
  // factors' ranks), no weights read.
  const std::unique_ptr<models::WeightSource> src = models::open_model(o.model, kDefaultSeed);
  const models::ModelConfig c = src->config();
  const bool compressed = models::is_tsvd_checkpoint(o.model);
  const std::optional<runtime::TsvdPricing> tsvd = runtime::run_pricing(*src, wf);
  const planning::HardwareProfile hw = planning::load_hardware_profile(o.hardware);
  const std::vector<int64_t> chip_list = planning::parse_count_list(o.chips, "--chips");
  if (chip_list.size() > 1 && !o.pareto)
    throw InputError("--chips: a list ('" + o.chips + "') needs --pareto; give one chip count");
  if (o.pareto && (o.max_context || !o.explain.empty()))
    throw InputError("--pareto: not with --max-context or --explain (one at a time)");
  if (o.max_context && !o.explain.empty()) throw InputError("--explain: not with --max-context (one at a time)");
  const int chips = int(chip_list.front());
  if (o.batch < 1) throw InputError("--batch must be >= 1, got " + std::to_string(o.batch));
  if (o.prompt_len < 1) throw InputError("--prompt-len must be >= 1, got " + std::to_string(o.prompt_len));
  if (o.gen_len < 0) throw InputError("--gen-len must be >= 0, got " + std::to_string(o.gen_len));
  if (!(o.kv_mem_frac > 0 && o.kv_mem_frac <= 1))
    throw InputError("--kv-mem-frac must be in (0, 1], got " + std::to_string(o.kv_mem_frac));
  const int64_t chunk_flag = parse_chunk(o.prefill_chunk);
  if (compressed) {
    if (g.json)
      kernels::emit({{"bench", "plan_tsvd"}, {"model", o.model}, {"factored", tsvd.has_value()},
                     {"density", tsvd ? nlohmann::json(tsvd->density) : nlohmann::json()}});
    else
      std::printf("%s\n\n", tsvd_line(o.model, tsvd, wf).c_str());
  }
  if (o.pareto) {
    planning::PlanTableQuery base{.config = c, .prompt_len = o.prompt_len, .gen_len = o.gen_len, .weights = wf,
                                  .prefill_chunk = chunk_flag};
    base.tsvd = tsvd;
    return run_pareto(o, base, hw, g);
  }
  const collectives::TorusShape shape = collectives::auto_torus_shape(chips);
  const auto plans = runtime::valid_phase_plans(c, shape, o.batch);
  if (plans.empty()) {
    // Let the placement say why (the ws2d/heads plan's first failing constraint).
    runtime::validate_phase(c, shape, runtime::parse_phase_plan("ws2d/heads", "--plan"), o.batch, "every");
    throw InputError("no plan runs model '" + c.name + "' on " + std::to_string(chips) + " chips (torus " +
                     shape.str() + ") with batch " + std::to_string(o.batch));
  }
  const int64_t kv_bytes = wf == kernels::WeightFormat::f32 ? 4 : 2;
  const planning::RankResources res = resources_for(hw, chips);

  if (o.max_context) {
    const double budget = o.kv_mem_frac * hw.hbm_bytes;
    for (const char* a : {"heads", "batch:z", "batch:yz", "batch:xyz"}) {
      runtime::PhasePlan p = runtime::parse_phase_plan(std::string("ws2d/") + a, "--plan");
      try {
        runtime::validate_phase(c, shape, p, o.batch, "decode");
      } catch (const InputError&) {
        continue;
      }
      const int64_t ctx = planning::max_context(c, shape, p, o.batch, budget, kv_bytes);
      if (g.json)
        kernels::emit({{"bench", "plan"}, {"attn", a}, {"batch", o.batch}, {"max_context", ctx}, {"chips", chips}});
      else if (ctx == planning::kUnboundedContext)
        std::printf("attention %-10s batch %lld: max context unbounded (every layer keeps a sliding window; KV "
                    "cache within %.0f%% of %.1f GiB)\n", a, (long long)o.batch, o.kv_mem_frac * 100,
                    hw.hbm_bytes / 1073741824.0);
      else
        std::printf("attention %-10s batch %lld: max context %lld tokens (KV cache in %.0f%% of %.1f GiB)\n", a,
                    (long long)o.batch, (long long)ctx, o.kv_mem_frac * 100, hw.hbm_bytes / 1073741824.0);
    }
    return 0;
  }

  // Each phase plan priced and sized as the planner prices it (planning/plan_table.hpp), ranked by
  // the overlapped latency.
  const planning::PlanTableQuery q{.config = c, .shape = shape, .batch = o.batch,
                                   .prompt_len = o.prompt_len, .gen_len = o.gen_len, .weights = wf,
                                   .prefill_chunk = chunk_flag, .resources = res, .tsvd = tsvd};
  if (!o.explain.empty()) return explain(q, hw, o.explain, g);
  for (bool prefill : {true, false}) {
    const std::vector<planning::PlanRow> rows = planning::rank_phase_plans(q, hw, prefill);
    const char* phase = prefill ? "prefill" : "decode";
    if (!g.json)
      std::printf("%s on %d x %s (torus %s), %s, batch %lld, %s:\n%-16s %11s %11s %9s %9s %9s %7s %12s %8s %5s %6s\n",
                  phase, chips, hw.name.c_str(), shape.str().c_str(), c.name.c_str(), (long long)o.batch,
                  prefill ? ("prompt " + std::to_string(o.prompt_len)).c_str()
                          : ("context " + std::to_string(o.prompt_len + o.gen_len / 2)).c_str(),
                  "plan", "latency_s", "serial_s", "compute_s", "memory_s", "comm_s", "MFU", "chip-s/token",
                  "mem_GB", "fits", "chunk");
    for (const planning::PlanRow& r : rows) {
      const double mem_gb = r.memory.total() / kGB;
      if (g.json)
        kernels::emit({{"bench", "plan"}, {"phase", phase}, {"plan", r.plan.str()}, {"chips", chips},
                     {"torus", shape.str()}, {"batch", o.batch}, {"latency_s", r.time.overlap_s},
                     {"serial_s", r.time.serial_s}, {"compute_s", r.time.compute_s}, {"memory_s", r.time.memory_s},
                     {"comm_s", r.time.comm_s}, {"mfu", r.time.mfu_overlap}, {"cost_chip_s_per_token", r.time.cost_overlap},
                     {"fits", r.fits}, {"mem_per_chip_gb", mem_gb}, {"weights_gb", r.memory.weight_bytes / kGB},
                     {"kv_gb", r.memory.kv_bytes / kGB}, {"activations_gb", r.memory.activation_bytes / kGB},
                     {"chunk_tokens_per_seq", r.chunk}});
      else
        std::printf("%-16s %11.4g %11.4g %9.3g %9.3g %9.3g %6.1f%% %12.4g %8.2f %5s %6lld\n", r.plan.str().c_str(),
                    r.time.overlap_s, r.time.serial_s, r.time.compute_s, r.time.memory_s, r.time.comm_s,
                    100 * r.time.mfu_overlap, r.time.cost_overlap, mem_gb, r.fits ? "yes" : "NO", (long long)r.chunk);
    }
    if (!g.json) std::printf("\n");
  }
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* app = parent.add_subcommand("plan", "rank the layouts of each phase by predicted latency (cost model)");
  app->add_option("--model", o->model,
                  "preset name, model YAML, checkpoint (HF directory, .gguf), or a TSVD checkpoint directory (tori "
                  "compress): its factored weights priced as --dtype runs them")
      ->capture_default_str();
  app->add_option("--hardware", o->hardware, "hardware profile: built-in name or YAML file")->capture_default_str();
  app->add_option("--chips", o->chips,
                  "number of chips (torus: auto_torus_shape); with --pareto a list, e.g. 16,32,64,128")
      ->capture_default_str();
  app->add_flag("--pareto", o->pareto,
                "sweep --chips x --batches for prefill and decode, keep the fastest fitting plan of each point "
                "and write the latency-cost frontier (and MFU) as OUT.json and OUT.csv (PNG: bench/plot-frontier)");
  app->add_option("--batches", o->batches, "--pareto: the batch sizes swept")->capture_default_str();
  app->add_option("--out", o->out, "--pareto: output prefix (OUT.json, OUT.csv)")->capture_default_str();
  app->add_option("--explain", o->explain,
                  "PLAN (a plan, e.g. ws2d/batch:xyz or prefill=...,decode=...) or top: per phase, where the step "
                  "time goes (compute, weights, KV cache, each collective on each axis) for the chosen plan beside "
                  "PLAN (top: the next two fitting plans)");
  app->add_option("--batch", o->batch, "sequences per step")->capture_default_str();
  app->add_option("--prompt-len", o->prompt_len, "prompt tokens per sequence")->capture_default_str();
  app->add_option("--gen-len", o->gen_len, "generated tokens per sequence")->capture_default_str();
  app->add_option("--dtype", o->dtype, "weight dtype: f32|bf16|int8|int4|int4-min (int4 forms priced with int8's compute rate, their own bytes)")->capture_default_str();
  app->add_flag("--max-context", o->max_context, "per attention layout, the longest context whose KV cache fits");
  app->add_option("--prefill-chunk", o->prefill_chunk,
                  "tokens per prefill step over the batch (0 = whole prompts; auto = per plan the longest "
                  "chunk whose memory fits)")
      ->capture_default_str();
  app->add_option("--kv-mem-frac", o->kv_mem_frac, "fraction of chip memory for the KV cache (--max-context)")
      ->capture_default_str();
  out.push_back({app, [o](const GlobalOptions& g) { return run_plan(*o, g); }});
}

}  // namespace tori::launch
