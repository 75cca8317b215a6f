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
#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "models/config.hpp"
#include "planning/cost_model.hpp"
#include "planning/hardware_profile.hpp"
#include "planning/planner.hpp"
#include "runtime/placement.hpp"
#include "planning/step_time.hpp"
#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

struct PlanOptions {
  std::string model = "palm-540b";
  std::string hardware = "tpu-v4";
  int chips = 64;
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

int run_plan(const PlanOptions& o, const GlobalOptions& g) {
  if (g.rank != 0) return 0;
  const models::ModelConfig c = models::load_model_config(o.model);
  const planning::HardwareProfile hw = planning::load_hardware_profile(o.hardware);
  const kernels::WeightFormat wf = kernels::parse_weight_format(o.dtype, "--dtype");
  if (o.chips < 1) throw InputError("--chips must be >= 1, got " + std::to_string(o.chips));
  if (o.batch < 1) throw InputError("--batch must be >= 1, got " + std::to_string(o.batch));
  if (o.prompt_len < 1) throw InputError("--prompt-len must be >= 1, got " + std::to_string(o.prompt_len));
  if (o.gen_len < 0) throw InputError("--gen-len must be >= 0, got " + std::to_string(o.gen_len));
  if (!(o.kv_mem_frac > 0 && o.kv_mem_frac <= 1))
    throw InputError("--kv-mem-frac must be in (0, 1], got " + std::to_string(o.kv_mem_frac));
  const collectives::TorusShape shape = collectives::auto_torus_shape(o.chips);
  const auto plans = runtime::valid_phase_plans(c, shape, o.batch);
  if (plans.empty()) {
    // Let the placement say why (the ws2d/heads plan's first failing constraint).
    runtime::validate_phase(c, shape, runtime::parse_phase_plan("ws2d/heads", "--plan"), o.batch, "every");
    throw InputError("no plan runs model '" + c.name + "' on " + std::to_string(o.chips) + " chips (torus " +
                     shape.str() + ") with batch " + std::to_string(o.batch));
  }
  const double act_scale = wf == kernels::WeightFormat::f32 ? 1.0 : 0.5;  // bf16 activations
  const int64_t kv_bytes = wf == kernels::WeightFormat::f32 ? 4 : 2;
  // A calibrated CPU profile (`local`) prices ranks of this host: --chips ranks sharing its cores.
  const planning::RankResources res =
      hw.cpu.empty() ? planning::RankResources{}
                     : planning::RankResources{std::max(1, runtime::cores_on_host() / o.chips), o.chips};

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
        kernels::emit({{"bench", "plan"}, {"attn", a}, {"batch", o.batch}, {"max_context", ctx}, {"chips", o.chips}});
      else
        std::printf("attention %-10s batch %lld: max context %lld tokens (KV cache in %.0f%% of %.1f GiB)\n", a,
                    (long long)o.batch, (long long)ctx, o.kv_mem_frac * 100, hw.hbm_bytes / 1073741824.0);
    }
    return 0;
  }

  // Each phase plan priced as the planner prices it (a prefill keeps its cache in place), ranked by
  // the overlapped latency. Memory in the run's formats: on an accelerator activations at the
  // modelled activation bytes and weights gathered as stored (no plain copies); on the calibrated
  // CPU profile as Tori runs (f32 activations, f32 plain copies gathered).
  const int64_t chunk_flag = parse_chunk(o.prefill_chunk);
  const bool accel = hw.cpu.empty();
  const double act_b = accel ? 4.0 * act_scale : 4.0;
  const double gathered_b = accel ? runtime::weight_element_bytes(wf) : 4.0, plain_b = accel ? 0.0 : 4.0;
  const int64_t context = o.prompt_len + o.gen_len;
  planning::PlannerQuery q{.config = c, .shape = shape, .batch = o.batch, .prompt_len = o.prompt_len,
                           .gen_len = o.gen_len, .weights = wf, .kv_elem_bytes = kv_bytes,
                           .act_scale = act_scale, .resources = res, .overlapped = true};
  auto memory = [&](const runtime::PhasePlan& p, bool prefill, int64_t Lc) {
    const runtime::StepShape step{.batch = o.batch, .tokens = prefill ? Lc : 1, .prompt = o.prompt_len,
                                  .act_bytes = act_b, .gathered_bytes = gathered_b, .placed_copy = !accel};
    return planning::predict_memory(c, shape, p, p, o.batch, context, wf, kv_bytes, prefill ? step : runtime::StepShape{0},
                                    prefill ? runtime::StepShape{0} : step, plain_b);
  };
  // auto: the longest chunk (whole prompts, then halving the tokens per sequence) that fits.
  auto chunk_for = [&](const runtime::PhasePlan& p) -> int64_t {
    if (chunk_flag >= 0) return planning::chunk_tokens(chunk_flag, o.batch, o.prompt_len);
    int64_t Lc = o.prompt_len;
    while (Lc > 1 && memory(p, true, Lc).total() > hw.hbm_bytes) Lc = (Lc + 1) / 2;
    return Lc;
  };
  for (bool prefill : {true, false}) {
    struct Row {
      runtime::PhasePlan plan;
      planning::StepTime t;
      planning::MemoryCost mem;
      int64_t chunk = 0;  // tokens per sequence of a prefill step
    };
    std::vector<Row> rows;
    for (const auto& p : plans) {
      const int64_t Lc = prefill ? chunk_for(p) : 1;
      q.prefill_chunk = Lc * o.batch;
      rows.push_back({p, planning::price_phase(q, hw, p, prefill).time, memory(p, prefill, Lc), Lc});
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.t.overlap_s < b.t.overlap_s; });
    const char* phase = prefill ? "prefill" : "decode";
    if (!g.json)
      std::printf("%s on %d x %s (torus %s), %s, batch %lld, %s:\n%-16s %11s %11s %9s %9s %9s %7s %12s %8s %5s %6s\n",
                  phase, o.chips, hw.name.c_str(), shape.str().c_str(), c.name.c_str(), (long long)o.batch,
                  prefill ? ("prompt " + std::to_string(o.prompt_len)).c_str()
                          : ("context " + std::to_string(o.prompt_len + o.gen_len / 2)).c_str(),
                  "plan", "latency_s", "serial_s", "compute_s", "memory_s", "comm_s", "MFU", "chip-s/token",
                  "mem_GB", "fits", "chunk");
    for (const Row& r : rows) {
      const double mem_gb = r.mem.total() / kGB;
      const bool fits = r.mem.total() <= hw.hbm_bytes;
      if (g.json)
        kernels::emit({{"bench", "plan"}, {"phase", phase}, {"plan", r.plan.str()}, {"chips", o.chips},
                     {"torus", shape.str()}, {"batch", o.batch}, {"latency_s", r.t.overlap_s},
                     {"serial_s", r.t.serial_s}, {"compute_s", r.t.compute_s}, {"memory_s", r.t.memory_s},
                     {"comm_s", r.t.comm_s}, {"mfu", r.t.mfu_overlap}, {"cost_chip_s_per_token", r.t.cost_overlap},
                     {"fits", fits}, {"mem_per_chip_gb", mem_gb}, {"weights_gb", r.mem.weight_bytes / kGB},
                     {"kv_gb", r.mem.kv_bytes / kGB}, {"activations_gb", r.mem.activation_bytes / kGB},
                     {"chunk_tokens_per_seq", r.chunk}});
      else
        std::printf("%-16s %11.4g %11.4g %9.3g %9.3g %9.3g %6.1f%% %12.4g %8.2f %5s %6lld\n", r.plan.str().c_str(),
                    r.t.overlap_s, r.t.serial_s, r.t.compute_s, r.t.memory_s, r.t.comm_s, 100 * r.t.mfu_overlap,
                    r.t.cost_overlap, mem_gb, fits ? "yes" : "NO", (long long)r.chunk);
    }
    if (!g.json) std::printf("\n");
  }
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* app = parent.add_subcommand("plan", "rank the layouts of each phase by predicted latency (cost model)");
  app->add_option("--model", o->model, "preset name or model YAML")->capture_default_str();
  app->add_option("--hardware", o->hardware, "hardware profile: built-in name or YAML file")->capture_default_str();
  app->add_option("--chips", o->chips, "number of chips (torus: auto_torus_shape)")->capture_default_str();
  app->add_option("--batch", o->batch, "sequences per step")->capture_default_str();
  app->add_option("--prompt-len", o->prompt_len, "prompt tokens per sequence")->capture_default_str();
  app->add_option("--gen-len", o->gen_len, "generated tokens per sequence")->capture_default_str();
  app->add_option("--dtype", o->dtype, "weight dtype: f32|bf16|int8")->capture_default_str();
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
