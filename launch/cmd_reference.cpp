// `tori reference`: greedy generation with the single-process Reference model (no MPI, no oneDNN).
// The ground truth for every sharded layout; --logits-out dumps every logit for independent checks.
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "models/prompts.hpp"
#include "models/reference_model.hpp"
#include "models/safetensors_writer.hpp"
#include "models/hf_checkpoint.hpp"

namespace tori::launch {

namespace {

struct ReferenceOptions {
  std::string model = kDefaultModel;
  unsigned long long seed = kDefaultSeed;
  std::string prompts = kDefaultPrompts;
  int max_new = kDefaultMaxNewTokens;
  std::string logits_out;
};

// Sum and L2 norm of a logits tensor: a cheap fingerprint to compare runs step by step.
nlohmann::json checksum(const kernels::Tensor& t) {
  double sum = 0, ss = 0;
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) sum += p[i], ss += double(p[i]) * p[i];
  return {{"logits_sum", sum}, {"logits_l2", std::sqrt(ss)}};
}

int run_reference(const ReferenceOptions& o, const GlobalOptions& g) {
  auto source = models::open_model(o.model, o.seed);
  const models::ModelConfig& cfg = source->config();
  auto prompts = models::parse_prompt_tokens(o.prompts, cfg.vocab, "--prompt-tokens");
  if (g.rank != 0) return 0;  // single-process by design; other ranks of an mpirun just wait
  const models::WeightSource& weights = *source;
  spdlog::info("reference: model {} ({} layers, E={}, H={}, K={}, F={}, V={}), seed {}, batch {}",
               cfg.name, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff, cfg.vocab,
               o.seed, prompts.size());
  models::ReferenceModel model(weights);
  models::GreedyResult r = models::greedy_generate(model, prompts, o.max_new);

  int64_t prompt_tokens = 0;
  for (auto& p : prompts) prompt_tokens += static_cast<int64_t>(p.size());
  const double decode_per_token = o.max_new > 1 ? r.decode_s / (o.max_new - 1) : 0.0;
  if (g.json) {
    for (size_t b = 0; b < prompts.size(); ++b) {
      nlohmann::json rec = {{"bench", "reference"}, {"phase", "prefill"}, {"step", 0},
                            {"sequence", b},         {"tokens", {r.generated[b][0]}}};
      rec.update(checksum(r.prefill_logits[b]));
      kernels::emit(rec);
    }
    for (size_t s = 0; s < r.decode_logits.size(); ++s) {
      nlohmann::json toks = nlohmann::json::array();
      for (auto& gen : r.generated) toks.push_back(gen[s + 1]);
      nlohmann::json rec = {{"bench", "reference"}, {"phase", "decode"}, {"step", s + 1}, {"tokens", toks}};
      rec.update(checksum(r.decode_logits[s]));
      kernels::emit(rec);
    }
    for (size_t b = 0; b < prompts.size(); ++b)
      kernels::emit({{"bench", "reference"}, {"sequence", b}, {"prompt", prompts[b]}, {"generated", r.generated[b]}});
    kernels::emit({{"bench", "reference"}, {"model", cfg.name}, {"seed", o.seed}, {"batch", prompts.size()},
                 {"prompt_tokens", prompt_tokens}, {"new_tokens", o.max_new}, {"prefill_s", r.prefill_s},
                 {"decode_s_per_token", decode_per_token}});
  } else {
    for (size_t b = 0; b < prompts.size(); ++b)
      std::printf("prompt %zu: %s\n  -> %s\n", b, models::format_tokens(prompts[b]).c_str(),
                  models::format_tokens(r.generated[b]).c_str());
    std::printf("prefill: %.3f ms for %lld tokens; decode: %.3f ms/step (batch %zu)\n", r.prefill_s * 1e3,
                static_cast<long long>(prompt_tokens), decode_per_token * 1e3, prompts.size());
  }
  if (!o.logits_out.empty()) {
    models::NamedTensors out;
    for (size_t b = 0; b < prompts.size(); ++b) {
      out.emplace_back("prefill." + std::to_string(b), r.prefill_logits[b]);
      kernels::Tensor ids({static_cast<int64_t>(prompts[b].size())}, kernels::DType::f32);
      for (size_t i = 0; i < prompts[b].size(); ++i) ids.set(int64_t(i), float(prompts[b][i]));
      out.emplace_back("prompt." + std::to_string(b), ids);
      kernels::Tensor gen({static_cast<int64_t>(r.generated[b].size())}, kernels::DType::f32);
      for (size_t i = 0; i < r.generated[b].size(); ++i) gen.set(int64_t(i), float(r.generated[b][i]));
      out.emplace_back("generated." + std::to_string(b), gen);
    }
    for (size_t s = 0; s < r.decode_logits.size(); ++s)
      out.emplace_back("decode." + std::to_string(s + 1), r.decode_logits[s]);
    models::write_safetensors(o.logits_out, out, {{"model", cfg.name}, {"seed", std::to_string(o.seed)}});
    spdlog::info("wrote logits to {}", o.logits_out);
  }
  return 0;
}

}  // namespace

void add_reference_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<ReferenceOptions>();
  CLI::App* app = parent.add_subcommand(
      "reference", "greedy generation with the single-process reference model (the ground truth)");
  app->add_option("--model", o->model, "preset name, model YAML file or Hugging Face checkpoint directory")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the synthetic weights")->capture_default_str();
  app->add_option("--prompt-tokens", o->prompts, "prompts as token ids: \"1,2,3;4,5\"")->capture_default_str();
  app->add_option("--max-new-tokens", o->max_new, "tokens to generate per prompt")->capture_default_str();
  app->add_option("--logits-out", o->logits_out,
                  "write every logit (prefill.B [L,V], decode.S [B,V]) and the tokens to this .safetensors");
  out.push_back({app, [o](const GlobalOptions& g) { return run_reference(*o, g); }});
}

}  // namespace tori::launch
