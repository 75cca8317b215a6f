// `tori serve`: an OpenAI-compatible HTTP server on the sharded model, under mpirun. Every rank
// builds its shards for a batch of --max-batch slots; rank 0 serves HTTP (serve/http_api.hpp) and
// schedules (serve/scheduler.hpp: continuous batching, chunked prefill), broadcasting each step to
// the other ranks, which run it. SIGTERM drains: new requests get 503, running ones finish (at
// most --drain-timeout seconds), then every rank exits 0. Design: docs/serving.md.
#include <csignal>

#include <spdlog/spdlog.h>

#include "kernels/packed_weight.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "launch/plan_choice.hpp"
#include "launch/sharded_run.hpp"
#include "models/context_window.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/tokenizer.hpp"
#include "serve/http_api.hpp"
#include "serve/scheduler.hpp"

namespace tori::launch {

namespace {

struct ServeFlags {
  std::string model;
  std::string name;  // the model id clients send; default: the model's name
  unsigned long long seed = kDefaultSeed;  // (checkpoints ignore it)
  std::string torus, plan = "default", dtype = "f32";
  serve::HttpOptions http;
  int64_t max_batch = 16, context = 0, max_tokens = 256;  // context 0: 2048 or the model's, if shorter
  serve::SchedulerOptions sched;
  int64_t max_body_kib = 1024;
};

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);
extern "C" void on_sigterm(int) { g_stop = true; }

int run_serve(ServeFlags& f, const GlobalOptions& g) {
  if (f.max_batch < 1) throw InputError("--max-batch: must be >= 1, got " + std::to_string(f.max_batch));
  if (f.context != 0 && f.context < 2) throw InputError("--context: must be >= 2, got " + std::to_string(f.context));
  if (f.max_tokens < 1) throw InputError("--default-max-tokens: must be >= 1, got " + std::to_string(f.max_tokens));
  if (f.sched.prefill_chunk < 1)
    throw InputError("--prefill-chunk: must be >= 1, got " + std::to_string(f.sched.prefill_chunk));
  if (f.http.port < 0 || f.http.port > 65535) throw InputError("--port: " + std::to_string(f.http.port) + " (allowed: 0-65535)");
  if (f.max_body_kib < 1) throw InputError("--max-body-kib: must be >= 1");
  f.http.max_body = size_t(f.max_body_kib) * 1024;
  auto full = models::open_model(f.model, f.seed);
  const int64_t model_context = full->config().max_seq;
  if (f.context > model_context)
    throw InputError("--context: " + std::to_string(f.context) + " positions is more than the model's own context (allowed: 2-" +
                     std::to_string(model_context) + ")");
  const std::unique_ptr<models::Tokenizer> tok = models::open_tokenizer(f.model);
  if (!tok)
    throw InputError("--model: '" + f.model + "' has no tokenizer; tori serve needs one (a GGUF file or a Hugging Face "
                     "checkpoint directory)");
  const models::ContextWindow source(*full, f.context ? f.context : std::min<int64_t>(2048, model_context));
  const models::ModelConfig& cfg = source.config();

  ShardedRun env(f.torus, g);
  env.shard.format = kernels::parse_weight_format(f.dtype, "--dtype");
  const PlanContext pctx{cfg, env.torus.shape(), f.max_batch, std::min(f.sched.prefill_chunk, cfg.max_seq),
                         std::min<int64_t>(f.max_tokens, cfg.max_seq), env.shard.format,
                         runtime::ShardOptions::kDefaultPrefillChunk, runtime::run_pricing(source, env.shard.format)};
  const runtime::Plan plan = resolve_plan(f.plan, "--plan", pctx, g);
  runtime::ShardedModel model(source, *env.coll, plan, f.max_batch, env.shard);

  std::signal(SIGTERM, on_sigterm);
  std::signal(SIGINT, on_sigterm);
  std::signal(SIGPIPE, SIG_IGN);
  serve::StepChannel channel;
  if (!channel.root()) {
    serve::follow(model, channel);
    return 0;
  }
  serve::ModelInfo info;
  info.id = f.name.empty() ? cfg.name : f.name;
  info.tokenizer = tok.get();
  info.vocab = cfg.vocab;
  info.context = cfg.max_seq;
  info.default_max_tokens = f.max_tokens;
  if (!tok->chat_template.empty()) {
    info.chat = models::ChatTemplate::recognise(tok->chat_template, tok->source());
    if (!info.chat->end_of_turn().empty()) info.end_of_turn = tok->find_token(info.chat->end_of_turn());
  }
  serve::JobQueue queue;
  serve::Metrics metrics(f.max_batch);
  serve::HttpApi http(f.http, info, queue, metrics, g_stop);
  http.start();
  spdlog::info("serve: model '{}' on {} ranks (torus {}), plan {}, {} weights, {} slots of {} positions", info.id,
               env.torus.ranks(), env.torus.shape().str(), plan.str(), f.dtype, f.max_batch, cfg.max_seq);
  serve::Scheduler sched(model, channel, info, queue, metrics, f.sched);
  sched.run(g_stop);
  http.stop();
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& parent, Commands& out) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* app = parent.add_subcommand(
      "serve", "OpenAI-compatible HTTP server with continuous batching (run under mpirun; rank 0 serves HTTP)");
  app->add_option("--model", f->model, "a .gguf file or Hugging Face checkpoint directory (with its tokenizer)")
      ->required();
  app->add_option("--served-model-name", f->name, "the model id clients send as \"model\" (default: the model's name)");
  app->add_option("--torus", f->torus, "XxYxZ (default: auto from the rank count)");
  app->add_option("--plan", f->plan, "layouts per phase, or default, or auto (see tori generate --help)")->capture_default_str();
  app->add_option("--dtype", f->dtype, std::string("weight format: ") + kernels::kWeightFormatNames)->capture_default_str();
  app->add_option("--host", f->http.host, "address to listen on (127.0.0.1: this host only)")->capture_default_str();
  app->add_option("--port", f->http.port, "TCP port (0: any free port)")->capture_default_str();
  app->add_option("--api-key", f->http.api_key,
                  "require Authorization: Bearer KEY on every endpoint but /health (default: none)");
  app->add_option("--max-batch", f->max_batch,
                  "KV-cache slots: requests decoded together; more wait in the queue")->capture_default_str();
  app->add_option("--context", f->context,
                  "positions per slot (prompt + generated), 2 up to the model's own context (default: 2048, or the "
                  "model's context if shorter)");
  app->add_option("--prefill-chunk", f->sched.prefill_chunk,
                  "most prompt tokens one slot prefills per step (decode runs between chunks)")->capture_default_str();
  app->add_option("--default-max-tokens", f->max_tokens, "max_tokens of a request that gives none")->capture_default_str();
  app->add_option("--max-body-kib", f->max_body_kib, "largest request body (KiB); larger get 413")->capture_default_str();
  app->add_option("--drain-timeout", f->sched.drain_s,
                  "after SIGTERM: longest wait (s) for running requests before they are cut")->capture_default_str();
  app->add_option("--http-threads", f->http.threads, "connections served at once")->capture_default_str();
  out.push_back({app, [f](const GlobalOptions& g) { return run_serve(*f, g); }});
}

}  // namespace tori::launch
