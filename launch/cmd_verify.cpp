// `tori verify`: runs the sharded model and the single-process reference on the same weights and
// prompts and reports, per plan and block, the largest logits error over prefill (every position)
// and every decode step, whether the greedy tokens match, and the traffic each layer sent.
// The sharded model is fed the reference's tokens (teacher forcing) so every step compares the
// same computation. Exit code 1 if any combination misses the tolerance. With --dtype bf16|int8|int4|int4-min
// the reference runs on the weights rounded the same way (models/rounded_weights.hpp), so the
// error measured is the sharding's (and the kernels' activation rounding), not quantisation's.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "collectives/collectives.hpp"
#include "kernels/backend.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/run_config.hpp"
#include "launch/defaults.hpp"
#include "launch/plan_choice.hpp"
#include "launch/sharded_run.hpp"
#include "models/context_window.hpp"
#include "models/prompts.hpp"
#include "models/reference_model.hpp"
#include "models/rounded_weights.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/tsvd_checkpoint.hpp"
#include "models/synthetic_weights.hpp"
#include "runtime/generator.hpp"
#include "runtime/placement.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::launch {

namespace {

// f32 sharded vs f64-accumulating reference: the layouts only reorder f32 sums (split matmuls,
// partial sums added across ranks), which moves logits by ~1e-6 relative; 1e-4 leaves two orders
// of magnitude of headroom and still catches any misplaced shard (errors of order 1).
constexpr double kF32RelTol = 1e-4;
// bf16 (--matmul onednn): the reference has the same bf16-rounded weights, but oneDNN's bf16
// matmul also rounds its input activations to bf16 (relative error up to 2^-9 ~ 2e-3 per element,
// kernels/matmul.cpp) where the reference keeps them f32; over the layers that moves the logits by
// ~1e-2 relative (measured 7.9e-3..9.2e-3 on llama-tiny, 4 ranks, all 28 plans). 5e-2 leaves 5x
// headroom and still catches a misplaced shard (order-1 errors).
constexpr double kBf16RelTol = 5e-2;
// int8: the reference has the same q·scale weights (whole-column scales), and the small-batch s8
// kernel keeps activations f32, so M <= 32 differs only in summation order, as f32 (measured
// 1.4e-6 with --matmul openblas). But oneDNN's path for M > 32 rows (prefill) feeds the activations
// to a bf16 GEMM, as bf16 does (measured 6.9e-3 on llama-tiny, every weight-stationary plan), so
// the default is bf16's.
constexpr double kInt8RelTol = kBf16RelTol;
// int4, int4_min: the reference has the same 4-bit values (kernels/quantize.hpp, group-local, so
// every layout's shards hold the same groups), but the kernel multiplies the activations as
// integers, per row and group of 32 rounded to 1/64516 of the group's largest |x|
// (kernels/gemm_s4_f32.hpp), where the reference keeps them f32. Measured: 8.6e-5..1.2e-4 on the
// tiny presets (all plans, 1, 4 and 8 ranks), 3.4e-3 on SmolLM2-135M (30 layers; its activation
// outliers set the groups' amax, so small elements keep fewer bits), the same at 1 and 2 ranks.
// 1e-2 leaves 3x headroom there and still catches a misplaced shard or group (order-1 errors).
constexpr double kInt4RelTol = 1e-2;

struct VerifyOptions {
  std::string model = kDefaultModel;
  unsigned long long seed = kDefaultSeed;
  std::string torus;
  std::string plan = "all";
  std::string block = "model";
  std::string prompts = kDefaultPrompts;
  int max_new = 4;
  std::string dtype = "f32";
  double tolerance = -1;  // < 0: the dtype's default
  long long prefill_chunk = runtime::ShardOptions::kDefaultPrefillChunk;
};

struct Errors {
  double abs = 0, rel = 0;
  void add(const kernels::Tensor& got, const float* want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
      num = std::max(num, std::abs(double(got.get(i)) - want[i]));
      den = std::max(den, std::abs(double(want[i])));
    }
    abs = std::max(abs, num);
    rel = std::max(rel, den > 0 ? num / den : num);
  }
};

nlohmann::json traffic_json(const runtime::ShardedModel::LayerTraffic& t) {
  nlohmann::json j = nlohmann::json::object();
  for (collectives::Axis a : collectives::kAxes) {
    uint64_t bytes = 0, msgs = 0;
    for (auto& kind : t) bytes += kind[size_t(a)].bytes, msgs += kind[size_t(a)].messages;
    j[std::string(1, collectives::axis_name(a))] = {{"bytes", bytes}, {"messages", msgs}};
  }
  return j;
}

// Rank 0's tokens [B][n] on every rank. Collective.
std::vector<models::TokenIds> broadcast_tokens(const std::vector<models::TokenIds>& mine, int64_t B, int64_t n) {
  std::vector<int32_t> flat(size_t(B * n));
  for (size_t b = 0; b < mine.size(); ++b) std::copy_n(mine[b].begin(), n, flat.begin() + int64_t(b) * n);
  MPI_Bcast(flat.data(), int(flat.size()), MPI_INT32_T, 0, MPI_COMM_WORLD);
  std::vector<models::TokenIds> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) out[size_t(b)].assign(flat.begin() + b * n, flat.begin() + (b + 1) * n);
  return out;
}

int run_verify(const VerifyOptions& opts, const GlobalOptions& g) {
  VerifyOptions o = opts;
  const kernels::WeightFormat format = kernels::parse_weight_format(o.dtype, "--dtype");
  if (o.tolerance < 0)
    o.tolerance = format == kernels::WeightFormat::bf16 ? kBf16RelTol
                  : format == kernels::WeightFormat::int8 ? kInt8RelTol
                  : kernels::is_int4(format)             ? kInt4RelTol
                                                          : kF32RelTol;
  auto source = models::open_model(o.model, o.seed);
  const models::ModelConfig base = source->config();
  // Weights of their own (not synthetic from the config): an HF, GGUF or TSVD checkpoint.
  const bool checkpoint = dynamic_cast<const models::SyntheticWeights*>(source.get()) == nullptr;
  auto prompts = models::parse_prompt_tokens(o.prompts, base.vocab, "--prompt-tokens");
  const int64_t B = static_cast<int64_t>(prompts.size());
  if (o.max_new < 1) throw InputError("--max-new-tokens must be >= 1, got " + std::to_string(o.max_new));
  std::vector<models::Block> blocks;
  if (o.block == "model") blocks = {base.block};
  else if (o.block == "parallel") blocks = {models::Block::parallel};
  else if (o.block == "serial") blocks = {models::Block::serial};
  else if (o.block == "all") blocks = {models::Block::parallel, models::Block::serial};
  else throw InputError("--block: '" + o.block + "' (allowed: model, parallel, serial, all)");
  if (base.post_norms && std::count(blocks.begin(), blocks.end(), models::Block::parallel))
    throw InputError("--block " + o.block + ": model '" + base.name +
                     "' has post-attention and post-FFN norms (post_norms), which need the serial block (allowed: model, serial)");
  if (checkpoint && o.block != "model")
    throw InputError("--block " + o.block + ": a checkpoint's block type is fixed (allowed with a checkpoint: model)");

  ShardedRun env(o.torus, g);
  env.shard.format = format;
  check_prefill_chunk(o.prefill_chunk);
  env.shard.prefill_chunk = o.prefill_chunk;
  const collectives::Torus& torus = env.torus;

  std::vector<runtime::Plan> plans;
  if (o.plan == "all") {
    auto phases = runtime::valid_phase_plans(base, torus.shape(), B);
    if (phases.empty())
      throw InputError("no layout fits model '" + base.name + "' with batch " + std::to_string(B) + " on torus " +
                       torus.shape().str());
    // Every layout in each phase, with the same layout in both phases (cache written in place) and
    // with the next one for decode (prefill hands its cache over to another placement).
    for (size_t k = 0; k < phases.size(); ++k) {
      plans.push_back({phases[k], phases[k]});
      if (phases.size() > 1) plans.push_back({phases[k], phases[(k + 1) % phases.size()]});
    }
  } else {
    int64_t longest = 0;
    for (const auto& p : prompts) longest = std::max<int64_t>(longest, int64_t(p.size()));
    plans.push_back(resolve_plan(o.plan, "--plan",
                                 {base, torus.shape(), B, longest, o.max_new, format, o.prefill_chunk,
                                  runtime::run_pricing(*source, format)},
                                 g));
  }
  spdlog::info("verify: model {}, torus {}, batch {}, {} plan(s) x {} block(s), attention kernel {}", base.name,
               torus.shape().str(), B, plans.size(), blocks.size(), g.attention_kernel);

  int failures = 0;
  for (models::Block block : blocks) {
    models::ModelConfig cfg = base;
    cfg.block = block;
    std::unique_ptr<models::WeightSource> synthetic;
    if (!checkpoint) synthetic = std::make_unique<models::SyntheticWeights>(cfg, o.seed);
    const models::WeightSource& weights = checkpoint ? *source : *synthetic;
    // The reference runs on rank 0 alone (the model whole, and every position's logits: Gemma 3
    // at 609 positions holds 1.1 GB of f32 weights and 0.64 GB of logits), the others waiting
    // asleep; they need only its tokens, which teacher-force the decode steps. Rank 0 compares, and
    // its verdict is every rank's.
    models::GreedyResult ref;
    if (g.rank == 0) {
      const models::RoundedWeights rounded(weights, format);
      models::ReferenceModel ref_model(rounded);
      ref = models::greedy_generate(ref_model, prompts, o.max_new);
    }
    barrier_asleep(MPI_COMM_WORLD);
    ref.generated = broadcast_tokens(ref.generated, B, o.max_new);
    const int64_t V = cfg.vocab;
    // The caches hold what the run reaches (as generate's), not the model's whole context.
    const models::ContextWindow window(weights, runtime::positions_needed(prompts, o.max_new));
    for (const runtime::Plan& plan : plans) {
      runtime::ShardedModel model(window, *env.coll, plan, B, env.shard);
      Errors err;
      bool tokens_match = true;
      auto pre = model.prefill(prompts, true);
      for (int64_t b = 0; b < B && g.rank == 0; ++b) {
        err.add(pre[size_t(b)], ref.prefill_logits[size_t(b)].data<float>(), ref.prefill_logits[size_t(b)].numel());
        const int64_t last = pre[size_t(b)].size(0) - 1;
        tokens_match &= models::argmax(pre[size_t(b)].data<float>() + last * V, V) == ref.generated[size_t(b)][0];
      }
      pre.clear();
      for (int s = 1; s < o.max_new; ++s) {
        models::TokenIds fed;
        for (auto& gen : ref.generated) fed.push_back(gen[size_t(s - 1)]);
        kernels::Tensor lg = model.decode(fed);
        if (g.rank != 0) continue;
        err.add(lg, ref.decode_logits[size_t(s - 1)].data<float>(), lg.numel());
        for (int64_t b = 0; b < B; ++b)
          tokens_match &= models::argmax(lg.data<float>() + b * V, V) == ref.generated[size_t(b)][size_t(s)];
      }
      int verdict = err.rel <= o.tolerance && tokens_match;  // rank 0's
      MPI_Bcast(&verdict, 1, MPI_INT, 0, MPI_COMM_WORLD);
      const bool pass = verdict != 0;
      failures += !pass;
      if (g.rank != 0) continue;
      if (g.json) {
        kernels::emit({{"bench", "verify"},
                     {"plan", plan.str()},
                     {"block", models::to_string(block)},
                     {"attn", plan.decode.str().substr(plan.decode.str().find('/') + 1)},
                     {"model", cfg.name},
                     {"ranks", torus.ranks()},
                     {"torus", torus.shape().str()},
                     {"dtype", o.dtype},
                     {"overlap", g.overlap},
                     {"attention_kernel", g.attention_kernel},
                     {"prefill_chunk", o.prefill_chunk},
                     {"batch", B},
                     {"new_tokens", o.max_new},
                     {"max_abs_err", err.abs},
                     {"max_rel_err", err.rel},
                     {"tolerance", o.tolerance},
                     {"tokens_match", tokens_match},
                     {"pass", pass},
                     {"weight_bytes_rank0", model.weight_bytes()},
                     {"kv_cache_bytes_rank0", model.cache_bytes()},
                     {"prefill_layer_traffic_rank0", traffic_json(model.layer_traffic(true))},
                     {"decode_layer_traffic_rank0", traffic_json(model.layer_traffic(false))}});
      } else {
        auto t = [&](bool prefill) {
          uint64_t b = 0;
          for (auto& kind : model.layer_traffic(prefill))
            for (auto& ax : kind) b += ax.bytes;
          return b;
        };
        std::printf("%-4s %-8s %-52s abs %.2e rel %.2e tokens %-5s  layer traffic prefill %8llu B decode %6llu B\n",
                    pass ? "ok" : "FAIL", models::to_string(block).c_str(), plan.str().c_str(), err.abs, err.rel,
                    tokens_match ? "match" : "DIFF", (unsigned long long)t(true), (unsigned long long)t(false));
      }
    }
  }
  if (g.rank == 0 && !g.json)
    std::printf("%s: %zu combination(s), %d failed (tolerance: relative logits error <= %.0e and equal greedy tokens)\n",
                failures ? "FAILED" : "PASSED", plans.size() * blocks.size(), failures, o.tolerance);
  return failures ? 1 : 0;
}

}  // namespace

void add_verify_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* app = parent.add_subcommand(
      "verify", "run the sharded model and the reference on the same weights and compare logits and tokens");
  app->add_option("--model", o->model, "preset name, model YAML file or Hugging Face checkpoint directory")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the synthetic weights")->capture_default_str();
  app->add_option("--torus", o->torus, "torus shape XxYxZ (default: auto from the rank count)");
  app->add_option("--plan", o->plan,
                  "a plan (e.g. prefill=wg_xyz/batch:xyz,decode=ws2d/batch:xyz), 'default', 'auto' (cost model "
                  "on the local profile) or 'all': every layout valid for the torus in each phase")
      ->capture_default_str();
  app->add_option("--block", o->block, "model|parallel|serial|all: the block type(s) to verify")->capture_default_str();
  app->add_option("--prompt-tokens", o->prompts, "prompts as token ids: \"1,2,3;4,5\" (batch = their count)")
      ->capture_default_str();
  app->add_option("--max-new-tokens", o->max_new, "tokens per prompt (prefill + decode steps)")->capture_default_str();
  app->add_option("--dtype", o->dtype,
                  "weight format f32|bf16|int8|int4|int4-min; the reference runs on the weights rounded the same way")
      ->capture_default_str();
  add_prefill_chunk_flag(*app, o->prefill_chunk);
  app->add_option("--tolerance", o->tolerance,
                  "largest allowed relative logits error (default: 1e-4 for f32, 5e-2 for bf16 and int8, 1e-2 for int4 and int4-min)")
      ->check(non_negative());
  out.push_back({app, [o](const GlobalOptions& g) { return run_verify(*o, g); }});
}

}  // namespace tori::launch
