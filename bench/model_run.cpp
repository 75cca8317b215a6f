#include "bench/model_run.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "collectives/max_over_ranks.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "models/context_window.hpp"
#include "planning/cost_model.hpp"
#include "runtime/factored_weights.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::bench {

namespace {

void check_list(const std::vector<int64_t>& v, const std::string& flag, int64_t min) {
  if (v.empty()) throw InputError(flag + ": empty (allowed: a comma-separated list of integers >= " +
                                  std::to_string(min) + ")");
  for (int64_t x : v)
    if (x < min)
      throw InputError(flag + ": " + std::to_string(x) + " (allowed: integers >= " + std::to_string(min) + ")");
}

// B prompts of L tokens, the same on every rank and in every repetition.
std::vector<models::TokenIds> prompts_of(int64_t batch, int64_t len, int64_t vocab) {
  std::vector<models::TokenIds> p(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < len; ++i) p[size_t(b)].push_back(int32_t((b * 131 + i * 7 + 1) % vocab));
  return p;
}

// The slowest rank's time of fn, all ranks starting together.
template <class F>
double timed(F&& fn) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = kernels::now_s();
  fn();
  return collectives::max_over_ranks(kernels::now_s() - t0);
}

// Model FLOPs and bytes (weights + KV cache read) of one step on one chip with no redundancy; a TSVD
// checkpoint run factored counts its factors' FLOPs and bytes (what the run multiplies and reads).
struct Work {
  double flops = 0, bytes = 0;
};
Work work_of(const models::ModelConfig& c, const runtime::Plan& plan, bool prefill, int64_t batch, int64_t tokens,
             int64_t cached, kernels::WeightFormat wf, const std::optional<runtime::TsvdPricing>& tsvd) {
  planning::StepQuery q;
  q.config = c;
  q.shape = collectives::TorusShape{};  // 1x1x1
  q.plan = prefill ? plan.prefill : plan.decode;
  if (prefill) q.decode_plan = plan.decode;
  q.prefill = prefill;
  q.batch = batch;
  q.tokens = tokens;
  q.cached = cached;
  q.weights = wf;
  q.tsvd = tsvd;
  const planning::StepCost s = planning::predict_step(q);
  // Factored: the step's own FLOPs on the 1x1x1 torus (no redundancy), the factors' products; the
  // dense model's count would put MFU above 1 at ratio 8.
  return {q.tsvd ? s.step.flops : s.model_flops, s.step.weight_bytes + s.step.kv_bytes};
}

}  // namespace

void validate_model_run(const ModelRunOptions& o, int64_t max_seq) {
  check_list(o.prompt_lens, "--prompt-lens", 1);
  check_list(o.prefill_batches, "--prefill-batches", 1);
  check_list(o.decode_batches, "--batches", 1);
  check_list(o.contexts, "--contexts", 1);
  check_list(o.gen_lens, "--gen-lens", 1);
  if (o.repeats < 1) throw InputError("--repeats: " + std::to_string(o.repeats) + " (allowed: 1 or more)");
  if (o.warmup < 0) throw InputError("--warmup: " + std::to_string(o.warmup) + " (allowed: 0 or more)");
  if (o.limit_options.gemm_size < 64)
    throw InputError("--limits-gemm: " + std::to_string(o.limit_options.gemm_size) + " (allowed: 64 or more)");
  if (o.limit_options.stream_mib != 0 && o.limit_options.stream_mib < 8)
    throw InputError("--limits-stream-mib: " + std::to_string(o.limit_options.stream_mib) +
                     " (allowed: 0 for twice the last-level cache, or 8 or more)");
  if (o.limit_options.repeats < 1)
    throw InputError("--limits-repeats: " + std::to_string(o.limit_options.repeats) + " (allowed: 1 or more)");
  const int64_t p = *std::max_element(o.prompt_lens.begin(), o.prompt_lens.end());
  if (p > max_seq)
    throw InputError("--prompt-lens: " + std::to_string(p) + " tokens exceed the model's max_seq " +
                     std::to_string(max_seq) + " (allowed: 1 to " + std::to_string(max_seq) + ")");
  const int64_t d = *std::max_element(o.contexts.begin(), o.contexts.end()) +
                    *std::max_element(o.gen_lens.begin(), o.gen_lens.end());
  if (d > max_seq)
    throw InputError("--contexts + --gen-lens: " + std::to_string(d) + " tokens per sequence exceed the model's "
                     "max_seq " + std::to_string(max_seq) + " (allowed: context + generated length <= max_seq)");
}

int run_model_run(const models::WeightSource& source, const ModelRunOptions& o) {
  const models::ModelConfig& cfg = source.config();
  validate_model_run(o, cfg.max_seq);
  const std::optional<runtime::TsvdPricing> tsvd = runtime::run_pricing(source, o.shard.format);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const auto out = [&](nlohmann::json rec) {
    if (rank != 0) return;
    rec["ranks"] = ranks;
    rec["threads"] = o.threads;
    rec["dtype"] = o.dtype;
    if (o.json) {
      kernels::emit(rec);
    } else {
      std::printf("%s\n", rec.dump().c_str());
      std::fflush(stdout);
    }
  };

  if (o.limits) {
    // Every rank at once, as the run itself computes and reads: the box's limits for this split.
    MPI_Barrier(MPI_COMM_WORLD);
    const planning::MachineLimits m = planning::measure_machine_limits(o.limit_options);
    double v[5] = {m.f32_gflops, m.bf16_gflops, m.int8_gops, m.read_gbps, m.triad_gbps}, sum[5];
    MPI_Allreduce(v, sum, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    out({{"bench", "model_limits"}, {"cpu_features", m.cpu_features}, {"peak_gflops_f32", sum[0]},
         {"peak_gflops_bf16", sum[1]}, {"peak_gops_int8", sum[2]}, {"read_gbps", sum[3]},
         {"triad_gbps", sum[4]}, {"gemm_size", o.limit_options.gemm_size},
         {"stream_mib", m.stream_mib}, {"loadavg_1m", planning::load_average_1m()}});
  }

  std::set<int64_t> batches(o.prefill_batches.begin(), o.prefill_batches.end());
  batches.insert(o.decode_batches.begin(), o.decode_batches.end());
  const int64_t max_gen = *std::max_element(o.gen_lens.begin(), o.gen_lens.end());
  for (int64_t batch : batches) {
    const bool prefills = std::count(o.prefill_batches.begin(), o.prefill_batches.end(), batch) > 0;
    const bool decodes = std::count(o.decode_batches.begin(), o.decode_batches.end(), batch) > 0;
    int64_t longest = 1, longest_prompt = 1;
    if (prefills) longest_prompt = longest = *std::max_element(o.prompt_lens.begin(), o.prompt_lens.end());
    if (decodes) {
      const int64_t ctx = *std::max_element(o.contexts.begin(), o.contexts.end());
      longest = std::max(longest, ctx + max_gen);
      longest_prompt = std::max(longest_prompt, ctx);
    }
    const models::ContextWindow window(source, longest);
    const runtime::Plan plan = o.plan_for(batch, longest_prompt, max_gen);
    collectives::Torus torus(MPI_COMM_WORLD, o.torus);
    collectives::Collectives coll(torus, o.collectives);
    runtime::ShardedModel model(window, coll, plan, batch, o.shard);
    const auto record = [&](const char* phase, int64_t prompt_len, int64_t context, int64_t gen_len,
                            int64_t tokens, const std::vector<double>& times, const Work& w) {
      out({{"bench", "model_step"}, {"model", cfg.name}, {"phase", phase}, {"plan", plan.str()},
           {"torus", torus.shape().str()}, {"batch", batch}, {"prompt_len", prompt_len}, {"context", context},
           {"gen_len", gen_len}, {"tokens", tokens}, {"repeats", o.repeats}, {"warmup", o.warmup},
           {"times_s", times}, {"median_s", kernels::median(times)}, {"model_flops", w.flops},
           {"model_bytes", w.bytes}, {"sliding_window", cfg.sliding_window}, {"sink_tokens", cfg.sink_tokens},
           {"attention_kernel", runtime::attention_kernel_name(o.shard.attention_kernel)},
           {"loadavg_1m", planning::load_average_1m()}});
    };
    if (prefills)
      for (int64_t P : o.prompt_lens) {
        const auto prompts = prompts_of(batch, P, cfg.vocab);
        std::vector<double> times;
        for (int r = 0; r < o.warmup + o.repeats; ++r) {
          model.reset();
          const double t = timed([&] { model.prefill(prompts); });
          if (r >= o.warmup) times.push_back(t);
        }
        record("prefill", P, 0, 0, batch * P, times,
               work_of(cfg, plan, true, batch, P, 0, o.shard.format, tsvd));
      }
    if (decodes)
      for (int64_t C : o.contexts) {
        const auto prompts = prompts_of(batch, C, cfg.vocab);
        for (int64_t G : o.gen_lens) {
          std::vector<double> times;
          for (int r = 0; r < o.warmup + o.repeats; ++r) {
            model.reset();
            model.prefill(prompts);
            const double t = timed([&] {
              for (int64_t i = 0; i < G; ++i) {
                models::TokenIds next(static_cast<size_t>(batch));
                for (int64_t b = 0; b < batch; ++b) next[size_t(b)] = int32_t((b * 17 + (C + i) * 3 + 2) % cfg.vocab);
                model.decode(next);
              }
            });
            if (r >= o.warmup) times.push_back(t);
          }
          Work w;
          for (int64_t i = 0; i < G; ++i) {
            const Work s = work_of(cfg, plan, false, batch, 1, C + i, o.shard.format, tsvd);
            w.flops += s.flops, w.bytes += s.bytes;
          }
          record("decode", 0, C, G, batch * G, times, w);
        }
      }
  }
  return 0;
}

}  // namespace tori::bench
