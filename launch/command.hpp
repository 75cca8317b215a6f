#pragma once
// A `tori` subcommand: its CLI11 app (options bound to state the registering function owns) and
// the function that runs it once parsing succeeded. Each subcommand lives in its own cmd_*.cpp.
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tori::launch {

// Options every subcommand accepts (given before or after the subcommand name).
struct GlobalOptions {
  std::string log_level;  // empty: rank 0 info, others warn
  int threads = 0;        // 0: cores on host / ranks on host
  std::optional<int64_t> sliding_window, sink_tokens;  // --sliding-window / --sink-tokens (empty: the model's)
  bool json = false;      // JSON lines on stdout instead of human text
  std::string matmul = "auto";       // --matmul: onednn|openblas|reference|auto (kernels parse it)
  std::string collectives = "mpi";   // --collectives: mpi|ring|bidir (collectives parse it)
  std::string overlap = "none";      // --overlap: none|looped|looped-bidir
  std::string attention_kernel = "auto";  // --attention-kernel: auto|multigrain|coarse|fine|dense-masked
  double link_gbps = 0;              // --link-gbps: ICI link emulation, GB/s per axis direction (0 = off)
  double link_latency_us = 0;        // --link-latency-us
  std::string ppermute = "shm";      // --ppermute: shm (shared memory between same-host neighbours) | mpi
  double timeout_s = 0;              // --timeout: a collective wait longer than this = a lost peer (0 = automatic)
  int rank = 0;
  int world_size = 1;
  int threads_applied = 1;  // what apply_threads() settled on
};

// A CLI11 check that a number is >= 0 (CLI::NonNegativeNumber's message prints DBL_MAX in full).
inline CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        double v = 0;
        return CLI::detail::lexical_cast(s, v) && v >= 0 ? "" : "must be a number >= 0, got " + s;
      },
      "NUMBER >= 0", "non_negative");
}

struct Command {
  CLI::App* app = nullptr;
  std::function<int(const GlobalOptions&)> run;
};

using Commands = std::vector<Command>;

// Registration functions, one per cmd_*.cpp. `parent` is the tori app (or the `bench` group).
void add_reference_command(CLI::App& parent, Commands& out);
void add_dump_weights_command(CLI::App& parent, Commands& out);
void add_presets_command(CLI::App& parent, Commands& out);
void add_plan_command(CLI::App& parent, Commands& out);
void add_verify_command(CLI::App& parent, Commands& out);
void add_generate_command(CLI::App& parent, Commands& out);
void add_serve_command(CLI::App& parent, Commands& out);
void add_export_command(CLI::App& parent, Commands& out);
void add_compress_command(CLI::App& parent, Commands& out);
void add_perplexity_command(CLI::App& parent, Commands& out);
void add_bench_commands(CLI::App& parent, Commands& out);       // the `bench` group
void add_bench_kernels_command(CLI::App& bench, Commands& out);  // bench kernels
void add_bench_collectives_command(CLI::App& bench, Commands& out);  // bench collectives
void add_bench_overlap_command(CLI::App& bench, Commands& out);      // bench overlap
void add_bench_sweep_command(CLI::App& bench, Commands& out);        // bench sweep
void add_bench_model_command(CLI::App& bench, Commands& out);        // bench model, bench model-run
void add_calibrate_command(CLI::App& parent, Commands& out);

}  // namespace tori::launch
