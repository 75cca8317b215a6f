// llama_logits: the reference side of models:gemma3_llama_check, a thin command-line shell around
// llama.cpp's own library (libllama: its loader, tokenizer, quantizer and model graphs; no model
// code here). Built only when CMake is given a llama.cpp install (-DTORI_LLAMA_CPP=PREFIX); the
// API used is llama.cpp's of mid-2025 (llama_model_load_from_file, llama_vocab_*, kv_unified).
//
//   llama_logits MODEL to-f32 OUT.gguf      every tensor dequantised to f32 by llama_model_quantize
//                                           (LLAMA_FTYPE_ALL_F32), so that llama.cpp then computes
//                                           in f32 like Tori's f32 weights do
//   llama_logits MODEL tokenize TEXT_FILE   the text's token ids as llama.cpp encodes it (special
//                                           tokens added as the GGUF says, none parsed in the text),
//                                           printed comma-separated on one line
//   llama_logits MODEL logits IDS OUT.f32 [--kv f16|f32]
//                                           one causal pass over IDS ("2,818,5279"): the logits at
//                                           every position, [n, V] little-endian f32 rows; the KV
//                                           cache in f32 unless --kv f16 (llama.cpp's default)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "llama_logits: %s\n", why.c_str());
  std::exit(1);
}

void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level >= GGML_LOG_LEVEL_WARN) std::fputs(text, stderr);
}

std::vector<llama_token> parse_ids(const std::string& s) {
  std::vector<llama_token> ids;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0) die("IDS: '" + item + "' is not a token id");
    ids.push_back(llama_token(v));
  }
  if (ids.empty()) die("IDS: no token ids");
  return ids;
}

llama_model* load(const char* path) {
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(path, mp);
  if (model == nullptr) die(std::string("cannot load ") + path);
  return model;
}

int to_f32(const char* in, const char* out) {
  llama_model_quantize_params qp = llama_model_quantize_default_params();
  qp.ftype = LLAMA_FTYPE_ALL_F32;
  qp.allow_requantize = true;  // the source is quantised: dequantise it
  qp.quantize_output_tensor = true;
  qp.nthread = 2;
  if (llama_model_quantize(in, out, &qp) != 0) die(std::string("llama_model_quantize failed on ") + in);
  return 0;
}

int tokenize(const char* model_path, const char* text_path) {
  std::ifstream f(text_path, std::ios::binary);
  if (!f) die(std::string("cannot read ") + text_path);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  llama_model* model = load(model_path);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::vector<llama_token> ids(text.size() + 8);
  int n = llama_tokenize(vocab, text.data(), int32_t(text.size()), ids.data(), int32_t(ids.size()),
                         /*add_special=*/true, /*parse_special=*/false);
  if (n < 0) die("llama_tokenize failed");
  for (int i = 0; i < n; ++i) std::printf("%s%d", i ? "," : "", ids[size_t(i)]);
  std::printf("\n");
  llama_model_free(model);
  return 0;
}

int logits(const char* model_path, const std::string& ids_arg, const char* out_path, bool kv_f16) {
  std::vector<llama_token> ids = parse_ids(ids_arg);
  const int n = int(ids.size());
  llama_model* model = load(model_path);
  const int vocab_size = llama_vocab_n_tokens(llama_model_get_vocab(model));
  for (llama_token t : ids)
    if (t >= vocab_size) die("IDS: token " + std::to_string(t) + " outside the vocabulary of " + std::to_string(vocab_size));

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = uint32_t(n);
  cp.n_batch = uint32_t(n);
  cp.n_ubatch = uint32_t(n);
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = 2;
  cp.type_k = cp.type_v = kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
  cp.flash_attn = false;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) die("llama_init_from_model failed");

  llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; ++i) {
    batch.token[i] = ids[size_t(i)];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) die("llama_decode failed");

  std::FILE* out = std::fopen(out_path, "wb");
  if (out == nullptr) die(std::string("cannot write ") + out_path);
  for (int i = 0; i < n; ++i) {
    const float* row = llama_get_logits_ith(ctx, i);
    if (row == nullptr) die("no logits for position " + std::to_string(i));
    if (std::fwrite(row, sizeof(float), size_t(vocab_size), out) != size_t(vocab_size)) die("short write");
  }
  if (std::fclose(out) != 0) die(std::string("cannot write ") + out_path);
  std::printf("%d %d\n", n, vocab_size);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: llama_logits MODEL (to-f32 OUT | tokenize TEXT_FILE | logits IDS OUT [--kv f16|f32])");
  llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  const std::string mode = argv[2];
  int rc = 0;
  if (mode == "to-f32" && argc == 4) {
    rc = to_f32(argv[1], argv[3]);
  } else if (mode == "tokenize" && argc == 4) {
    rc = tokenize(argv[1], argv[3]);
  } else if (mode == "logits" && (argc == 5 || argc == 7)) {
    bool kv_f16 = false;
    if (argc == 7) {
      if (std::strcmp(argv[5], "--kv") != 0 || (std::strcmp(argv[6], "f16") != 0 && std::strcmp(argv[6], "f32") != 0))
        die("logits: the only option is --kv f16|f32");
      kv_f16 = std::strcmp(argv[6], "f16") == 0;
    }
    rc = logits(argv[1], argv[3], argv[4], kv_f16);
  } else {
    die("unknown mode or wrong arguments: '" + mode + "' (to-f32 OUT | tokenize TEXT_FILE | logits IDS OUT [--kv f16|f32])");
  }
  llama_backend_free();
  return rc;
}
