#include "launch/run_config.hpp"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>

#include "kernels/error.hpp"
#include "launch/defaults.hpp"
#include "models/text_file.hpp"

namespace tori::launch {

void add_run_flags(CLI::App& app, RunConfig& r) {
  r.model = kDefaultModel;
  r.seed = kDefaultSeed;
  r.prompt_tokens = kDefaultPrompts;
  r.max_new_tokens = kDefaultMaxNewTokens;
  app.add_option("--config", r.config, "run YAML whose keys set any of the options below (flags override it)");
  app.add_option("--model", r.model, "preset name, model YAML file, Hugging Face checkpoint directory or llama.cpp .gguf file")
      ->capture_default_str();
  app.add_option("--seed", r.seed, "seed of the synthetic weights")->capture_default_str();
  app.add_option("--torus", r.torus, "torus shape XxYxZ (default: auto from the rank count)");
  app.add_option("--plan", r.plan,
                 "prefill=FFN/ATTN,decode=FFN/ATTN, one FFN/ATTN for both, 'default' (weight-gathered prefill, "
                 "2D weight-stationary decode, batch-sharded attention where the batch divides) or 'auto' (the "
                 "cost model's fastest on the calibrated local profile; calibrates this machine on first use, as "
                 "$TORI_AUTO_CALIBRATE says: full (default), quick or off)")
      ->capture_default_str();
  app.add_option("--dtype", r.dtype, "weight format: f32|bf16|int8|int4|int4-min (activations f32; bf16 matmuls, and int8 ones over 32 rows, round them to bf16; int4 ones quantise them to s8 per group of 32; int4-min is the Q4_1 form, with a min per group, that GGUF Q4_1 tensors load into exactly)")->capture_default_str();
  app.add_option("--prompt-tokens", r.prompt_tokens, "prompts as token ids: \"1,2,3;4,5\"")->capture_default_str();
  app.add_option("--prompt", r.prompts,
                 "a text prompt (repeatable; needs the model's tokenizer: a checkpoint's tokenizer.json / "
                 "tokenizer.model or a GGUF's metadata); BOS is added when the tokenizer's metadata says so");
  app.add_option("--prompt-file", r.prompt_files,
                 "a text prompt read whole from FILE, bytes as they are (repeatable; after any --prompt, and like "
                 "--prompt it overrides the run YAML's prompts; for prompts past the shell's 128 KiB argument limit)");
  app.add_flag("--chat", r.chat,
               "render each --prompt as one user turn of the model's chat template (ChatML, Llama-2, Llama-3, Zephyr, Gemma) "
               "and stop at the end of the assistant's turn");
  app.add_option("--system", r.system, "the system turn with --chat (default: the template's own, if any)");
  app.add_option("--max-new-tokens", r.max_new_tokens, "tokens to generate per prompt")->capture_default_str();
  app.add_option("--stop-tokens", r.stop_tokens,
                 "token ids that end a sequence: \"0,2\" (with a tokenizer, EOS and end-of-turn always do)");
  app.add_option("--stop", r.stop_strings,
                 "a string that ends a sequence once its text contains it; it and what follows are cut from the "
                 "output (repeatable; needs a tokenizer; \\n, \\t and \\\\ stand for newline, tab, backslash)");
  app.add_option("--temperature", r.temperature, "0 = greedy; > 0 samples")->capture_default_str();
  app.add_option("--top-k", r.top_k, "sample among the k most likely tokens (0 = all)")->capture_default_str();
  app.add_option("--top-p", r.top_p, "sample within the smallest set of probability >= p")->capture_default_str();
  app.add_option("--sample-seed", r.sample_seed, "seed of the sampler (same seed, same tokens on any rank count)")
      ->capture_default_str();
  add_prefill_chunk_flag(app, r.prefill_chunk);
}

void add_prefill_chunk_flag(CLI::App& app, long long& chunk) {
  app.add_option("--prefill-chunk", chunk,
                 "tokens per prefill step over the batch (max(1, N/batch) per sequence; bounds activation "
                 "memory; 0 = the whole prompts in one step)")
      ->capture_default_str();
}

void check_prefill_chunk(long long chunk) {
  if (chunk < 0)
    throw InputError("--prefill-chunk (run YAML key prefill_chunk): " + std::to_string(chunk) +
                     " (allowed: tokens per prefill step over the batch >= 0; 0 = the whole prompts)");
}

namespace {

std::string join_ints(const YAML::Node& n) {
  if (!n.IsSequence()) throw YAML::Exception(YAML::Mark::null_mark(), "a list of token ids");
  std::string s;
  for (size_t i = 0; i < n.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(n[i].as<long long>());
  }
  return s;
}

}  // namespace

void apply_run_yaml(const CLI::App& app, RunConfig& r) {
  if (r.config.empty()) return;
  YAML::Node root;
  try {
    root = YAML::LoadFile(r.config);
  } catch (const YAML::BadFile&) {
    throw InputError("--config: cannot read '" + r.config + "'");
  } catch (const YAML::Exception& e) {
    throw InputError(r.config + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) throw InputError(r.config + ": expected a mapping of run settings");
  // key -> how to apply its YAML value
  using Setter = std::function<void(RunConfig&, const YAML::Node&)>;
  const std::map<std::string, Setter> keys = {
      {"model", [](RunConfig& r, const YAML::Node& n) { r.model = n.as<std::string>(); }},
      {"seed", [](RunConfig& r, const YAML::Node& n) { r.seed = n.as<unsigned long long>(); }},
      {"torus", [](RunConfig& r, const YAML::Node& n) { r.torus = n.as<std::string>(); }},
      {"plan", [](RunConfig& r, const YAML::Node& n) { r.plan = n.as<std::string>(); }},
      {"dtype", [](RunConfig& r, const YAML::Node& n) { r.dtype = n.as<std::string>(); }},
      {"prompts",
       [](RunConfig& r, const YAML::Node& n) {
         if (!n.IsSequence() || n.size() == 0) throw YAML::Exception(YAML::Mark::null_mark(), "a non-empty list");
         if (n[0].IsSequence()) {
           std::string s;
           for (size_t i = 0; i < n.size(); ++i) {
             if (i) s += ';';
             s += join_ints(n[i]);
           }
           r.prompt_tokens = s;
         } else {
           r.prompts = n.as<std::vector<std::string>>();
         }
       }},
      {"max_new_tokens", [](RunConfig& r, const YAML::Node& n) { r.max_new_tokens = n.as<int>(); }},
      {"stop_tokens", [](RunConfig& r, const YAML::Node& n) { r.stop_tokens = join_ints(n); }},
      {"stop_strings", [](RunConfig& r, const YAML::Node& n) { r.stop_strings = n.as<std::vector<std::string>>(); }},
      {"chat", [](RunConfig& r, const YAML::Node& n) { r.chat = n.as<bool>(); }},
      {"system", [](RunConfig& r, const YAML::Node& n) { r.system = n.as<std::string>(); }},
      {"temperature", [](RunConfig& r, const YAML::Node& n) { r.temperature = n.as<double>(); }},
      {"top_k", [](RunConfig& r, const YAML::Node& n) { r.top_k = n.as<long long>(); }},
      {"top_p", [](RunConfig& r, const YAML::Node& n) { r.top_p = n.as<double>(); }},
      {"sample_seed", [](RunConfig& r, const YAML::Node& n) { r.sample_seed = n.as<unsigned long long>(); }},
      {"prefill_chunk", [](RunConfig& r, const YAML::Node& n) { r.prefill_chunk = n.as<long long>(); }},
  };
  // The flag each key is overridden by.
  auto flag_of = [](std::string k) {
    if (k == "prompts") return std::string("--prompt-tokens");
    if (k == "stop_strings") return std::string("--stop");
    for (auto& c : k)
      if (c == '_') c = '-';
    return "--" + k;
  };
  std::string allowed;
  for (auto& [k, _] : keys) {
    if (!allowed.empty()) allowed += ", ";
    allowed += k;
  }
  for (const auto& kv : root) {
    if (!kv.first.IsScalar())  // e.g. "[1]: 2": as<std::string>() would throw yaml-cpp's BadConversion
      throw InputError(r.config + ": line " + std::to_string(kv.first.Mark().line + 1) +
                       ": a key must be a plain string (allowed: " + allowed + ")");
    const std::string k = kv.first.as<std::string>();
    auto it = keys.find(k);
    if (it == keys.end()) throw InputError(r.config + ": key '" + k + "': unknown key (allowed: " + allowed + ")");
    const std::string flag = flag_of(k);
    // The command line wins; the file's value is still checked (into a scratch copy).
    const bool given =
        app.count(flag) > 0 || (k == "prompts" && (app.count("--prompt") > 0 || app.count("--prompt-file") > 0));
    RunConfig scratch = r;
    try {
      it->second(given ? scratch : r, kv.second);
    } catch (const YAML::Exception& e) {
      throw InputError(r.config + ": key '" + k + "': wrong type or value (" + e.msg + ")");
    }
  }
}

void read_prompt_files(RunConfig& r) {
  for (const std::string& path : r.prompt_files) r.prompts.push_back(models::read_text_file(path, "--prompt-file"));
}

}  // namespace tori::launch
