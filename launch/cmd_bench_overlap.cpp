// `tori bench overlap`: how much communication the looped collective einsums hide. Runs a model's
// prefill and decode steps in a plan with --overlap none, looped and looped-bidir (under the link
// model given by --link-gbps / --link-latency-us, which makes a shared-memory box communicate like
// a network), and prints per (plan, phase, overlap) the median step time and where it went:
//   comm_s          time collectives ran per step (incl. the link model's hold), slowest rank
//   exposed_comm_s  time the computing thread waited on them per step, slowest rank
//   compute_s       step_s - exposed_comm_s
//   hidden_frac     1 - exposed / comm: the share of communication hidden behind compute
#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/record.hpp"
#include "collectives/collective_matmul.hpp"
#include "launch/command.hpp"
#include "launch/plan_choice.hpp"
#include "launch/sharded_run.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/prompts.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::launch {

namespace {

struct OverlapOptions {
  std::string model = "llama-tiny";
  unsigned long long seed = 1234;
  std::string torus;
  std::vector<std::string> plans = {"ws2d/heads", "wg_xyz/batch:xyz"};
  std::vector<std::string> overlaps = {"none", "looped", "looped-bidir"};
  int batch = 8;
  int prompt_len = 32;
  int steps = 8;
  std::string dtype = "f32";  // weights
};

int run_overlap(const OverlapOptions& o, const GlobalOptions& g) {
  auto source = models::open_model(o.model, o.seed);
  const auto& cfg = source->config();
  std::vector<models::TokenIds> prompts(static_cast<size_t>(o.batch));
  for (int b = 0; b < o.batch; ++b)
    for (int i = 0; i < o.prompt_len; ++i) prompts[size_t(b)].push_back(int32_t((b * 131 + i * 7 + 1) % cfg.vocab));
  if (g.rank == 0 && !g.json)
    std::printf("%-32s %-8s %-13s %10s %10s %10s %10s %7s\n", "plan", "phase", "overlap", "step_ms", "compute_ms",
                "comm_ms", "exposed_ms", "hidden");
  for (const std::string& plan_text : o.plans) {
    for (const std::string& ov : o.overlaps) {
      GlobalOptions go = g;
      go.overlap = ov;
      ShardedRun env(o.torus, go);
      runtime::Plan plan = resolve_plan(plan_text, "--plans",
                                        {cfg, env.torus.shape(), o.batch, o.prompt_len, o.steps,
                                         kernels::parse_weight_format(o.dtype, "--dtype")},
                                        go);
      env.shard.format = kernels::parse_weight_format(o.dtype, "--dtype");
      runtime::ShardedModel model(*source, *env.coll, plan, o.batch, env.shard);
      auto& tl = env.coll->timeline();
      for (bool prefill : {true, false}) {
        std::vector<double> step, comm, exposed;
        for (int r = 0; r < o.steps + 1; ++r) {  // the first run is a warm-up
          if (prefill || r == 0) model.reset(), model.prefill(prompts);
          MPI_Barrier(MPI_COMM_WORLD);
          tl.reset();
          const double t0 = bench::now_s();
          if (prefill) {
            model.reset();
            model.prefill(prompts);
          } else {
            model.decode(models::TokenIds(size_t(o.batch), 1));
          }
          const double dt = bench::now_s() - t0;
          if (r == 0) continue;
          step.push_back(max_over_ranks(dt));
          comm.push_back(max_over_ranks(tl.busy_s.load()));
          exposed.push_back(max_over_ranks(tl.exposed_s.load()));
        }
        const double s = bench::median(step), c = bench::median(comm), e = bench::median(exposed);
        const double hidden = c > 0 ? std::clamp(1.0 - e / c, 0.0, 1.0) : 0.0;
        if (g.rank != 0) continue;
        if (g.json)
          bench::emit({{"bench", "overlap"}, {"model", cfg.name}, {"plan", plan.str()},
                       {"phase", prefill ? "prefill" : "decode"}, {"overlap", ov}, {"ranks", env.torus.ranks()},
                       {"torus", env.torus.shape().str()}, {"batch", o.batch}, {"prompt_len", o.prompt_len},
                       {"dtype", o.dtype}, {"link_gbps", g.link_gbps}, {"link_latency_us", g.link_latency_us},
                       {"step_s", s},
                       {"compute_s", s - e}, {"comm_s", c}, {"exposed_comm_s", e}, {"hidden_frac", hidden},
                       {"repeats", o.steps}});
        else
          std::printf("%-32s %-8s %-13s %10.3f %10.3f %10.3f %10.3f %6.0f%%\n", plan_text.c_str(),
                      prefill ? "prefill" : "decode", ov.c_str(), s * 1e3, (s - e) * 1e3, c * 1e3, e * 1e3,
                      hidden * 100);
      }
    }
  }
  return 0;
}

}  // namespace

void add_bench_overlap_command(CLI::App& bench, Commands& out) {
  auto o = std::make_shared<OverlapOptions>();
  CLI::App* app = bench.add_subcommand(
      "overlap", "communication hidden by the looped collective einsums, per plan and phase (use --link-gbps)");
  app->add_option("--model", o->model, "preset, model YAML or checkpoint")->capture_default_str();
  app->add_option("--torus", o->torus, "torus shape XxYxZ (default: auto)");
  app->add_option("--plans", o->plans, "plans to measure (or auto, default)")->delimiter(',')->capture_default_str();
  app->add_option("--overlaps", o->overlaps, "none,looped,looped-bidir")->delimiter(',')->capture_default_str();
  app->add_option("--batch", o->batch, "sequences")->capture_default_str();
  app->add_option("--prompt-len", o->prompt_len, "prefill tokens per sequence")->capture_default_str();
  app->add_option("--repeats", o->steps, "timed steps per phase (median reported)")->capture_default_str();
  app->add_option("--dtype", o->dtype, "weight format: f32|bf16|int8")->capture_default_str();
  out.push_back({app, [o](const GlobalOptions& g) { return run_overlap(*o, g); }});
}

}  // namespace tori::launch
