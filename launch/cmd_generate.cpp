// `tori generate`: sharded generation under mpirun. Each rank builds its shards of the model
// (synthetic weights from a seed, or a Hugging Face / GGUF checkpoint), runs prefill then decode in
// the plan's layouts, samples (greedy, temperature, top-k, top-p; seeded), and rank 0 prints the
// tokens per prompt, the per-phase timings and the memory each rank holds. Settings come from flags
// or a run YAML (run_config.hpp). --check-reference replays the same sampling on the single-process
// reference (on the weights rounded to --dtype: models/rounded_weights.hpp) and says whether every
// token matches.
//
// Text: for a model with a tokenizer (models/tokenizer.hpp), --prompt texts are encoded once
// (through the chat template with --chat), and each sequence's tokens are decoded as they arrive
// (models/text_stream.hpp): every rank decodes, so a --stop string finishes the sequence on every
// rank at the same step with no broadcast; rank 0 prints the text (streamed on a terminal), bytes
// that are not valid UTF-8 (a synthetic model's random byte tokens) as U+FFFD.
//
// run_generate sets up the run and calls one part per job: prompt encoding (encode_inputs), the
// streaming display (StreamDisplay), the reference check (reference_matches) and the output
// (print_json, print_text).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "collectives/collectives.hpp"
#include "kernels/backend.hpp"
#include "kernels/packed_weight.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/plan_choice.hpp"
#include "launch/run_config.hpp"
#include "launch/sharded_run.hpp"
#include "models/chat_template.hpp"
#include "models/context_window.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/prompts.hpp"
#include "models/rounded_weights.hpp"
#include "models/safetensors_writer.hpp"
#include "models/text_stream.hpp"
#include "models/tokenizer.hpp"
#include "runtime/generator.hpp"

namespace tori::launch {

namespace {

struct GenerateFlags {
  RunConfig run;
  std::string stream = "auto";
  bool check_reference = false;
  std::string logits_out;
};

// ---- Prompt encoding ---------------------------------------------------------------------------

std::vector<int32_t> parse_stop_tokens(const std::string& s, int64_t vocab) {
  if (s.empty()) return {};
  return models::parse_prompt_tokens(s, vocab, "--stop-tokens").at(0);
}

// The prompts as token ids: --prompt texts through the tokenizer (and the chat template), else
// --prompt-tokens. Adds the chat template's end-of-turn token to `stop`.
std::vector<models::TokenIds> prompt_ids(const CLI::App& app, const RunConfig& r, const models::ModelConfig& cfg,
                                         const models::Tokenizer* tok, std::vector<int32_t>& stop) {
  if (r.prompts.empty()) {
    if (r.chat) throw InputError("--chat: needs text prompts (--prompt TEXT or prompts: [\"...\"] in the run YAML)");
    return models::parse_prompt_tokens(r.prompt_tokens, cfg.vocab, "--prompt-tokens");
  }
  if (app.count("--prompt-tokens") > 0)
    throw InputError("--prompt and --prompt-tokens: give text prompts or token ids, not both");
  std::optional<models::ChatTemplate> chat;
  if (r.chat) {
    chat = models::ChatTemplate::recognise(tok->chat_template, tok->source());
    if (!chat->end_of_turn().empty()) {
      const int32_t eot = tok->find_token(chat->end_of_turn());
      if (eot < 0)
        throw InputError("--chat: " + tok->source() + ": the " + chat->name() + " template ends turns with '" +
                         chat->end_of_turn() + "', which is not a token of its vocabulary");
      stop.push_back(eot);
    }
  }
  std::vector<models::TokenIds> out;
  for (size_t b = 0; b < r.prompts.size(); ++b) {
    if (models::utf8_repaired(r.prompts[b]) != r.prompts[b])
      throw InputError("--prompt: prompt " + std::to_string(b) + " is not valid UTF-8 text");
    models::TokenIds ids;
    if (chat) {
      ids = models::encode_chat(*tok, *chat, r.prompts[b], r.system);
    } else {
      ids = tok->encode_prompt(r.prompts[b]);
    }
    if (ids.empty()) throw InputError("--prompt: prompt " + std::to_string(b) + " is empty");
    for (int32_t id : ids)
      if (id >= cfg.vocab)
        throw InputError("--prompt: prompt " + std::to_string(b) + " encodes to token " + std::to_string(id) +
                         " (tokenizer " + tok->source() + "), outside the vocabulary [0, " + std::to_string(cfg.vocab) +
                         ") of model '" + cfg.name + "'");
    out.push_back(std::move(ids));
  }
  return out;
}

// --stop on the command line: "\n", "\t" and "\\" stand for a newline, a tab and a backslash (a
// shell cannot easily pass a newline; the run YAML has its own escapes).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == 't' || s[i + 1] == '\\')) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1] == 't' ? '\t' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// What generation starts from: the prompts as token ids, and every token that ends a sequence
// (--stop-tokens, the tokenizer's end tokens, the chat template's end of turn).
struct Inputs {
  std::vector<models::TokenIds> prompts;
  std::vector<int32_t> stop_tokens;
};

// The run's prompts and stop tokens; text flags (--prompt, --stop, --chat, --system) are refused
// where they cannot apply.
Inputs encode_inputs(const CLI::App& app, const RunConfig& r, const models::ModelConfig& cfg,
                     const models::Tokenizer* tok) {
  if (!tok && (!r.prompts.empty() || !r.stop_strings.empty() || r.chat)) {
    const bool stop_only = r.prompts.empty() && !r.chat;
    const bool files_only = app.count("--prompt") == 0 && !r.prompt_files.empty();
    throw InputError(std::string(stop_only ? "--stop" : r.prompts.empty() ? "--chat" : files_only ? "--prompt-file" : "--prompt") + ": model '" +
                     cfg.name + "' has no tokenizer; give " + (stop_only ? "--stop-tokens" : "--prompt-tokens") +
                     " (tokenizers come with Hugging Face checkpoint directories and GGUF files)");
  }
  if (!r.system.empty() && !r.chat) throw InputError("--system: needs --chat");
  Inputs in;
  in.stop_tokens = parse_stop_tokens(r.stop_tokens, cfg.vocab);
  if (tok)
    for (int32_t id : tok->end_ids()) in.stop_tokens.push_back(id);
  in.prompts = prompt_ids(app, r, cfg, tok, in.stop_tokens);
  return in;
}

// One TextStream per sequence on every rank (none without a tokenizer): it decides stop strings
// (the same on every rank).
std::vector<models::TextStream> text_streams(const models::Tokenizer* tok, size_t sequences, const RunConfig& r,
                                             const std::vector<int32_t>& stop_tokens) {
  std::vector<models::TextStream> t;
  if (tok)
    for (size_t b = 0; b < sequences; ++b) t.emplace_back(*tok, r.stop_strings, stop_tokens);
  return t;
}

// ---- Streaming display -------------------------------------------------------------------------

// Generated text to stdout as it is (NUL bytes included), invalid UTF-8 as U+FFFD.
void write_text(const std::string& text) {
  const std::string t = models::utf8_repaired(text);
  std::fwrite(t.data(), 1, t.size(), stdout);
}

std::string json_quoted(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// How the output names prompt b: its text, quoted, or its token ids.
std::string prompt_label(const RunConfig& r, const std::vector<models::TokenIds>& prompts, int64_t b) {
  return r.prompts.empty() ? models::format_tokens(prompts[size_t(b)]) : json_quoted(r.prompts[size_t(b)]);
}

// Streaming and progress only for a person watching: tokens on a terminal stdout, a progress
// line on a terminal stderr. Open MPI hands ranks pseudo-terminals even when mpirun's own output
// is a pipe, so under mpirun "auto" stays off; --stream on forces both. Only rank 0 shows anything.
// Text streaming prints one prompt's text at a time, live, then the next one's (already partly
// generated) once the former is finished; without a tokenizer each step's token ids stream.
class StreamDisplay {
 public:
  // `texts`: the sequences' TextStreams (empty without a tokenizer), which generation feeds.
  StreamDisplay(const std::string& mode, const GlobalOptions& g, const RunConfig& r,
                const std::vector<models::TokenIds>& prompts, std::vector<models::TextStream>& texts,
                const std::vector<int32_t>& stop_tokens, bool text)
      : r_(r), prompts_(prompts), texts_(texts), stop_tokens_(stop_tokens), text_(text), B_(prompts.size()),
        count_(B_, 0), finished_(B_, false), headed_(B_, false) {
    const bool under_mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
    auto watching = [&](int fd) { return mode == "on" || (mode == "auto" && !under_mpirun && isatty(fd)); };
    stream_ = g.rank == 0 && !g.json && watching(STDOUT_FILENO);
    // Streamed text is its own progress display (a progress line would garble it on the terminal).
    progress_ = g.rank == 0 && watching(STDERR_FILENO) && !(stream_ && text_);
  }

  // The text was shown as it was generated (the final output leaves it out).
  bool streamed_text() const { return stream_ && text_; }

  // Generation's on_step: step's token per sequence (< 0: that sequence has finished).
  void on_step(int64_t step, const models::TokenIds& toks) {
    if (stream_ && text_)
      show_text(toks);
    else if (stream_)
      show_ids(step, toks);
    if (progress_) std::fprintf(stderr, "\r[tori] token %lld/%d", (long long)step + 1, r_.max_new_tokens);
  }

  // After the last step: ends the progress line.
  void finish() const {
    if (progress_) std::fprintf(stderr, "\n");
  }

 private:
  void show_text(const models::TokenIds& toks) {
    for (size_t b = 0; b < B_; ++b) {
      const int32_t t = toks[b];
      if (t < 0) continue;
      finished_[b] = ++count_[b] >= r_.max_new_tokens || texts_[b].stopped() ||
                     std::find(stop_tokens_.begin(), stop_tokens_.end(), t) != stop_tokens_.end();
    }
    for (; shown_ < B_; ++shown_) {
      if (!headed_[shown_])
        std::printf("prompt %zu: %s\n  -> ", shown_, prompt_label(r_, prompts_, int64_t(shown_)).c_str());
      headed_[shown_] = true;
      write_text(texts_[shown_].take(finished_[shown_]));
      if (!finished_[shown_]) break;
      std::printf("\n");
    }
    std::fflush(stdout);
  }

  static void show_ids(int64_t step, const models::TokenIds& toks) {
    std::printf("step %3lld:", (long long)step);
    for (int32_t t : toks) t < 0 ? std::printf("    -") : std::printf(" %4d", t);
    std::printf("\n");
    std::fflush(stdout);
  }

  const RunConfig& r_;
  const std::vector<models::TokenIds>& prompts_;
  std::vector<models::TextStream>& texts_;
  const std::vector<int32_t>& stop_tokens_;
  const bool text_;
  const size_t B_;
  bool stream_ = false, progress_ = false;
  std::vector<int64_t> count_;
  std::vector<bool> finished_, headed_;
  size_t shown_ = 0;
};

// ---- Reference check ---------------------------------------------------------------------------

// How many sequences the single-process reference generates exactly as `generated`: rank 0 replays
// the run with the same sampler and stop rules; every rank gets the count. Collective.
int reference_matches(const models::WeightSource& source, kernels::WeightFormat format, const RunConfig& r,
                      const models::Tokenizer* tok, const std::vector<models::TokenIds>& prompts,
                      const runtime::GenerateOptions& opt, const std::vector<models::TokenIds>& generated, int rank) {
  int matches = 0;
  if (rank == 0) {
    // The reference runs on the weights as this run's dtype rounds them (bf16, or int8 with
    // whole-column scales), so a mismatch is sharding's doing, not quantisation's.
    const models::RoundedWeights rounded(source, format);
    models::ReferenceModel ref(rounded);
    runtime::GenerateOptions quiet = opt;
    quiet.on_step = nullptr;
    quiet.keep_logits = false;
    std::vector<models::TextStream> ref_texts = text_streams(tok, prompts.size(), r, opt.stop_tokens);
    if (tok) quiet.stop_after = [&](int64_t b, int32_t t) { return ref_texts[size_t(b)].push(t); };
    auto want = runtime::generate_reference(ref, prompts, quiet).generated;
    for (size_t b = 0; b < prompts.size(); ++b) matches += want[b] == generated[b];
  }
  MPI_Bcast(&matches, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return matches;
}

// ---- Output ------------------------------------------------------------------------------------

// A run's figures, the same on every rank: timings of the slowest rank, memory of the fullest.
struct Figures {
  double prefill_s = 0, per_step = 0;  // decode: per step
  double weight_mb = 0, cache_mb = 0, rss_mb = 0;
  int64_t prompt_tokens = 0, new_tokens = 0;
};

// Collective.
Figures run_figures(const runtime::ShardedModel& model, const std::vector<models::TokenIds>& prompts,
                    const runtime::Generation& gen) {
  Figures fig;
  fig.prefill_s = max_over_ranks(gen.prefill_s);
  const double decode_s = max_over_ranks(gen.decode_s);
  fig.weight_mb = max_over_ranks(double(model.weight_bytes()) / (1 << 20));
  fig.cache_mb = max_over_ranks(double(model.cache_bytes()) / (1 << 20));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  fig.rss_mb = max_over_ranks(double(ru.ru_maxrss) / 1024.0);
  for (auto& p : prompts) fig.prompt_tokens += static_cast<int64_t>(p.size());
  for (auto& t : gen.generated) fig.new_tokens += static_cast<int64_t>(t.size());
  fig.per_step = gen.decode_steps ? decode_s / double(gen.decode_steps) : 0.0;
  return fig;
}

// What rank 0 prints of a run.
struct Report {
  const RunConfig& r;
  const models::ModelConfig& cfg;
  const collectives::Torus& torus;
  const runtime::Plan& plan;
  const runtime::GenerateOptions& opt;
  const std::vector<models::TokenIds>& prompts;
  const runtime::Generation& gen;
  bool text;                                      // the model has a tokenizer
  const std::vector<models::TextStream>& texts;  // each sequence's text (with a tokenizer)
  const Figures& fig;
  int matches;  // sequences identical to the reference; -1: not checked
  std::optional<planning::Utilisation> util;
};

// Why sequence b ended: a stop string, a stop token (EOS, end of turn, --stop-tokens), or length.
std::string finish_reason(const Report& rep, int64_t b) {
  const models::TokenIds& t = rep.gen.generated[size_t(b)];
  const std::vector<int32_t>& stop = rep.opt.stop_tokens;
  if (rep.texts[size_t(b)].stopped()) return "stop_string";
  if (!t.empty() && std::find(stop.begin(), stop.end(), t.back()) != stop.end()) return "stop_token";
  return "length";
}

// A record per sequence, then the summary.
void print_json(const Report& rep) {
  const int64_t B = static_cast<int64_t>(rep.prompts.size());
  for (int64_t b = 0; b < B; ++b) {
    nlohmann::json rec = {{"bench", "generate"}, {"sequence", b}, {"prompt", rep.prompts[size_t(b)]},
                          {"generated", rep.gen.generated[size_t(b)]}};
    if (rep.text) {
      if (!rep.r.prompts.empty()) rec["prompt_text"] = models::utf8_repaired(rep.r.prompts[size_t(b)]);
      rec["text"] = models::utf8_repaired(rep.texts[size_t(b)].text());
      rec["finish"] = finish_reason(rep, b);
    }
    kernels::emit(rec);
  }
  const Figures& fig = rep.fig;
  nlohmann::json summary = {{"bench", "generate"},
                            {"model", rep.cfg.name},
                            {"plan", rep.plan.str()},
                            {"ranks", rep.torus.ranks()},
                            {"torus", rep.torus.shape().str()},
                            {"dtype", rep.r.dtype},
                            {"sampling", rep.opt.sampling.str()},
                            {"batch", B},
                            {"prompt_len", fig.prompt_tokens},
                            {"new_tokens", fig.new_tokens},
                            {"prefill_s", fig.prefill_s},
                            {"decode_s_per_token", fig.per_step},
                            {"tokens_per_s", fig.per_step > 0 ? double(B) / fig.per_step : 0.0},
                            {"weight_mb_per_rank", fig.weight_mb},
                            {"kv_cache_mb_per_rank", fig.cache_mb},
                            {"peak_rss_mb", fig.rss_mb}};
  if (rep.matches >= 0) summary["reference_match"] = rep.matches == B;
  if (rep.util) summary["mfu"] = rep.util->mfu, summary["mbu"] = rep.util->mbu;  // decode, on the local profile
  kernels::emit(summary);
}

// The run, each prompt with its output (unless the text was streamed), the timings and the check.
void print_text(const Report& rep, bool streamed_text) {
  const int64_t B = static_cast<int64_t>(rep.prompts.size());
  const Figures& fig = rep.fig;
  std::printf("%s on %d ranks (torus %s), plan %s, %s weights, batch %lld, %s\n", rep.cfg.name.c_str(),
              rep.torus.ranks(), rep.torus.shape().str().c_str(), rep.plan.str().c_str(), rep.r.dtype.c_str(),
              (long long)B, rep.opt.sampling.str().c_str());
  std::printf("per rank: weights %.2f MiB, KV cache %.2f MiB, peak RSS %.1f MiB\n", fig.weight_mb, fig.cache_mb,
              fig.rss_mb);
  for (int64_t b = 0; b < B && !streamed_text; ++b) {
    if (rep.text) {
      std::printf("prompt %lld: %s\n  -> ", (long long)b, prompt_label(rep.r, rep.prompts, b).c_str());
      write_text(rep.texts[size_t(b)].text());
      std::printf("\n");
    } else
      std::printf("prompt %lld: %s\n  -> %s\n", (long long)b, models::format_tokens(rep.prompts[size_t(b)]).c_str(),
                  models::format_tokens(rep.gen.generated[size_t(b)]).c_str());
  }
  std::printf("prefill: %.3f ms for %lld tokens; decode: %.3f ms/step (batch %lld, %.0f tokens/s)\n",
              fig.prefill_s * 1e3, (long long)fig.prompt_tokens, fig.per_step * 1e3, (long long)B,
              fig.per_step > 0 ? double(B) / fig.per_step : 0.0);
  if (rep.matches >= 0)
    std::printf("reference check: %d of %lld sequences identical to the single-process reference%s\n", rep.matches,
                (long long)B, rep.matches == B ? "" : "  <-- MISMATCH");
}

// ---- The run -----------------------------------------------------------------------------------

// The output flags, checked before anything is loaded (a bad one found after generation would
// waste the run). --logits-out: rank 0 writes it, so rank 0 checks that its directory is
// writable and every rank learns the answer. Collective.
void check_output_flags(const GenerateFlags& f, const GlobalOptions& g) {
  if (f.stream != "auto" && f.stream != "on" && f.stream != "off")
    throw InputError("--stream: '" + f.stream + "' (allowed: auto, on, off)");
  if (f.logits_out.empty()) return;
  int writable = 1;
  if (g.rank == 0) {
    const std::filesystem::path dir = std::filesystem::absolute(f.logits_out).parent_path();
    writable = access(dir.c_str(), W_OK) == 0 && std::filesystem::is_directory(dir);
  }
  MPI_Bcast(&writable, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!writable)
    throw InputError("--logits-out: cannot write '" + f.logits_out + "' (its directory does not exist or is not writable)");
}

int run_generate(const CLI::App& app, GenerateFlags& f, const GlobalOptions& g) {
  RunConfig& r = f.run;
  check_output_flags(f, g);
  if (app.count("--stop") > 0)
    for (std::string& stop : r.stop_strings) stop = unescape(stop);
  apply_run_yaml(app, r);
  read_prompt_files(r);
  auto source = models::open_model(r.model, r.seed);
  const models::ModelConfig& cfg = source->config();
  const std::unique_ptr<models::Tokenizer> tok = models::open_tokenizer(r.model);
  Inputs in = encode_inputs(app, r, cfg, tok.get());
  const std::vector<models::TokenIds>& prompts = in.prompts;
  const int64_t B = static_cast<int64_t>(prompts.size());
  runtime::GenerateOptions opt;
  opt.stop_tokens = std::move(in.stop_tokens);
  opt.max_new = r.max_new_tokens;
  opt.sampling = {r.temperature, r.top_k, r.top_p, r.sample_seed};
  runtime::validate(opt.sampling);
  opt.keep_logits = !f.logits_out.empty();
  std::vector<models::TextStream> texts = text_streams(tok.get(), prompts.size(), r, opt.stop_tokens);
  if (tok) opt.stop_after = [&](int64_t b, int32_t t) { return texts[size_t(b)].push(t); };

  ShardedRun env(r.torus, g);
  const collectives::Torus& torus = env.torus;
  runtime::ShardOptions sopt = env.shard;
  sopt.format = kernels::parse_weight_format(r.dtype, "--dtype");
  check_prefill_chunk(r.prefill_chunk);
  static_assert(RunConfig{}.prefill_chunk == runtime::ShardOptions::kDefaultPrefillChunk);
  sopt.prefill_chunk = r.prefill_chunk;
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, int64_t(p.size()));
  // The KV caches hold what this run reaches, not the model's whole context (a prompt that needs
  // more than max_seq keeps max_seq here and is refused by generate()).
  const models::ContextWindow window(*source, runtime::positions_needed(prompts, r.max_new_tokens));
  const PlanContext pctx{window.config(), torus.shape(), B, longest, r.max_new_tokens, sopt.format,
                         sopt.prefill_chunk, runtime::run_pricing(window, sopt.format)};
  runtime::Plan plan = resolve_plan(r.plan, "--plan", pctx, g);
  runtime::ShardedModel model(window, *env.coll, plan, B, sopt);
  spdlog::info("generate: model {} on {} ranks (torus {}), plan {}, {} weights, batch {}, sampling {}", cfg.name,
               torus.ranks(), torus.shape().str(), plan.str(), r.dtype, B, opt.sampling.str());

  StreamDisplay display(f.stream, g, r, prompts, texts, opt.stop_tokens, tok != nullptr);
  opt.on_step = [&](int64_t step, const models::TokenIds& toks) { display.on_step(step, toks); };
  runtime::Generation gen = runtime::generate(model, prompts, opt);
  display.finish();
  if (!f.logits_out.empty() && g.rank == 0) {
    models::NamedTensors out;
    for (size_t s = 0; s < gen.logits.size(); ++s) out.emplace_back("step." + std::to_string(s), gen.logits[s]);
    models::write_safetensors(f.logits_out, out, {{"plan", plan.str()}, {"torus", torus.shape().str()}});
  }
  const Figures fig = run_figures(model, prompts, gen);
  const int matches = f.check_reference ? reference_matches(*source, sopt.format, r, tok.get(), prompts, opt,
                                                            gen.generated, g.rank)
                                        : -1;
  const auto util = measured_utilisation(pctx, plan, false, longest + gen.decode_steps / 2, fig.per_step, g);
  if (g.rank == 0) {
    const Report rep{.r = r, .cfg = cfg, .torus = torus, .plan = plan, .opt = opt, .prompts = prompts, .gen = gen,
                     .text = tok != nullptr, .texts = texts, .fig = fig, .matches = matches, .util = util};
    if (g.json)
      print_json(rep);
    else
      print_text(rep, display.streamed_text());
  }
  return matches >= 0 && matches != B ? 1 : 0;
}

}  // namespace

void add_generate_command(CLI::App& parent, Commands& out) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* app = parent.add_subcommand("generate", "sharded generation (run under mpirun)");
  add_run_flags(*app, f->run);
  app->add_option("--stream", f->stream,
                  "print the text as it is generated (without a tokenizer: each step's token ids and a progress "
                  "line): auto (when stdout/stderr are terminals and not under mpirun) | on | off")
      ->capture_default_str();
  app->add_flag("--check-reference", f->check_reference,
                "also run the single-process reference with the same sampler, on the weights rounded as --dtype "
                "rounds them (bf16 elementwise, int8 with whole-column scales), and compare (exit 1 if any token "
                "differs)");
  app->add_option("--logits-out", f->logits_out,
                  "write the logits every step sampled from (step.S [B, V]; step 0 = prefill) to this .safetensors");
  out.push_back({app, [f, app](const GlobalOptions& g) { return run_generate(*app, *f, g); }});
}

}  // namespace tori::launch
