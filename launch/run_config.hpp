#pragma once
// The settings of a `tori generate` run: a run YAML (--config run.yaml) gives any of them, and a
// flag given on the command line overrides the YAML. Keys and flags share names (key max_new_tokens
// is flag --max-new-tokens). Unknown keys and wrong types are errors naming the file and the key.
//
//   model: llama-tiny            # preset, model YAML, Hugging Face checkpoint directory or .gguf
//   seed: 1234                   # synthetic weights
//   torus: 2x2x2                 # or auto
//   plan: prefill=wg_xyz/batch:xyz,decode=ws2d/batch:xyz   # or default, or auto
//   dtype: f32                   # weights: f32 | bf16 | int8
//   prompts: [[1, 2, 3], [4, 5]] # token ids, or text: ["Hello", "Why?"] (needs the model's tokenizer)
//   chat: true                   # text prompts as one user turn of the model's chat template
//   system: "You are terse."     # the system turn with chat (default: the template's own, if any)
//   max_new_tokens: 16
//   stop_tokens: [0]             # EOS / end-of-turn are added for models with a tokenizer
//   stop_strings: ["\n\n"]       # text that ends a sequence (cut from the output)
//   temperature: 0.8             # 0 = greedy
//   top_k: 40
//   top_p: 0.95
//   sample_seed: 7
//   prefill_chunk: 2048          # tokens per prefill step over the batch (0 = the whole prompts)
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace tori::launch {

struct RunConfig {
  std::string config;  // the run YAML, if any
  std::string model;
  unsigned long long seed = 0;
  std::string torus;
  std::string plan = "default";
  std::string dtype = "f32";
  std::string prompt_tokens;         // "1,2,3;4,5"
  std::vector<std::string> prompts;  // text prompts
  std::vector<std::string> prompt_files;  // --prompt-file: text prompts read whole from files
  bool chat = false;                 // apply the chat template to each text prompt
  std::string system;                // system turn with chat
  int max_new_tokens = 16;
  std::string stop_tokens;  // "0,2"
  std::vector<std::string> stop_strings;
  double temperature = 0.0;
  long long top_k = 0;
  double top_p = 1.0;
  unsigned long long sample_seed = 0;
  long long prefill_chunk = 2048;  // runtime::ShardOptions::kDefaultPrefillChunk (asserted in cmd_generate.cpp; this file stays free of MPI for the fuzz targets)
};

// --prefill-chunk N (generate and verify; runtime::ShardOptions::prefill_chunk).
void add_prefill_chunk_flag(CLI::App& app, long long& chunk);
// Throws InputError naming the flag and key unless chunk >= 0.
void check_prefill_chunk(long long chunk);
// Registers every setting as a flag of `app`.
void add_run_flags(CLI::App& app, RunConfig& r);
// Loads r.config (if set) into every setting whose flag was not given on the command line.
void apply_run_yaml(const CLI::App& app, RunConfig& r);
// Appends each --prompt-file's whole content to r.prompts (after --prompt's); InputError naming the
// flag and the file when one cannot be read or is empty.
void read_prompt_files(RunConfig& r);

}  // namespace tori::launch
