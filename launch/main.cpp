// tori: the command-line entry point. Starts MPI (MPI_THREAD_MULTIPLE), parses the subcommand,
// sets up logging and threads, and runs the command under the ExitGuard so that a failure prints
// one clear line (rank 0) and every rank exits non-zero promptly.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "collectives/collective_matmul.hpp"
#include "collectives/request_wait.hpp"
#include "collectives/shm_ring.hpp"
#include "collectives/watchdog.hpp"
#include "kernels/error.hpp"
#include "kernels/heap_policy.hpp"
#include "launch/command.hpp"
#include "models/attention_override.hpp"
#include "launch/exit_guard.hpp"
#include "launch/logging.hpp"
#include "launch/wait_policy.hpp"
#include "runtime/attention_kernel.hpp"
#include "runtime/threads.hpp"

namespace {

// For "tori nosuch" or "tori bench nosuch", CLI11 only says that a subcommand is required: name the
// word it did not know and the commands allowed where it stood.
std::optional<std::string> unknown_command_message(const CLI::App& root) {
  const CLI::App* at = &root;
  std::string path = "tori";
  for (;;) {
    auto chosen = at->get_subcommands();
    if (chosen.empty()) break;
    at = chosen.front();
    path += " " + at->get_name();
  }
  auto all = at->get_subcommands([](const CLI::App*) { return true; });
  if (all.empty()) return std::nullopt;
  std::string allowed;
  for (const auto* c : all) allowed += (allowed.empty() ? "" : ", ") + c->get_name();
  auto rest = at->remaining();
  if (rest.empty()) rest = root.remaining();  // with fallthrough() the word may stay with the root
  if (!rest.empty() && !rest.front().empty() && rest.front()[0] != '-')
    return "unknown command '" + path + " " + rest.front() + "' (allowed: " + allowed + ")";
  return "'" + path + "' needs a command (allowed: " + allowed + ")";
}

}  // namespace

int main(int argc, char** argv) {
  // First: libgomp read its wait policy when it loaded; this re-executes tori once when the host's
  // cores are oversubscribed and the policy must become passive (launch/wait_policy.hpp).
  tori::launch::settle_omp_wait_policy(argc, argv);
  tori::collectives::tighten_timer_slack();  // before any thread starts: they inherit it
  tori::kernels::use_step_heap();  // freed memory kept for reuse by the next step (heap_policy.hpp)
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int code = 0;
  {
    tori::launch::GlobalOptions global;
    MPI_Comm_rank(MPI_COMM_WORLD, &global.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &global.world_size);
    tori::launch::ExitGuard guard(MPI_COMM_WORLD);
    // Hostnames gathered now, so a lost peer is named with its host (collectives/watchdog.hpp).
    tori::collectives::watchdog::start(MPI_COMM_WORLD, [&global](const tori::collectives::watchdog::Verdict& v) {
      tori::launch::report_verdict(v, global.json);
    });
    code = guard.run([&]() -> int {
      CLI::App app{"tori: sharded transformer inference on an MPI torus of CPU ranks"};
      app.require_subcommand(1);
      app.fallthrough();
      app.add_option("--log-level", global.log_level,
                     "trace|debug|info|warn|error|off (default: info on rank 0, warn elsewhere)");
      app.add_option("--threads", global.threads,
                     "compute threads per rank (default, or 0: cores on host / ranks on host); when ranks on the host x "
                     "threads exceed its cores, idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=passive, "
                     "unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set; docs/launching.md)")
          ->check(tori::launch::non_negative());
      app.add_flag("--json", global.json, "print JSON lines on stdout instead of text");
      app.add_option("--matmul", global.matmul, "matmul backend: onednn|openblas|reference|auto")
          ->capture_default_str();
      app.add_option("--collectives", global.collectives, "collective algorithm: mpi|ring|bidir")
          ->capture_default_str();
      app.add_option("--link-gbps", global.link_gbps,
                     "emulate interconnect links of this many GB/s per axis direction (0 = off; see docs/overlap.md)")
          ->check(tori::launch::non_negative());
      app.add_option("--link-latency-us", global.link_latency_us, "emulated link latency per message (µs)")
          ->check(tori::launch::non_negative());
      app.add_option("--ppermute", global.ppermute,
                     "ring neighbour transfers (the looped einsums'): shm (shared memory on one host) | mpi")
          ->capture_default_str();
      app.add_option("--overlap", global.overlap,
                     "layouts' collectives: none (plain) | looped | looped-bidir (looped collective einsum)")
          ->capture_default_str();
      app.add_option("--sliding-window", global.sliding_window,
                     "attend within the W most recent positions on local layers, every layer when the model has "
                     "no global layers (overrides the model's; 0 = none: full causal attention; docs/multigrain.md)");
      app.add_option("--sink-tokens", global.sink_tokens,
                     "local layers also see the first G positions (attention sinks, StreamingLLM; needs a window)");
      app.add_option("--attention-kernel", global.attention_kernel,
                     "kernel of the layers with a sliding window or sinks: auto (causal attention while the window "
                     "covers every position, then multigrain) | multigrain | coarse (padded blocks) | fine "
                     "(fine-grained) | dense-masked (dense under the mask); global layers always run causal "
                     "attention; docs/multigrain.md")
          ->capture_default_str();
      app.add_option("--timeout", global.timeout_s,
                     "seconds a collective may wait for a peer before the run is aborted naming the peer and its "
                     "host (0 = automatic: the larger of 30 s and 10 x the slowest generation step so far)")
          ->check(CLI::NonNegativeNumber);

      tori::launch::Commands commands;
      tori::launch::add_reference_command(app, commands);
      tori::launch::add_dump_weights_command(app, commands);
      tori::launch::add_presets_command(app, commands);
      tori::launch::add_plan_command(app, commands);
      tori::launch::add_calibrate_command(app, commands);
      tori::launch::add_generate_command(app, commands);
      tori::launch::add_serve_command(app, commands);
      tori::launch::add_verify_command(app, commands);
      tori::launch::add_export_command(app, commands);
      tori::launch::add_compress_command(app, commands);
      tori::launch::add_perplexity_command(app, commands);
      tori::launch::add_bench_commands(app, commands);

      try {
        app.parse(argc, argv);
      } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) {  // --help / --version
          if (global.rank == 0) app.exit(e);
          return 0;
        }
        throw tori::InputError(unknown_command_message(app).value_or(std::string(e.what())) +
                               " (run with --help for usage)");
      }
      // Global flags checked before any subcommand prints anything (every rank parses the same).
      tori::collectives::parse_algorithm(global.collectives);
      tori::collectives::parse_overlap(global.overlap, "--overlap");
      tori::collectives::parse_ppermute_transport(global.ppermute, "--ppermute");
      tori::models::set_attention_override({global.sliding_window, global.sink_tokens});
      tori::runtime::parse_attention_kernel(global.attention_kernel, "--attention-kernel");
      tori::launch::setup_logging(global.rank, global.log_level);
      tori::launch::log_omp_wait_policy(global.rank);
      tori::collectives::watchdog::set_timeout(
          std::chrono::milliseconds(static_cast<int64_t>(global.timeout_s * 1000.0 + 0.5)));
      global.threads_applied = tori::runtime::apply_threads(global.threads, MPI_COMM_WORLD);
      for (auto& c : commands)
        if (c.app->parsed() && c.run) return c.run(global);
      throw tori::InputError("no subcommand given (run with --help for the list)");
    });
    tori::collectives::watchdog::barrier_asleep(MPI_COMM_WORLD);
    tori::collectives::watchdog::stop();
  }
  MPI_Finalize();
  return code;
}
