// `tori generate`: sharded greedy generation under mpirun. Each rank builds its shards of the model
// (synthetic weights from a seed), runs prefill then decode in the plan's layouts, and rank 0
// prints the tokens, the per-phase timings and the memory each rank holds. --check-reference also
// runs the single-process reference and says whether it generates the same tokens.
#include <sys/resource.h>

#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/record.hpp"
#include "collectives/collectives.hpp"
#include "kernels/backend.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "models/prompts.hpp"
#include "models/safetensors_writer.hpp"
#include "models/hf_checkpoint.hpp"
#include "runtime/generator.hpp"

namespace tori::launch {

namespace {

struct GenerateOptions {
  std::string model = kDefaultModel;
  unsigned long long seed = kDefaultSeed;
  std::string torus;
  std::string plan = "default";
  std::string prompts = kDefaultPrompts;
  int max_new = kDefaultMaxNewTokens;
  bool check_reference = false;
  std::string logits_out;
};

double max_over_ranks(double v) {
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

int run_generate(const GenerateOptions& o, const GlobalOptions& g) {
  auto source = models::open_model(o.model, o.seed);
  const models::ModelConfig& cfg = source->config();
  auto prompts = models::parse_prompt_tokens(o.prompts, cfg.vocab, "--prompt-tokens");
  const int64_t B = static_cast<int64_t>(prompts.size());
  collectives::Torus torus(MPI_COMM_WORLD, o.torus);
  collectives::CollectivesOptions copt;
  copt.algorithm = collectives::parse_algorithm(g.collectives);
  collectives::Collectives coll(torus, copt);
  runtime::ShardOptions sopt;
  sopt.backend = kernels::parse_matmul_backend(g.matmul);
  runtime::Plan plan = o.plan == "default" ? runtime::default_plan(cfg, torus.shape(), B)
                                           : runtime::parse_plan(o.plan, "--plan");

  const models::WeightSource& weights = *source;
  runtime::ShardedModel model(weights, coll, plan, B, sopt);
  spdlog::info("generate: model {} on {} ranks (torus {}), plan {}, batch {}", cfg.name, torus.ranks(),
               torus.shape().str(), plan.str(), B);
  runtime::Generation gen = runtime::generate_greedy(model, prompts, o.max_new, !o.logits_out.empty());
  if (!o.logits_out.empty() && g.rank == 0) {
    models::NamedTensors out;
    for (size_t s = 0; s < gen.logits.size(); ++s) out.emplace_back("step." + std::to_string(s), gen.logits[s]);
    models::write_safetensors(o.logits_out, out, {{"plan", plan.str()}, {"torus", torus.shape().str()}});
  }
  const double prefill_s = max_over_ranks(gen.prefill_s), decode_s = max_over_ranks(gen.decode_s);
  const double weight_mb = max_over_ranks(double(model.weight_bytes()) / (1 << 20));
  const double cache_mb = max_over_ranks(double(model.cache_bytes()) / (1 << 20));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mb = max_over_ranks(double(ru.ru_maxrss) / 1024.0);

  int matches = -1;
  if (o.check_reference) {
    matches = 0;
    if (g.rank == 0) {
      models::ReferenceModel ref(weights);
      auto r = models::greedy_generate(ref, prompts, o.max_new);
      for (int64_t b = 0; b < B; ++b) matches += r.generated[size_t(b)] == gen.generated[size_t(b)];
    }
    MPI_Bcast(&matches, 1, MPI_INT, 0, MPI_COMM_WORLD);
  }
  int64_t prompt_tokens = 0;
  for (auto& p : prompts) prompt_tokens += static_cast<int64_t>(p.size());
  const double per_step = gen.decode_steps ? decode_s / double(gen.decode_steps) : 0.0;
  if (g.rank == 0) {
    if (g.json) {
      for (int64_t b = 0; b < B; ++b)
        bench::emit({{"bench", "generate"}, {"sequence", b}, {"prompt", prompts[size_t(b)]},
                     {"generated", gen.generated[size_t(b)]}});
      nlohmann::json summary = {{"bench", "generate"},
                                {"model", cfg.name},
                                {"plan", plan.str()},
                                {"ranks", torus.ranks()},
                                {"torus", torus.shape().str()},
                                {"dtype", "f32"},
                                {"batch", B},
                                {"prompt_len", prompt_tokens},
                                {"new_tokens", o.max_new},
                                {"prefill_s", prefill_s},
                                {"decode_s_per_token", per_step},
                                {"tokens_per_s", per_step > 0 ? double(B) / per_step : 0.0},
                                {"weight_mb_per_rank", weight_mb},
                                {"kv_cache_mb_per_rank", cache_mb},
                                {"peak_rss_mb", rss_mb}};
      if (matches >= 0) summary["reference_match"] = matches == B;
      bench::emit(summary);
    } else {
      std::printf("%s on %d ranks (torus %s), plan %s, f32, batch %lld\n", cfg.name.c_str(), torus.ranks(),
                  torus.shape().str().c_str(), plan.str().c_str(), (long long)B);
      std::printf("per rank: weights %.2f MiB, KV cache %.2f MiB, peak RSS %.1f MiB\n", weight_mb, cache_mb, rss_mb);
      for (int64_t b = 0; b < B; ++b)
        std::printf("prompt %lld: %s\n  -> %s\n", (long long)b, models::format_tokens(prompts[size_t(b)]).c_str(),
                    models::format_tokens(gen.generated[size_t(b)]).c_str());
      std::printf("prefill: %.3f ms for %lld tokens; decode: %.3f ms/step (batch %lld, %.0f tokens/s)\n",
                  prefill_s * 1e3, (long long)prompt_tokens, per_step * 1e3, (long long)B,
                  per_step > 0 ? double(B) / per_step : 0.0);
      if (matches >= 0)
        std::printf("reference check: %d of %lld sequences identical to the single-process reference%s\n", matches,
                    (long long)B, matches == B ? "" : "  <-- MISMATCH");
    }
  }
  return matches >= 0 && matches != B ? 1 : 0;
}

}  // namespace

void add_generate_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* app = parent.add_subcommand("generate", "sharded greedy generation (run under mpirun)");
  app->add_option("--model", o->model, "preset name, model YAML file or Hugging Face checkpoint directory")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the synthetic weights")->capture_default_str();
  app->add_option("--torus", o->torus, "torus shape XxYxZ (default: auto from the rank count)");
  app->add_option("--plan", o->plan,
                  "prefill=FFN/ATTN,decode=FFN/ATTN, one FFN/ATTN for both, or 'default' (weight-gathered "
                  "prefill, 2D weight-stationary decode, batch-sharded attention where the batch divides)")
      ->capture_default_str();
  app->add_option("--prompt-tokens", o->prompts, "prompts as token ids: \"1,2,3;4,5\"")->capture_default_str();
  app->add_option("--max-new-tokens", o->max_new, "tokens to generate per prompt")->capture_default_str();
  app->add_flag("--check-reference", o->check_reference,
                "also run the single-process reference and compare the tokens (exit 1 if they differ)");
  app->add_option("--logits-out", o->logits_out,
                  "write the logits every step sampled from (step.S [B, V]; step 0 = prefill) to this .safetensors");
  out.push_back({app, [o](const GlobalOptions& g) { return run_generate(*o, g); }});
}

}  // namespace tori::launch
