#include "launch/plan_choice.hpp"

#include <mpi.h>

#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "kernels/error.hpp"
#include "launch/sharded_run.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/generator.hpp"
#include "planning/hardware_profile.hpp"
#include "planning/planner.hpp"
#include "planning/spawn.hpp"
#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

planning::HardwareProfile local_profile(const GlobalOptions& g) {
  return planning::with_link_model(planning::load_hardware_profile("local"), g.link_gbps, g.link_latency_us);
}

void bcast_string(std::string& s) {
  unsigned long long n = s.size();
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  s.resize(size_t(n));
  if (n > 0) MPI_Bcast(s.data(), int(n), MPI_CHAR, 0, MPI_COMM_WORLD);
}

// The `local` profile for --plan auto, the same on every rank: rank 0 loads it, first running
// `tori calibrate` (a process of its own, outside this job, about a minute) when this machine has none,
// while the other ranks wait asleep so as not to load the cores it measures; then sends it to all
// as YAML (ranks on other hosts need no profile of their own). Collective.
// $TORI_AUTO_CALIBRATE says how: full (unset or empty: `tori calibrate`), quick (`--quick`, a few
// seconds, noisier) or off (no calibration: the job stops with one error line instead).
planning::HardwareProfile local_profile_calibrating(const GlobalOptions& g, const std::string& flag) {
  const std::string path = planning::local_profile_path();
  std::string text, error;
  if (g.rank == 0) {
    const char* how_env = std::getenv("TORI_AUTO_CALIBRATE");
    const std::string how = how_env && *how_env ? how_env : "full";
    if (how != "full" && how != "quick" && how != "off")
      error = flag + " auto: $TORI_AUTO_CALIBRATE is '" + how + "' (allowed: full, quick, off)";
    else if (!std::filesystem::is_regular_file(path) && how == "off")
      error = flag + " auto: this machine has no local hardware profile (" + path +
              ") and $TORI_AUTO_CALIBRATE=off: run `tori calibrate` first (or set $TORI_PROFILE_DIR to where one is)";
    else if (!std::filesystem::is_regular_file(path)) {
      // On every core: mpirun may have bound this rank to one, and a child inherits the binding
      // (OpenMP sizes its idle spinning from it when it loads, before tori could widen it: the
      // threads would then share one core, and their contention would be fitted as overhead).
      const std::string cmd = "taskset -c 0-" + std::to_string(runtime::cores_on_host() - 1) + " " +
                              planning::self_exe() + " --matmul " + g.matmul + " --collectives " + g.collectives +
                              " calibrate" + (how == "quick" ? " --quick" : "");
      spdlog::info("{} auto: this machine has no local hardware profile ({}) yet: calibrating it once, {} (`{}`)",
                   flag, path, how == "quick" ? "a few seconds" : "about a minute", cmd);
      const std::string out = planning::run_capture(cmd);
      if (!std::filesystem::is_regular_file(path))
        error = flag + " auto: no local hardware profile, and `" + cmd + "` did not write " + path +
                " (set $TORI_PROFILE_DIR to a writable directory); its output:\n" + out;
      else
        spdlog::info("{} auto: wrote {}", flag, path);
    }
    if (error.empty()) {
      try {
        text = planning::hardware_profile_yaml(planning::load_hardware_profile("local"), "rank 0's local profile");
      } catch (const InputError& e) {
        std::string why = e.what();
        if (why.starts_with("--hardware: ")) why = why.substr(12);
        error = flag + " auto: " + why;
      }
    }
  }
  barrier_asleep(MPI_COMM_WORLD);
  bcast_string(error);
  if (!error.empty()) throw InputError(error);
  bcast_string(text);
  return planning::with_link_model(planning::parse_hardware_profile(text, path), g.link_gbps, g.link_latency_us);
}

planning::RankResources resources(const GlobalOptions& g) {
  return {g.threads_applied, runtime::ranks_on_host(MPI_COMM_WORLD)};
}

}  // namespace

runtime::Plan resolve_plan(const std::string& text, const std::string& flag, const PlanContext& ctx,
                           const GlobalOptions& g) {
  if (text == "default") return runtime::default_plan(ctx.config, ctx.shape, ctx.batch);
  if (text != "auto") return runtime::parse_plan(text, flag);
  const planning::HardwareProfile hw = local_profile_calibrating(g, flag);
  planning::PlannerQuery q;
  q.config = ctx.config;
  q.shape = ctx.shape;
  q.batch = ctx.batch;
  q.prompt_len = ctx.prompt_len;
  q.gen_len = ctx.gen_len;
  static_assert(PlanContext{}.prefill_chunk == runtime::ShardOptions::kDefaultPrefillChunk);
  q.prefill_chunk = ctx.prefill_chunk;  // as this run chunks its prefill
  q.weights = ctx.weights;
  q.tsvd = ctx.tsvd;
  q.resources = resources(g);
  q.overlapped = g.overlap != "none";
  const planning::PlannerChoice c = planning::choose_plan(q, hw);
  spdlog::info("{} (profile {}, {} thread(s) per rank, prefill chunk {} tokens over the batch)", c.why(3), hw.name,
               q.resources.threads, q.prefill_chunk);
  return c.plan;
}

std::optional<planning::Utilisation> measured_utilisation(const PlanContext& ctx, const runtime::Plan& plan,
                                                         bool prefill, int64_t cached, double measured_s,
                                                         const GlobalOptions& g) {
  const planning::RankResources res = resources(g);
  planning::HardwareProfile hw;
  try {
    hw = local_profile(g);
  } catch (const InputError&) {
    return std::nullopt;
  }
  planning::StepQuery q;
  q.config = ctx.config;
  q.shape = ctx.shape;
  q.plan = prefill ? plan.prefill : plan.decode;
  if (prefill) q.decode_plan = plan.decode;
  q.prefill = prefill;
  q.batch = ctx.batch;
  q.tokens = prefill ? ctx.prompt_len : 1;
  q.cached = cached;
  q.weights = ctx.weights;
  q.tsvd = ctx.tsvd;
  return planning::utilisation(planning::predict_step(q), measured_s, hw, ctx.weights, ctx.shape.ranks(), res);
}

}  // namespace tori::launch
