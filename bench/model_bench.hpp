#pragma once
// `tori bench model` (what llama-bench is to llama.cpp): a model's prefill and decode speed over a
// matrix of ranks × threads, weight formats, prompt lengths, batch sizes, decode contexts and
// generated lengths, each figure beside the machine's limit measured in the same job.
// Run on one process: per (ranks × threads, dtype) it starts
//   mpirun -np R [--oversubscribe] --bind-to none tori --threads T --json ... bench model-run ...
// (planning/spawn.hpp, as bench sweep does), which measures the limits and then every test
// (bench/model_run.hpp: warm-up repetitions, then timed ones; medians), and turns its records into
// one record per test:
//   {"bench":"model", model, dtype, ranks, threads, torus, plan, phase, test, batch, prompt_len,
//    context, gen_len, tokens, repeats, warmup, median_s, min_s, max_s, tokens_per_s,
//    peak_dtype, peak_gflops, mfu, read_gbps, mbu, achieved_gflops, achieved_gbps, loadavg_1m,
//    limits_loadavg_1m; JSON only: sliding_window, sink_tokens, attention_kernel}
//   tokens_per_s = tokens / median_s (prefill: B·P tokens; decode: B·G tokens over G steps);
//   mfu = model_flops / (median_s · peak_gflops), the GEMM peak of the arithmetic the format's
//     matmuls run in (peak_dtype: f32 for f32 weights; bf16 for bf16 and for the weight-only
//     quantised formats, whose large-M matmuls dequantise into a bf16 GEMM), summed over the ranks
//     as they measured it together;
//   mbu = model_bytes / (median_s · read_gbps) (weights once per step in the run's format + the KV
//     cache read, against the read-only stream all ranks measured together).
// Output: with --json the records as JSON lines on stdout, otherwise markdown (the full table, a
// ranks-vs-threads table where R ranks × T threads meets 1 rank × R·T threads, and a summary of
// tokens/s by configuration); with --out PREFIX also PREFIX.jsonl, .csv, .md and (bench/plot-model,
// Debian's /usr/bin/python3 with matplotlib) PREFIX.png. Progress goes to stderr. --report FILE.jsonl
// prints (and writes) the tables and PNG of records already measured, without running anything.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/model_run.hpp"

namespace tori::bench {

struct RanksThreads {
  int ranks = 1, threads = 1;
  std::string str() const { return std::to_string(ranks) + "x" + std::to_string(threads); }
};
// "RxT" (e.g. 2x1); throws InputError naming --ranks-threads.
RanksThreads parse_ranks_threads(const std::string& text);

struct ModelBenchOptions {
  std::string model = "llama-tiny";
  unsigned long long seed = 1234;
  std::vector<std::string> dtypes = {"f32", "bf16", "int8"};
  std::vector<std::string> ranks_threads = {"1x1", "1x2", "2x1"};
  std::string plan = "default";
  ModelRunOptions run;  // the tests (lists, repeats, warm-up, limits' sizes)
  std::string out;      // prefix of the files (empty: stdout only)
  // --report FILE.jsonl: no runs; the tables (and with --out, <out>.md and <out>.png) of the model
  // records an earlier run wrote (several runs' files may be concatenated into one).
  std::string report;
  bool png = true;      // with --out: PREFIX.png through bench/plot-model
  std::string mpirun = "mpirun";
  std::string python = "/usr/bin/python3";
  // Passed through to every run (global options).
  std::string collectives = "mpi", overlap = "none", matmul = "auto", attention_kernel = "auto";
  std::optional<int64_t> sliding_window, sink_tokens;  // --sliding-window / --sink-tokens (empty: the model's)
  bool json = false;
};

// The records of one configuration from its model-run output (the limits record and the steps).
std::vector<nlohmann::json> model_records(const nlohmann::json& limits, const std::vector<nlohmann::json>& steps,
                                          const std::string& model);

// Markdown: the full table, ranks vs threads, and the summary (bench/model_bench.cpp).
std::string model_markdown(const std::vector<nlohmann::json>& records);

// Runs the matrix; returns every record.
std::vector<nlohmann::json> run_model_bench(const ModelBenchOptions& opt);

}  // namespace tori::bench
