// `tori bench sweep`: measured vs predicted step times over chips × batch × plan × phase, run from
// one process that starts mpirun per chip count (bench/sweep.hpp). bench/plot turns the output
// into PNGs.
#include <memory>

#include "bench/sweep.hpp"
#include "kernels/error.hpp"
#include "kernels/packed_weight.hpp"
#include "launch/command.hpp"

namespace tori::launch {

void add_bench_sweep_command(CLI::App& bench, Commands& out) {
  auto o = std::make_shared<bench::SweepOptions>();
  CLI::App* app = bench.add_subcommand(
      "sweep", "measured vs predicted (cost model, local profile) step time over chips x batch x plan x phase; "
               "run on one process, it starts mpirun itself");
  app->add_option("--model", o->model, "preset, model YAML or checkpoint")->capture_default_str();
  app->add_option("--chips", o->chips, "chip (rank) counts")->delimiter(',')->capture_default_str();
  app->add_option("--batches", o->batches, "batch sizes")->delimiter(',')->capture_default_str();
  app->add_option("--dtypes", o->dtypes, "weight formats, comma-separated, of: " + std::string(kernels::kWeightFormatNames))->delimiter(',')->capture_default_str();
  app->add_option("--plans", o->plans, "phase plans to measure (default: every plan valid at each point)")
      ->delimiter(',');
  app->add_option("--prompt-len", o->prompt_len, "prefill tokens per sequence")->capture_default_str();
  app->add_option("--repeats", o->repeats, "timed steps per phase (median)")->capture_default_str();
  app->add_option("--rounds", o->rounds, "times each point's plans are timed in turn (median over all)")
      ->capture_default_str();
  app->add_option("--refine-rounds", o->refine_rounds,
                  "where the auto plan measured slower than its fastest rival, time the two again head to head "
                  "with this many rounds (0: never)")
      ->capture_default_str();
  app->add_option("--refine-above", o->refine_above,
                  "refine when auto's measured time exceeds its rival's by more than this factor")
      ->capture_default_str();
  app->add_option("--hardware", o->hardware, "profile the predictions use")->capture_default_str();
  app->add_option("--out", o->out, "write <out>.jsonl and <out>.csv");
  app->add_option("--mpirun", o->mpirun, "mpirun to start the ranks with")->capture_default_str();
  out.push_back({app, [o](const GlobalOptions& g) {
                   if (g.world_size != 1)
                     throw InputError("bench sweep: run it on one process, not under mpirun (it starts mpirun itself)");
                   bench::SweepOptions s = *o;
                   s.collectives = g.collectives;
                   s.overlap = g.overlap;
                   s.matmul = g.matmul;
                   s.link_gbps = g.link_gbps;
                   s.link_latency_us = g.link_latency_us;
                   s.json = g.json;
                   bench::run_sweep(s);
                   return 0;
                 }});
}

}  // namespace tori::launch
