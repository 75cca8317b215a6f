// `tori bench model` (the matrix, run on one process: it starts mpirun itself; bench/model_bench.hpp)
// and `tori bench model-run` (one configuration on the ranks of an mpirun job: what bench model
// starts; bench/model_run.hpp). Here: the flags, their checks, and the plans resolved (`default`,
// `auto`: launch/plan_choice.hpp) before bench runs them.
#include <memory>

#include "bench/model_bench.hpp"
#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"
#include "kernels/packed_weight.hpp"
#include "launch/command.hpp"
#include "launch/plan_choice.hpp"
#include "launch/sharded_run.hpp"
#include "models/hf_checkpoint.hpp"

namespace tori::launch {

namespace {

// The test matrix's flags, shared by both subcommands.
void add_matrix_options(CLI::App* app, bench::ModelRunOptions& r) {
  app->add_option("--prompt-lens", r.prompt_lens, "prefill tests: prompt tokens per sequence")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--prefill-batches", r.prefill_batches, "prefill tests: sequences per prefill")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--batches", r.decode_batches, "decode tests: sequences per decode step")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--contexts", r.contexts,
                  "decode tests: tokens in each sequence's KV cache (prefilled, untimed) before the timed steps")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--gen-lens", r.gen_lens, "decode tests: generated tokens per sequence (steps timed together)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--repeats", r.repeats, "timed repetitions of every test (the median is reported)")
      ->capture_default_str();
  app->add_option("--warmup", r.warmup, "untimed repetitions before them (first-call costs)")->capture_default_str();
  app->add_option("--limits-gemm", r.limit_options.gemm_size, "M = N = K of the GEMM that measures the peak")
      ->capture_default_str();
  app->add_option("--limits-stream-mib", r.limit_options.stream_mib,
                  "MiB per array of the read-bandwidth stream; 0: twice the last-level cache, at least 256")
      ->capture_default_str();
  app->add_option("--limits-repeats", r.limit_options.repeats, "best of this many runs of each limit")
      ->capture_default_str();
}

struct RunFlags {
  std::string model = "llama-tiny";
  unsigned long long seed = 1234;
  std::string plan = "default";
  bench::ModelRunOptions run;
};

int run_model_run(const RunFlags& f, const GlobalOptions& g) {
  bench::ModelRunOptions o = f.run;
  auto source = models::open_model(f.model, f.seed);
  bench::validate_model_run(o, source->config().max_seq);
  o.collectives = collectives_options(g);
  o.shard = shard_options(g);
  o.shard.format = kernels::parse_weight_format(o.dtype, "--dtype");
  o.json = g.json;
  o.threads = g.threads_applied;
  const collectives::TorusShape shape = collectives::resolve_torus_shape(o.torus, g.world_size);
  const models::ModelConfig cfg = source->config();
  const std::string plan_text = f.plan;
  o.plan_for = [cfg, shape, plan_text, &o, g, &source](int64_t batch, int64_t prompt_len, int64_t gen_len) {
    const PlanContext ctx{cfg, shape, batch, prompt_len, gen_len, o.shard.format, runtime::ShardOptions::kDefaultPrefillChunk,
                          runtime::run_pricing(*source, o.shard.format)};
    return resolve_plan(plan_text, "--plan", ctx, g);
  };
  return bench::run_model_run(*source, o);
}

}  // namespace

void add_bench_model_command(CLI::App& bench, Commands& out) {
  auto o = std::make_shared<bench::ModelBenchOptions>();
  o->run.prompt_lens = {128, 512};
  o->run.decode_batches = {1, 8, 32};
  o->run.limit_options = {2048, 0, 3};
  CLI::App* app = bench.add_subcommand(
      "model", "prefill and decode tokens/s of a model over ranks x threads, dtypes, prompt lengths, batches and "
               "generated lengths, with MFU and MBU against the machine's limits measured in the same job "
               "(markdown, JSON lines, CSV, PNG); run on one process, it starts mpirun itself");
  app->add_option("--model", o->model, "preset, model YAML, Hugging Face checkpoint directory or .gguf")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "synthetic weights' seed")->capture_default_str();
  app->add_option("--dtypes", o->dtypes, "weight formats, comma-separated, of: " + std::string(kernels::kWeightFormatNames))->delimiter(',')->capture_default_str();
  app->add_option("--ranks-threads", o->ranks_threads, "configurations RxT: R ranks (mpirun -np R) x T threads each")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--plan", o->plan, "plan of every run: default, auto or a plan text")->capture_default_str();
  add_matrix_options(app, o->run);
  app->add_option("--out", o->out, "write <out>.jsonl, <out>.csv, <out>.md and <out>.png");
  app->add_flag("!--no-png", o->png, "with --out: no PNG");
  app->add_option("--report", o->report,
                  "no runs: print the tables of an earlier run's <out>.jsonl (with --out: write <out>.md and .png)");
  app->add_option("--python", o->python, "Python with matplotlib for the PNG (bench/plot-model)")
      ->capture_default_str();
  app->add_option("--mpirun", o->mpirun, "mpirun to start the ranks with")->capture_default_str();
  out.push_back({app, [o](const GlobalOptions& g) {
                   if (g.world_size != 1)
                     throw InputError("bench model: run it on one process, not under mpirun (it starts mpirun itself)");
                   bench::ModelBenchOptions b = *o;
                   b.collectives = g.collectives;
                   b.overlap = g.overlap;
                   b.matmul = g.matmul;
                   b.attention_kernel = g.attention_kernel;
                   b.sliding_window = g.sliding_window;
                   b.sink_tokens = g.sink_tokens;
                   b.json = g.json;
                   bench::run_model_bench(b);
                   return 0;
                 }});

  auto f = std::make_shared<RunFlags>();
  f->run.limit_options = o->run.limit_options;
  CLI::App* run = bench.add_subcommand(
      "model-run", "one configuration of `bench model` on the ranks of this mpirun job (what bench model starts): "
                   "the machine's limits, then each prefill and decode test (JSON lines with --json)");
  run->add_option("--model", f->model, "preset, model YAML, Hugging Face checkpoint directory or .gguf")
      ->capture_default_str();
  run->add_option("--seed", f->seed, "synthetic weights' seed")->capture_default_str();
  run->add_option("--torus", f->run.torus, "torus shape XxYxZ (default: auto)");
  run->add_option("--dtype", f->run.dtype, std::string("weight format: ") + kernels::kWeightFormatNames)->capture_default_str();
  run->add_option("--plan", f->plan, "default, auto or a plan text")->capture_default_str();
  add_matrix_options(run, f->run);
  out.push_back({run, [f](const GlobalOptions& g) { return run_model_run(*f, g); }});
}

}  // namespace tori::launch
