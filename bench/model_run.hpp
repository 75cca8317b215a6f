#pragma once
// `tori bench model-run`: one configuration (this mpirun job's ranks × --threads, one weight
// format) of `tori bench model` (bench/model_bench.hpp), which launches it. Every rank calls it;
// rank 0 prints JSON lines (text lines without --json):
//   {"bench":"model_limits", ranks, threads, peak_gflops_f32, peak_gflops_bf16, peak_gops_int8,
//    read_gbps, triad_gbps, loadavg_1m}
//     the machine's limits as this configuration uses it: every rank runs
//     planning::measure_machine_limits with its threads at the same time (the GEMM peaks and the
//     read-only stream), and the figures are summed over the ranks. Measured before the model is
//     loaded, in the same job as the steps they are compared with.
//   {"bench":"model_step", phase, plan, batch, prompt_len, context, gen_len, tokens, times_s,
//    median_s, model_flops, model_bytes, sliding_window, sink_tokens, attention_kernel, loadavg_1m,
//    ...}
//     prefill (B sequences × P prompt tokens: reset, then prefill; tokens = B·P) or decode (B
//     sequences each prefilled untimed with C = context tokens, then G = gen_len decode steps timed
//     together; tokens = B·G). `warmup` untimed repetitions first (first-call costs: primitive
//     creation, page faults, thread start), then `repeats` timed ones; times_s holds each timed
//     repetition's slowest-rank time, median_s their median. model_flops and model_bytes are the
//     work of those tokens on one chip with no redundancy (planning::predict_step at 1x1x1: every
//     matmul and attention; the weights read once per step in the run's format plus the KV cache
//     read), summed over the G decode steps: MFU's and MBU's numerators.
// One ShardedModel per batch size (prefill and decode tests of that batch share it), its KV cache
// sized to the longest sequence the tests of that batch reach (models::ContextWindow).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "collectives/collectives.hpp"
#include "models/weight_source.hpp"
#include "planning/machine_limits.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/plan.hpp"

namespace tori::bench {

struct ModelRunOptions {
  std::string torus;           // --torus value ("" = auto)
  std::string dtype = "f32";   // weight format as given (shard.format is the parsed one)
  std::vector<int64_t> prompt_lens = {128};   // prefill tests: tokens per sequence
  std::vector<int64_t> prefill_batches = {1};  // prefill tests: sequences
  std::vector<int64_t> decode_batches = {1};   // decode tests: sequences
  std::vector<int64_t> contexts = {16};        // decode tests: tokens in each cache before the timed steps
  std::vector<int64_t> gen_lens = {16};        // decode tests: steps timed together
  int repeats = 3;  // >= 1
  int warmup = 1;   // >= 0
  bool limits = true;  // measure the model_limits record
  planning::MachineLimitsOptions limit_options;
  // The plan for a batch size (launch resolves `default`, `auto` or a plan text).
  std::function<runtime::Plan(int64_t batch, int64_t prompt_len, int64_t gen_len)> plan_for;
  collectives::CollectivesOptions collectives;
  runtime::ShardOptions shard;
  int threads = 1;  // recorded
  bool json = false;
};

// Checks the lists and counts (InputError naming the flag) — before anything is launched or loaded.
void validate_model_run(const ModelRunOptions& opt, int64_t max_seq);

// Runs the tests on MPI_COMM_WORLD (every rank calls it). Returns 0.
int run_model_run(const models::WeightSource& model, const ModelRunOptions& opt);

}  // namespace tori::bench
