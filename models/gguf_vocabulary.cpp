#include "models/gguf_vocabulary.hpp"
#include "models/gguf_checkpoint.hpp"

#include <cstdio>

#include "kernels/error.hpp"
#include "models/tokenizer.hpp"

namespace tori::models {

namespace {

GgufValue string_value(const std::string& s) {
  GgufValue v;
  v.type = GgufType::string;
  v.s = s;
  return v;
}
GgufValue u32_value(int64_t i) {
  GgufValue v;
  v.type = GgufType::u32;
  v.i = i;
  return v;
}
GgufValue bool_value(bool b) {
  GgufValue v;
  v.type = GgufType::boolean;
  v.i = b;
  return v;
}
GgufValue array_value(GgufType elem) {
  GgufValue v;
  v.type = GgufType::array;
  v.elem = elem;
  return v;
}


// Pads `v` to `vocab` tokens with unused "[PAD<i>]" tokens; refuses a vocabulary longer than the model's.
void pad_to(GgufVocabulary& v, int64_t vocab, const std::string& source) {
  if (int64_t(v.tokens.size()) > vocab)
    throw InputError(source + ": the tokenizer has " + std::to_string(v.tokens.size()) +
                     " tokens but the model's embedding has " + std::to_string(vocab) + " rows");
  for (int64_t i = int64_t(v.tokens.size()); i < vocab; ++i) {
    v.tokens.push_back("[PAD" + std::to_string(i) + "]");
    v.types.push_back(5);
    if (v.model == "llama") v.scores.push_back(0.0f);
  }
}

GgufMetadata vocabulary_metadata(const GgufVocabulary& v) {
  GgufMetadata kv;
  kv.emplace_back("tokenizer.ggml.model", string_value(v.model));
  if (v.model == "gpt2") kv.emplace_back("tokenizer.ggml.pre", string_value(v.pre));
  GgufValue tokens = array_value(GgufType::string);
  tokens.strings = v.tokens;
  kv.emplace_back("tokenizer.ggml.tokens", tokens);
  if (v.model == "llama") {
    GgufValue scores = array_value(GgufType::f32);
    scores.floats.assign(v.scores.begin(), v.scores.end());
    kv.emplace_back("tokenizer.ggml.scores", scores);
  }
  GgufValue types = array_value(GgufType::i32);
  types.ints.assign(v.types.begin(), v.types.end());
  kv.emplace_back("tokenizer.ggml.token_type", types);
  if (v.model == "gpt2") {
    GgufValue merges = array_value(GgufType::string);
    merges.strings = v.merges;
    kv.emplace_back("tokenizer.ggml.merges", merges);
  }
  if (v.model == "llama") kv.emplace_back("tokenizer.ggml.add_space_prefix", bool_value(v.add_space_prefix));
  return kv;
}

}  // namespace

GgufVocabulary placeholder_vocabulary(int64_t vocab) {
  if (vocab < 3)
    throw InputError("a placeholder vocabulary needs at least 3 tokens (<unk>, <s>, </s>); the model has " +
                     std::to_string(vocab));
  GgufVocabulary v;
  v.model = "llama";
  v.add_space_prefix = true;
  auto put = [&](const std::string& piece, int32_t type) {
    v.tokens.push_back(piece);
    v.types.push_back(type);
    v.scores.push_back(0.0f);
  };
  put("<unk>", 2);
  put("<s>", 3);
  put("</s>", 3);
  for (int b = 0; b < 256 && int64_t(v.tokens.size()) < vocab; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", b);
    put(piece, 6);
  }
  while (int64_t(v.tokens.size()) < vocab) put("<tori_placeholder_" + std::to_string(v.tokens.size()) + ">", 5);
  return v;
}

GgufMetadata gguf_tokenizer_metadata(const Tokenizer& t, int64_t vocab) {
  GgufVocabulary v = t.gguf_vocabulary();
  pad_to(v, vocab, t.source());
  GgufMetadata kv = vocabulary_metadata(v);
  if (v.model == "llama") kv.emplace_back("tokenizer.ggml.unknown_token_id", u32_value(0));
  if (t.bos_id >= 0) kv.emplace_back("tokenizer.ggml.bos_token_id", u32_value(t.bos_id));
  if (t.eos_id >= 0) kv.emplace_back("tokenizer.ggml.eos_token_id", u32_value(t.eos_id));
  if (t.eot_id >= 0) kv.emplace_back("tokenizer.ggml.eot_token_id", u32_value(t.eot_id));
  kv.emplace_back("tokenizer.ggml.add_bos_token", bool_value(t.add_bos));
  if (!t.chat_template.empty()) kv.emplace_back("tokenizer.chat_template", string_value(t.chat_template));
  return kv;
}

GgufMetadata gguf_tokenizer_metadata(const std::string& model, int64_t vocab) {
  if (is_gguf_path(model)) {
    const GgufFile f(model);
    GgufMetadata kv;
    for (const auto& [key, value] : f.metadata())
      if (key.rfind("tokenizer.", 0) == 0) kv.emplace_back(key, value);
    if (!kv.empty()) return kv;
  } else if (auto t = open_tokenizer(model)) {
    return gguf_tokenizer_metadata(*t, vocab);
  }
  GgufMetadata kv = vocabulary_metadata(placeholder_vocabulary(vocab));
  kv.emplace_back("tokenizer.ggml.unknown_token_id", u32_value(0));
  kv.emplace_back("tokenizer.ggml.bos_token_id", u32_value(1));
  kv.emplace_back("tokenizer.ggml.eos_token_id", u32_value(2));
  kv.emplace_back("tori.vocabulary", string_value("placeholder: synthetic weights have no vocabulary of text"));
  return kv;
}

}  // namespace tori::models
