// `tori perplexity`: the perplexity of a model on a text, sharded under mpirun, with llama.cpp's
// llama-perplexity semantics (models/perplexity.hpp): the text tokenised whole, cut into windows of
// --ctx tokens, the second half of each window scored given the first half. Windows run --batch
// at a time as one batched prefill (runtime::ShardedModel::prefill_log_probs: the logits stay
// vocabulary-sharded, each rank reduces its block to a log-sum-exp). Rank 0 prints PPL with its
// standard error and the number of tokens scored (--json: one record). --check-reference scores
// the same windows with the single-process reference (on the weights rounded as --dtype rounds
// them) and exits 1 if any token's log-probability differs by more than --tolerance.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "kernels/packed_weight.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "launch/plan_choice.hpp"
#include "launch/run_config.hpp"
#include "launch/sharded_run.hpp"
#include "models/context_window.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/perplexity.hpp"
#include "models/rounded_weights.hpp"
#include "models/text_file.hpp"
#include "models/text_stream.hpp"
#include "models/tokenizer.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::launch {

namespace {

// Largest |log p(sharded) - log p(reference)| allowed per scored token. f32: the sharded logits
// equal the reference's to ~1e-6 relative (verify's f32 bound is 1e-4 of max|logit|); a log-softmax
// moves by at most twice the largest logit error, so on SmolLM2 (max|logit| ~ 30) 1e-6 relative is
// ~6e-5 and verify's bound ~6e-3; 1e-3 sits between, with headroom over f32 summation order and
// far below what a wrong shard or a misplaced row does (order 1). bf16 / int8: the kernels round
// activations to bf16 where the reference keeps f32 (verify: ~1e-2 of max|logit|); measured on
// SmolLM2 (2 ranks, 2 windows of 64): 0.17 (bf16) and 0.11 (int8), so 0.5 (~3x headroom).
constexpr double kF32Tolerance = 1e-3;
constexpr double kRoundedTolerance = 0.5;
constexpr int64_t kDefaultCtx = 512;  // llama-perplexity's default context

struct PerplexityOptions {
  std::string model;
  std::string text;
  std::string torus;
  std::string plan = "default";
  std::string dtype = "f32";
  int64_t ctx = 0;  // 0: min(512, the model's context)
  int64_t batch = 4;
  int64_t windows = 0;  // 0: all
  long long prefill_chunk = runtime::ShardOptions::kDefaultPrefillChunk;
  bool check_reference = false;
  double tolerance = -1;  // < 0: the dtype's default
};

// The text file, whole (models::read_text_file); refused also when not UTF-8.
std::string read_text(const std::string& path) {
  const std::string text = models::read_text_file(path, "--text");
  const std::string repaired = models::utf8_repaired(text);
  if (repaired != text) {
    size_t at = 0;
    while (at < text.size() && text[at] == repaired[at]) ++at;
    throw InputError("--text: '" + path + "' is not valid UTF-8 text (first bad byte at offset " + std::to_string(at) + ")");
  }
  return text;
}

// The whole text's ids (BOS first when the model's prompts start with it, as llama-perplexity).
models::TokenIds text_tokens(const models::Tokenizer& tok, const std::string& text, const std::string& path,
                             int64_t vocab) {
  models::TokenIds ids = tok.encode_prompt(text);
  for (int32_t id : ids)
    if (id < 0 || id >= vocab)
      throw InputError("--text: '" + path + "' encodes to token " + std::to_string(id) + " (tokenizer " + tok.source() +
                       "), outside the model's vocabulary [0, " + std::to_string(vocab) + ")");
  return ids;
}

struct Scores {
  std::vector<std::vector<double>> log_probs;  // per window, its scored tokens'
  double seconds = 0;                          // slowest rank
};

// Every window through the sharded model, `batch` at a time (the last batch's missing windows
// idle). Collective.
Scores score_sharded(runtime::ShardedModel& model, const std::vector<models::TokenIds>& windows, int64_t first) {
  Scores s;
  const size_t B = size_t(model.batch());
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t w0 = 0; w0 < windows.size(); w0 += B) {
    std::vector<models::TokenIds> part(B);
    for (size_t b = 0; b < B && w0 + b < windows.size(); ++b) part[b] = windows[w0 + b];
    model.reset();
    auto lp = model.prefill_log_probs(part, first);
    for (size_t b = 0; b < B && w0 + b < windows.size(); ++b) s.log_probs.push_back(std::move(lp[b]));
    spdlog::debug("perplexity: windows {}..{} of {}", w0, std::min(w0 + B, windows.size()) - 1, windows.size());
  }
  s.seconds = max_over_ranks(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return s;
}

struct ReferenceCheck {
  models::Perplexity ppl;
  double max_err = 0;  // largest |log p - reference log p| over every scored token
  bool pass = false;
};

// Rank 0 scores the windows with the reference and compares; every rank learns the verdict.
// Collective.
ReferenceCheck check_reference(const models::WeightSource& source, kernels::WeightFormat format,
                               const std::vector<models::TokenIds>& windows, int64_t first, int64_t batch,
                               const Scores& got, double tolerance, int rank) {
  ReferenceCheck c;
  double v[4] = {0, 0, 0, 0};  // pass, max_err, ppl, ppl_stderr
  if (rank == 0) {
    const models::RoundedWeights rounded(source, format);
    models::ReferenceModel ref(rounded);
    const auto want = models::reference_log_probs(ref, windows, first, batch);
    for (size_t w = 0; w < want.size(); ++w)
      for (size_t i = 0; i < want[w].size(); ++i)
        c.max_err = std::max(c.max_err, std::abs(got.log_probs[w][i] - want[w][i]));
    c.ppl = models::perplexity_of(want);
    v[0] = c.max_err <= tolerance, v[1] = c.max_err, v[2] = c.ppl.ppl, v[3] = c.ppl.ppl_stderr;
  }
  MPI_Bcast(v, 4, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  c.pass = v[0] > 0, c.max_err = v[1], c.ppl.ppl = v[2], c.ppl.ppl_stderr = v[3];
  return c;
}

int run_perplexity(const PerplexityOptions& opts, const GlobalOptions& g) {
  PerplexityOptions o = opts;
  const kernels::WeightFormat format = kernels::parse_weight_format(o.dtype, "--dtype");
  if (o.tolerance < 0) o.tolerance = format == kernels::WeightFormat::f32 ? kF32Tolerance : kRoundedTolerance;
  if (o.batch < 1) throw InputError("--batch: " + std::to_string(o.batch) + " (allowed: windows per step >= 1)");
  if (o.windows < 0) throw InputError("--windows: " + std::to_string(o.windows) + " (allowed: >= 0; 0 = every window)");
  check_prefill_chunk(o.prefill_chunk);
  const std::string text = read_text(o.text);
  auto source = models::open_model(o.model, kDefaultSeed);  // a model with a tokenizer is a checkpoint: no seed
  const models::ModelConfig& base = source->config();
  const std::unique_ptr<models::Tokenizer> tok = models::open_tokenizer(o.model);
  if (!tok)
    throw InputError("--model: model '" + base.name +
                     "' has no tokenizer; perplexity scores a text (tokenizers come with Hugging Face checkpoint "
                     "directories, GGUF files and TSVD checkpoints of them)");
  if (o.ctx == 0) o.ctx = std::min(kDefaultCtx, base.max_seq);
  if (o.ctx < 2 || o.ctx > base.max_seq)
    throw InputError("--ctx: " + std::to_string(o.ctx) + " (allowed: 2 .. " + std::to_string(base.max_seq) +
                     ", the context of model '" + base.name + "')");
  const models::TokenIds tokens = text_tokens(*tok, text, o.text, base.vocab);
  if (int64_t(tokens.size()) < 2 * o.ctx)
    throw InputError("--text: '" + o.text + "' is " + std::to_string(tokens.size()) + " tokens, fewer than two windows of --ctx " +
                     std::to_string(o.ctx) + " (" + std::to_string(2 * o.ctx) + " tokens needed)");
  std::vector<models::TokenIds> windows = models::perplexity_windows(tokens, o.ctx, tok->add_bos ? tok->bos_id : -1);
  if (o.windows > 0 && size_t(o.windows) < windows.size()) windows.resize(size_t(o.windows));
  const int64_t first = models::first_scored(o.ctx);
  const int64_t B = std::min<int64_t>(o.batch, int64_t(windows.size()));

  // KV caches of ctx positions, not the model's whole context.
  const models::ContextWindow model_source(*source, o.ctx);
  const models::ModelConfig& cfg = model_source.config();
  ShardedRun env(o.torus, g);
  env.shard.format = format;
  env.shard.prefill_chunk = o.prefill_chunk;
  const PlanContext pctx{cfg, env.torus.shape(), B, o.ctx, 1, format, o.prefill_chunk, runtime::run_pricing(model_source, format)};
  const runtime::Plan plan = resolve_plan(o.plan, "--plan", pctx, g);
  runtime::ShardedModel model(model_source, *env.coll, plan, B, env.shard);
  spdlog::info("perplexity: model {} on {} ranks (torus {}), plan {}, {} weights; {} tokens, {} windows of {}, batch {}",
               cfg.name, env.torus.ranks(), env.torus.shape().str(), plan.str(), o.dtype, tokens.size(), windows.size(),
               o.ctx, B);

  const Scores got = score_sharded(model, windows, first);
  const models::Perplexity p = models::perplexity_of(got.log_probs);
  std::optional<ReferenceCheck> ref;
  if (o.check_reference)
    ref = check_reference(model_source, format, windows, first, B, got, o.tolerance, g.rank);
  const double evaluated = double(windows.size()) * double(o.ctx);
  if (g.rank == 0 && g.json) {
    nlohmann::json rec = {{"bench", "perplexity"},  {"model", cfg.name},
                          {"text", o.text},         {"ranks", env.torus.ranks()},
                          {"torus", env.torus.shape().str()}, {"plan", plan.str()},
                          {"dtype", o.dtype},       {"ctx", o.ctx},
                          {"batch", B},             {"text_tokens", tokens.size()},
                          {"windows", windows.size()}, {"tokens_scored", p.tokens},
                          {"nll", p.nll},           {"nll_stderr", p.nll_stderr},
                          {"ppl", p.ppl},           {"ppl_stderr", p.ppl_stderr},
                          {"seconds", got.seconds}, {"tokens_per_s", evaluated / got.seconds}};
    if (ref)
      rec.update({{"reference_ppl", ref->ppl.ppl}, {"reference_ppl_stderr", ref->ppl.ppl_stderr},
                  {"max_abs_log_prob_err", ref->max_err}, {"tolerance", o.tolerance}, {"reference_match", ref->pass}});
    kernels::emit(rec);
  } else if (g.rank == 0) {
    std::printf("%s on %d ranks (torus %s), plan %s, %s weights\n", cfg.name.c_str(), env.torus.ranks(),
                env.torus.shape().str().c_str(), plan.str().c_str(), o.dtype.c_str());
    std::printf("text %s: %zu tokens, %zu windows of %lld (the second half of each scored), batch %lld\n",
                o.text.c_str(), tokens.size(), windows.size(), (long long)o.ctx, (long long)B);
    std::printf("PPL = %.4f +/- %.4f (NLL %.5f +/- %.5f nats/token over %lld tokens scored)\n", p.ppl, p.ppl_stderr,
                p.nll, p.nll_stderr, (long long)p.tokens);
    std::printf("%.2f s (%.0f tokens/s evaluated)\n", got.seconds, evaluated / got.seconds);
    if (ref)
      std::printf("reference check: reference PPL = %.4f +/- %.4f; largest |log p difference| %.2e (tolerance %.0e)%s\n",
                  ref->ppl.ppl, ref->ppl.ppl_stderr, ref->max_err, o.tolerance, ref->pass ? "" : "  <-- MISMATCH");
  }
  return ref && !ref->pass ? 1 : 0;
}

}  // namespace

void add_perplexity_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* app = parent.add_subcommand(
      "perplexity",
      "perplexity of a model on a text, sharded (run under mpirun): the text is tokenised whole and cut into "
      "windows of --ctx tokens; each window is scored on its second half (positions ctx/2+1 .. ctx-1, each given "
      "every token before it in the window), as llama.cpp's llama-perplexity does; prints PPL +/- its standard "
      "error and the number of tokens scored");
  app->add_option("--model", o->model, "a model with a tokenizer: Hugging Face checkpoint directory, .gguf, or a "
                                       "`tori compress` directory of one")
      ->required();
  app->add_option("--text", o->text, "UTF-8 text file to score (at least two windows of --ctx tokens)")->required();
  app->add_option("--ctx", o->ctx, "tokens per window, 2 .. the model's context (default: 512, or the context if smaller)");
  app->add_option("--batch", o->batch, "windows per forward step (one batched prefill)")->capture_default_str();
  app->add_option("--windows", o->windows, "score only the first N windows (0 = every window)")->capture_default_str();
  app->add_option("--torus", o->torus, "torus shape XxYxZ (default: auto from the rank count)");
  app->add_option("--plan", o->plan, "a plan (e.g. prefill=ws2d/heads,decode=ws2d/heads), 'default' or 'auto'")
      ->capture_default_str();
  app->add_option("--dtype", o->dtype, std::string("weight format: ") + kernels::kWeightFormatNames)->capture_default_str();
  add_prefill_chunk_flag(*app, o->prefill_chunk);
  app->add_flag("--check-reference", o->check_reference,
                "also score the windows with the single-process reference (on the weights rounded as --dtype "
                "rounds them) and exit 1 if a token's log-probability differs by more than --tolerance");
  app->add_option("--tolerance", o->tolerance,
                  "largest allowed |log p - reference log p| per scored token (default: 1e-3 for f32, 0.5 for bf16 "
                  "and int8)")
      ->check(non_negative());
  out.push_back({app, [o](const GlobalOptions& g) { return run_perplexity(*o, g); }});
}

}  // namespace tori::launch
