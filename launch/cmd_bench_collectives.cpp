// `tori bench collectives`: collective latency and bandwidth over the torus (run under mpirun).
// See bench/collectives_bench.hpp for what is measured and how.
#include <mpi.h>

#include <memory>

#include "bench/collectives_bench.hpp"
#include "launch/command.hpp"

namespace tori::launch {

void add_bench_collectives_command(CLI::App& bench, Commands& out) {
  auto opt = std::make_shared<bench::CollectivesBenchOptions>();
  CLI::App* app = bench.add_subcommand(
      "collectives", "all_gather/reduce_scatter/all_reduce/all_to_all/ppermute: time and GB/s per "
                     "algorithm, axis set and size (run under mpirun)");
  app->add_option("--torus", opt->torus, "torus shape XxYxZ (default: auto from the rank count)");
  app->add_option("--sizes", opt->sizes, "per-rank sizes, e.g. 1MiB,16MiB (default: the sweep)")
      ->delimiter(',');
  app->add_option("--min-size", opt->min_size, "sweep start")->capture_default_str();
  app->add_option("--max-size", opt->max_size, "sweep end")->capture_default_str();
  app->add_option("--factor", opt->factor, "sweep step factor")->capture_default_str();
  app->add_option("--ops", opt->ops,
                  "all_gather,reduce_scatter,all_reduce,all_to_all,ppermute (default: all)")
      ->delimiter(',');
  app->add_option("--algos", opt->algos, "mpi,ring,bidir (default: all)")->delimiter(',');
  app->add_option("--axes", opt->axes,
                  "axis sets, e.g. x,yz,xyz (default: every set with >1 rank, one per group)")
      ->delimiter(',');
  app->add_option("--dtype", opt->dtype, "f32|bf16")->capture_default_str();
  app->add_option("--repeats", opt->repeats, "timed repeats per figure (default: auto, 5..50)");
  app->add_option("--warmup", opt->warmup, "untimed runs first")->capture_default_str();
  app->add_option("--chunk-bytes", opt->chunk_bytes, "ring reduction piece (default 256 KiB)");
  app->add_option("--message-bytes", opt->message_bytes,
                  "ring data-movement message size (default 0: whole transfers)");
  out.push_back({app, [opt](const GlobalOptions& g) {
                   opt->json = g.json;
                   opt->threads = g.threads_applied;
                   opt->link = {g.link_gbps, g.link_latency_us};
                   return bench::run_collectives_bench(*opt, MPI_COMM_WORLD);
                 }});
}

}  // namespace tori::launch
