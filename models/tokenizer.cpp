#include "models/tokenizer.hpp"
#include "models/tsvd_checkpoint.hpp"

#include <filesystem>

#include "kernels/error.hpp"
#include "models/bpe_tokenizer.hpp"
#include "models/gguf_checkpoint.hpp"
#include "models/gguf_file.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/json_file.hpp"
#include "models/sentencepiece_tokenizer.hpp"

namespace tori::models {

namespace fs = std::filesystem;

std::vector<int32_t> Tokenizer::encode_prompt(const std::string& text) const {
  std::vector<int32_t> ids;
  if (add_bos && bos_id >= 0) ids.push_back(bos_id);
  for (int32_t id : encode(text)) ids.push_back(id);
  return ids;
}

std::vector<int32_t> Tokenizer::end_ids() const {
  std::vector<int32_t> ids;
  for (int32_t id : {eos_id, eot_id})
    if (id >= 0 && id < vocab_size() && (ids.empty() || ids[0] != id)) ids.push_back(id);
  return ids;
}

void read_gguf_specials(const GgufFile& f, Tokenizer& t) {
  t.bos_id = int32_t(f.get_int("tokenizer.ggml.bos_token_id", t.bos_id));
  t.eos_id = int32_t(f.get_int("tokenizer.ggml.eos_token_id", t.eos_id));
  t.eot_id = int32_t(f.get_int("tokenizer.ggml.eot_token_id", t.eot_id));
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"})
    if (f.find(key) && (f.get_int(key) < 0 || f.get_int(key) >= t.vocab_size()))
      throw InputError(f.path() + ": " + key + " = " + std::to_string(f.get_int(key)) +
                       " is outside the vocabulary [0, " + std::to_string(t.vocab_size()) + ")");
  const bool spm = f.get_string("tokenizer.ggml.model", "") == "llama";
  t.add_bos = f.get_int("tokenizer.ggml.add_bos_token", spm) != 0;
  t.chat_template = f.get_string("tokenizer.chat_template", "");
}

namespace {

// tokenizer_config.json / config.json token fields: a string, {"content": string}, or an id (in
// the vocabulary). `where`: the file and key, for the error.
int32_t token_of(const Tokenizer& t, const nlohmann::json& v, const std::string& where) {
  if (v.is_number_integer()) {
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= t.vocab_size())
      throw InputError(where + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                       std::to_string(t.vocab_size()) + ")");
    return int32_t(id);
  }
  if (v.is_array() && !v.empty()) return token_of(t, v[0], where);  // eos_token_id: [a, b]: the first
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return t.find_token(v["content"].get<std::string>());
  if (v.is_string()) return t.find_token(v.get<std::string>());
  if (v.is_null()) return -1;
  throw InputError(where + ": " + v.dump().substr(0, 40) +
                   " is not a token (allowed: a token's text, {\"content\": text} or a token id)");
}

// A Hugging Face directory: tokenizer.model, else tokenizer.json; then the special tokens, add_bos
// and chat template from tokenizer_config.json (config.json's ids when it has none).
std::unique_ptr<Tokenizer> open_hf_tokenizer(const fs::path& dir) {
  std::unique_ptr<Tokenizer> t;
  if (fs::exists(dir / "tokenizer.model"))
    t = SentencePieceTokenizer::from_file((dir / "tokenizer.model").string());
  else if (fs::exists(dir / "tokenizer.json"))
    t = std::make_unique<BpeTokenizer>(BpeTokenizer::from_tokenizer_json((dir / "tokenizer.json").string()));
  else
    return nullptr;
  const fs::path cfg_path = dir / "tokenizer_config.json", model_cfg = dir / "config.json";
  nlohmann::json cfg = fs::exists(cfg_path) ? read_json_file(cfg_path.string()) : nlohmann::json::object();
  nlohmann::json model = fs::exists(model_cfg) ? read_json_file(model_cfg.string()) : nlohmann::json::object();
  if (!cfg.is_object()) throw InputError(cfg_path.string() + ": expected a JSON object");
  auto pick = [&](const char* token_key, const char* id_key, int32_t& out) {
    int32_t id = cfg.contains(token_key) ? token_of(*t, cfg[token_key], cfg_path.string() + ": key '" + token_key + "'") : -1;
    if (id < 0 && model.is_object() && model.contains(id_key))
      id = token_of(*t, model[id_key], model_cfg.string() + ": key '" + id_key + "'");
    if (id >= 0) out = id;
  };
  pick("bos_token", "bos_token_id", t->bos_id);
  pick("eos_token", "eos_token_id", t->eos_id);
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) t->add_bos = cfg["add_bos_token"].get<bool>();
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string())
    t->chat_template = cfg["chat_template"].get<std::string>();
  return t;
}

}  // namespace

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& model) {
  if (is_tsvd_checkpoint(model)) return open_tokenizer(tsvd_source_model(model));
  if (is_gguf_path(model)) {
    GgufFile f(model);
    if (!f.find("tokenizer.ggml.model")) return nullptr;
    // A placeholder vocabulary (gguf_vocabulary.hpp: synthetic weights exported for llama.cpp)
    // carries no text: prompts stay token ids, as for the synthetic source.
    if (f.get_string("tori.vocabulary", "").rfind("placeholder", 0) == 0) return nullptr;
    const std::string kind = f.get_string("tokenizer.ggml.model");
    if (kind == "gpt2") return std::make_unique<BpeTokenizer>(BpeTokenizer::from_gguf(f));
    if (kind == "llama") return SentencePieceTokenizer::from_gguf(f);
    throw InputError(model + ": tokenizer.ggml.model = '" + kind + "' is not supported (allowed: gpt2, llama)");
  }
  if (is_checkpoint_dir(model)) return open_hf_tokenizer(model);
  return nullptr;
}

}  // namespace tori::models
