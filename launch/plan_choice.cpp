#include "launch/plan_choice.hpp"

#include <mpi.h>

#include <spdlog/spdlog.h>

#include "kernels/error.hpp"
#include "runtime/generator.hpp"
#include "runtime/hardware_profile.hpp"
#include "runtime/planner.hpp"
#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

runtime::HardwareProfile local_profile(const GlobalOptions& g) {
  return runtime::with_link_model(runtime::load_hardware_profile("local"), g.link_gbps, g.link_latency_us);
}

runtime::RankResources resources(const GlobalOptions& g) {
  return {g.threads_applied, runtime::ranks_on_host(MPI_COMM_WORLD)};
}

}  // namespace

runtime::Plan resolve_plan(const std::string& text, const std::string& flag, const PlanContext& ctx,
                           const GlobalOptions& g) {
  if (text == "default") return runtime::default_plan(ctx.config, ctx.shape, ctx.batch);
  if (text != "auto") return runtime::parse_plan(text, flag);
  runtime::HardwareProfile hw;
  try {
    hw = local_profile(g);
  } catch (const InputError& e) {
    std::string why = e.what();
    if (why.starts_with("--hardware: ")) why = why.substr(12);
    throw InputError(flag + " auto: " + why);
  }
  runtime::PlannerQuery q;
  q.config = ctx.config;
  q.shape = ctx.shape;
  q.batch = ctx.batch;
  q.prompt_len = ctx.prompt_len;
  q.gen_len = ctx.gen_len;
  q.weights = ctx.weights;
  q.resources = resources(g);
  q.overlapped = g.overlap != "none";
  const runtime::PlannerChoice c = runtime::choose_plan(q, hw);
  spdlog::info("{} (profile {}, {} thread(s) per rank)", c.why(3), hw.name, q.resources.threads);
  return c.plan;
}

std::optional<runtime::Utilisation> measured_utilisation(const PlanContext& ctx, const runtime::Plan& plan,
                                                         bool prefill, int64_t cached, double measured_s,
                                                         const GlobalOptions& g) {
  const runtime::RankResources res = resources(g);
  runtime::HardwareProfile hw;
  try {
    hw = local_profile(g);
  } catch (const InputError&) {
    return std::nullopt;
  }
  runtime::StepQuery q;
  q.config = ctx.config;
  q.shape = ctx.shape;
  q.plan = prefill ? plan.prefill : plan.decode;
  if (prefill) q.decode_plan = plan.decode;
  q.prefill = prefill;
  q.batch = ctx.batch;
  q.tokens = prefill ? ctx.prompt_len : 1;
  q.cached = cached;
  q.weights = ctx.weights;
  return runtime::utilisation(runtime::predict_step(q), measured_s, hw, ctx.weights, ctx.shape.ranks(), res);
}

}  // namespace tori::launch
