// Greedy token ids from llama.cpp's library, for tests/models/gguf_export_llama_check.py (built by
// that script against a llama.cpp checkout; not part of Tori's build). Usage:
//   llama_greedy_ids MODEL.gguf N_PREDICT PROMPT
// Tokenizes PROMPT as llama-simple does (special tokens added and parsed), decodes greedily N_PREDICT
// tokens (fewer at an end-of-generation token) and prints one JSON line:
//   {"prompt": [ids], "generated": [ids]}
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT PROMPT\n", argv[0]);
    return 2;
  }
  const std::string prompt = argv[3];
  const int n_predict = std::atoi(argv[2]);
  ggml_backend_load_all();
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model) {
    std::fprintf(stderr, "error: llama.cpp cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_prompt = -llama_tokenize(vocab, prompt.c_str(), int32_t(prompt.size()), nullptr, 0, true, true);
  std::vector<llama_token> ids(static_cast<size_t>(n_prompt));
  if (llama_tokenize(vocab, prompt.c_str(), int32_t(prompt.size()), ids.data(), n_prompt, true, true) < 0) return 1;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = uint32_t(n_prompt + n_predict);
  cp.n_batch = uint32_t(n_prompt);
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  llama_sampler* greedy = llama_sampler_chain_init(llama_sampler_chain_default_params());
  llama_sampler_chain_add(greedy, llama_sampler_init_greedy());
  std::vector<llama_token> out;
  llama_batch batch = llama_batch_get_one(ids.data(), int32_t(ids.size()));
  llama_token next = 0;
  while (int(out.size()) < n_predict) {
    if (llama_decode(ctx, batch)) return 1;
    next = llama_sampler_sample(greedy, ctx, -1);
    out.push_back(next);
    if (llama_vocab_is_eog(vocab, next)) break;
    batch = llama_batch_get_one(&next, 1);
  }
  std::string json = "{\"prompt\": [";
  for (size_t i = 0; i < ids.size(); ++i) json += (i ? ", " : "") + std::to_string(ids[i]);
  json += "], \"generated\": [";
  for (size_t i = 0; i < out.size(); ++i) json += (i ? ", " : "") + std::to_string(out[i]);
  std::printf("%s]}\n", json.c_str());
  llama_sampler_free(greedy);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
