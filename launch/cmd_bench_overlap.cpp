// `tori bench overlap`: how much communication the overlapped layouts hide, per plan, phase and
// overlap (bench/overlap_bench.hpp says what is measured and how). Here: the flags, their checks,
// and the plans resolved (`default`, `auto`: launch/plan_choice.hpp) before bench runs them.
#include <memory>

#include "bench/overlap_bench.hpp"
#include "collectives/collective_matmul.hpp"
#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"
#include "launch/command.hpp"
#include "launch/plan_choice.hpp"
#include "launch/sharded_run.hpp"
#include "models/hf_checkpoint.hpp"

namespace tori::launch {

namespace {

// The flags: launch's own (the model, the plans and phases as given) and the rest bench's.
struct OverlapFlags {
  std::string model = "llama-tiny";
  unsigned long long seed = 1234;
  std::vector<std::string> plans = {"ws2d/heads", "wg_xyz/batch:xyz"};
  std::vector<std::string> phases = {"prefill", "decode"};
  bench::OverlapBenchOptions bench;
};

int run_overlap(const OverlapFlags& f, const GlobalOptions& g) {
  bench::OverlapBenchOptions o = f.bench;
  auto source = models::open_model(f.model, f.seed);
  o.phases.clear();
  for (const std::string& p : f.phases) {
    if (p != "prefill" && p != "decode") throw InputError("--phases: '" + p + "' (allowed: prefill, decode)");
    o.phases.push_back(p == "prefill");
  }
  for (const std::string& ov : o.overlaps) collectives::parse_overlap(ov, "--overlaps");
  if (o.rounds < 1) throw InputError("--rounds: " + std::to_string(o.rounds) + " (allowed: 1 or more)");
  if (o.steps < 1) throw InputError("--repeats: " + std::to_string(o.steps) + " (allowed: 1 or more)");
  o.collectives = collectives_options(g);
  o.shard = shard_options(g);
  o.shard.format = kernels::parse_weight_format(o.dtype, "--dtype");
  o.json = g.json;
  o.threads = g.threads_applied;
  const PlanContext ctx{source->config(), collectives::resolve_torus_shape(o.torus, g.world_size), o.batch,
                        o.prompt_len, o.steps, o.shard.format, runtime::ShardOptions::kDefaultPrefillChunk,
                        runtime::run_pricing(*source, o.shard.format)};
  for (const std::string& text : f.plans) o.plans.push_back({text, resolve_plan(text, "--plans", ctx, g)});
  return bench::run_overlap_bench(*source, o);
}

}  // namespace

void add_bench_overlap_command(CLI::App& bench, Commands& out) {
  auto f = std::make_shared<OverlapFlags>();
  bench::OverlapBenchOptions& o = f->bench;
  CLI::App* app = bench.add_subcommand(
      "overlap", "communication hidden by the overlapped layouts, per plan and phase (--link-gbps or --balance)");
  app->add_option("--model", f->model, "preset, model YAML or checkpoint")->capture_default_str();
  app->add_option("--torus", o.torus, "torus shape XxYxZ (default: auto)");
  app->add_option("--plans", f->plans, "plans to measure (or auto, default)")->delimiter(',')->capture_default_str();
  app->add_option("--overlaps", o.overlaps, "none,looped,looped-bidir (none first gives speedup_vs_none)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--phases", f->phases, "prefill,decode")->delimiter(',')->capture_default_str();
  app->add_option("--batch", o.batch, "sequences")->capture_default_str();
  app->add_option("--prompt-len", o.prompt_len, "prefill tokens per sequence")->capture_default_str();
  app->add_option("--repeats", o.steps, "timed steps per phase (median reported)")->capture_default_str();
  app->add_option("--rounds", o.rounds,
                  "times every (plan, overlap) is rebuilt and timed, in turn; the median is over all rounds' steps")
      ->capture_default_str();
  app->add_option("--dtype", o.dtype, "weight format: f32|bf16|int8|int4|int4-min")->capture_default_str();
  app->add_flag("--balance", o.balance,
                "per plan and phase, set the link speed so that communication takes as long as compute "
                "(measured with --overlap none and no link model; keeps --link-latency-us)");
  app->add_flag("--per-layer", o.per_layer, "also print each layer's compute, communication and exposed time");
  out.push_back({app, [f](const GlobalOptions& g) { return run_overlap(*f, g); }});
}

}  // namespace tori::launch
