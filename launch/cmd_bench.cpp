// `tori bench ...`: the benchmark group. Each benchmark registers itself as a sub-subcommand.
#include "launch/command.hpp"

namespace tori::launch {

void add_bench_commands(CLI::App& parent, Commands& out) {
  CLI::App* bench = parent.add_subcommand("bench", "benchmarks (JSON lines with --json)");
  bench->require_subcommand(1);
  add_bench_kernels_command(*bench, out);
  add_bench_collectives_command(*bench, out);
  add_bench_overlap_command(*bench, out);
  add_bench_sweep_command(*bench, out);
  add_bench_model_command(*bench, out);
}

}  // namespace tori::launch
