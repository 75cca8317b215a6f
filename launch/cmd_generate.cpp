// `tori generate`: sharded generation under mpirun. Each rank builds its shards of the model
// (synthetic weights from a seed, or a Hugging Face checkpoint), runs prefill then decode in the
// plan's layouts, samples (greedy, temperature, top-k, top-p; seeded), and rank 0 prints the tokens
// per prompt, the per-phase timings and the memory each rank holds. Settings come from flags or a
// run YAML (run_config.hpp). --check-reference replays the same sampling on the single-process
// reference and says whether every token matches.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/record.hpp"
#include "collectives/collectives.hpp"
#include "kernels/backend.hpp"
#include "kernels/packed_weight.hpp"
#include "launch/command.hpp"
#include "launch/plan_choice.hpp"
#include "launch/run_config.hpp"
#include "launch/sharded_run.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/prompts.hpp"
#include "models/safetensors_writer.hpp"
#include "runtime/generator.hpp"

namespace tori::launch {

namespace {

struct GenerateFlags {
  RunConfig run;
  std::string stream = "auto";
  bool check_reference = false;
  std::string logits_out;
};

std::vector<int32_t> parse_stop_tokens(const std::string& s, int64_t vocab) {
  if (s.empty()) return {};
  return models::parse_prompt_tokens(s, vocab, "--stop-tokens").at(0);
}

int run_generate(const CLI::App& app, GenerateFlags& f, const GlobalOptions& g) {
  RunConfig& r = f.run;
  apply_run_yaml(app, r);
  auto source = models::open_model(r.model, r.seed);
  const models::ModelConfig& cfg = source->config();
  if (!r.prompts.empty() || !r.stop_strings.empty())
    throw InputError(std::string(r.prompts.empty() ? "--stop" : "--prompt") + ": model '" + cfg.name +
                     "' has no tokenizer, so text cannot be used (give token ids: --prompt-tokens / --stop-tokens)");
  auto prompts = models::parse_prompt_tokens(r.prompt_tokens, cfg.vocab, "--prompt-tokens");
  const int64_t B = static_cast<int64_t>(prompts.size());
  runtime::GenerateOptions opt;
  opt.max_new = r.max_new_tokens;
  opt.sampling = {r.temperature, r.top_k, r.top_p, r.sample_seed};
  runtime::validate(opt.sampling);
  opt.stop_tokens = parse_stop_tokens(r.stop_tokens, cfg.vocab);
  opt.keep_logits = !f.logits_out.empty();

  ShardedRun env(r.torus, g);
  const collectives::Torus& torus = env.torus;
  runtime::ShardOptions sopt = env.shard;
  sopt.format = kernels::parse_weight_format(r.dtype, "--dtype");
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, int64_t(p.size()));
  const PlanContext pctx{cfg, torus.shape(), B, longest, r.max_new_tokens, sopt.format};
  runtime::Plan plan = resolve_plan(r.plan, "--plan", pctx, g);
  runtime::ShardedModel model(*source, *env.coll, plan, B, sopt);
  spdlog::info("generate: model {} on {} ranks (torus {}), plan {}, {} weights, batch {}, sampling {}", cfg.name,
               torus.ranks(), torus.shape().str(), plan.str(), r.dtype, B, opt.sampling.str());

  // Streaming and progress only for a person watching: tokens on a terminal stdout, a progress
  // line on a terminal stderr. Open MPI hands ranks pseudo-terminals even when mpirun's own output
  // is a pipe, so under mpirun "auto" stays off; --stream on forces both.
  if (f.stream != "auto" && f.stream != "on" && f.stream != "off")
    throw InputError("--stream: '" + f.stream + "' (allowed: auto, on, off)");
  const bool under_mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
  auto watching = [&](int fd) { return f.stream == "on" || (f.stream == "auto" && !under_mpirun && isatty(fd)); };
  const bool stream = g.rank == 0 && !g.json && watching(STDOUT_FILENO);
  const bool progress = g.rank == 0 && watching(STDERR_FILENO);
  opt.on_step = [&](int64_t step, const models::TokenIds& toks) {
    if (stream) {
      std::printf("step %3lld:", (long long)step);
      for (int32_t t : toks) t < 0 ? std::printf("    -") : std::printf(" %4d", t);
      std::printf("\n");
      std::fflush(stdout);
    }
    if (progress) std::fprintf(stderr, "\r[tori] token %lld/%d", (long long)step + 1, r.max_new_tokens);
  };
  runtime::Generation gen = runtime::generate(model, prompts, opt);
  if (progress) std::fprintf(stderr, "\n");
  if (!f.logits_out.empty() && g.rank == 0) {
    models::NamedTensors out;
    for (size_t s = 0; s < gen.logits.size(); ++s) out.emplace_back("step." + std::to_string(s), gen.logits[s]);
    models::write_safetensors(f.logits_out, out, {{"plan", plan.str()}, {"torus", torus.shape().str()}});
  }
  const double prefill_s = max_over_ranks(gen.prefill_s), decode_s = max_over_ranks(gen.decode_s);
  const double weight_mb = max_over_ranks(double(model.weight_bytes()) / (1 << 20));
  const double cache_mb = max_over_ranks(double(model.cache_bytes()) / (1 << 20));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mb = max_over_ranks(double(ru.ru_maxrss) / 1024.0);

  int matches = -1;
  if (f.check_reference) {
    matches = 0;
    if (g.rank == 0) {
      models::ReferenceModel ref(*source);
      runtime::GenerateOptions quiet = opt;
      quiet.on_step = nullptr;
      quiet.keep_logits = false;
      auto want = runtime::generate_reference(ref, prompts, quiet).generated;
      for (int64_t b = 0; b < B; ++b) matches += want[size_t(b)] == gen.generated[size_t(b)];
    }
    MPI_Bcast(&matches, 1, MPI_INT, 0, MPI_COMM_WORLD);
  }
  int64_t prompt_tokens = 0, new_tokens = 0;
  for (auto& p : prompts) prompt_tokens += static_cast<int64_t>(p.size());
  for (auto& t : gen.generated) new_tokens += static_cast<int64_t>(t.size());
  const double per_step = gen.decode_steps ? decode_s / double(gen.decode_steps) : 0.0;
  const auto util = measured_utilisation(pctx, plan, false, longest + gen.decode_steps / 2, per_step, g);
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
                                {"dtype", r.dtype},
                                {"sampling", opt.sampling.str()},
                                {"batch", B},
                                {"prompt_len", prompt_tokens},
                                {"new_tokens", new_tokens},
                                {"prefill_s", prefill_s},
                                {"decode_s_per_token", per_step},
                                {"tokens_per_s", per_step > 0 ? double(B) / per_step : 0.0},
                                {"weight_mb_per_rank", weight_mb},
                                {"kv_cache_mb_per_rank", cache_mb},
                                {"peak_rss_mb", rss_mb}};
      if (matches >= 0) summary["reference_match"] = matches == B;
      if (util) summary["mfu"] = util->mfu, summary["mbu"] = util->mbu;  // decode, on the local profile
      bench::emit(summary);
    } else {
      std::printf("%s on %d ranks (torus %s), plan %s, %s weights, batch %lld, %s\n", cfg.name.c_str(), torus.ranks(),
                  torus.shape().str().c_str(), plan.str().c_str(), r.dtype.c_str(), (long long)B,
                  opt.sampling.str().c_str());
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
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* app = parent.add_subcommand("generate", "sharded generation (run under mpirun)");
  add_run_flags(*app, f->run);
  app->add_option("--stream", f->stream,
                  "print tokens step by step and a progress line: auto (when stdout/stderr are terminals and not "
                  "under mpirun) | on | off")
      ->capture_default_str();
  app->add_flag("--check-reference", f->check_reference,
                "also run the single-process reference with the same sampler and compare (exit 1 if any token differs)");
  app->add_option("--logits-out", f->logits_out,
                  "write the logits every step sampled from (step.S [B, V]; step 0 = prefill) to this .safetensors");
  out.push_back({app, [f, app](const GlobalOptions& g) { return run_generate(*app, *f, g); }});
}

}  // namespace tori::launch
