#pragma once
// Byte-level BPE tokenizer (GPT-2 / SmolLM style), read from a GGUF file's tokenizer.ggml.*
// metadata (tokenizer.ggml.model = "gpt2") or from a Hugging Face tokenizer.json (model.type BPE).
//
// encode(): special tokens (GGUF token_type 3 = control or 4 = user-defined; tokenizer.json
// added_tokens) are matched literally first, longest first; the text between them is split by
// the GPT-2 pre-tokenisation regex, implemented by hand:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (with tokenizer.ggml.pre = "smollm", or a tokenizer.json Digits(individual_digits) step, ASCII
// digits are first split off one by one, then the regex runs on the rest); each piece's bytes are mapped to GPT-2's printable code points and
// merged pair by pair, lowest merge rank first. decode() reverses the byte mapping.
//
// Unicode classes are approximate (no ICU tables): letters are ASCII letters, U+00AA, U+00B5,
// U+00BA, U+00C0-U+024F except U+00D7 and U+00F7, and every code point from U+0370 up except the
// punctuation/symbol blocks U+2000-U+2BFF, U+3000-U+303F, U+FE30-U+FE4F, U+FF00-U+FF20 and the
// emoji/symbol planes U+1F000-U+1FAFF; numbers are ASCII digits, U+00B2, U+00B3, U+00B9,
// U+00BC-U+00BE; whitespace is the Unicode White_Space set. Other pre-tokenisers (a tokenizer.json
// with a Split regex such as Llama-3's, or Metaspace, SentencePiece's) are refused with InputError.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/tokenizer.hpp"

namespace tori::models {

class GgufFile;

class BpeTokenizer final : public Tokenizer {
 public:
  // tokens[i] is token i's string (byte-level code points, or a special token's literal text).
  BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges /* "a b" */,
               std::vector<int32_t> special_ids, bool individual_digits, std::string source);
  static BpeTokenizer from_gguf(const GgufFile& f);
  static BpeTokenizer from_tokenizer_json(const std::string& path);

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return int64_t(tokens_.size()); }
  int32_t find_token(const std::string& text) const override;
  const std::string& source() const override { return source_; }
  // "gpt2": tokens, merges by rank, specials as control (3), pre "smollm" when digits are split.
  GgufVocabulary gguf_vocabulary() const override;
  const std::string& token(int32_t id) const;

  // The GPT-2 pre-tokenisation of `text` into pieces (exposed for tests).
  std::vector<std::string> pre_tokenize(const std::string& text) const;

 private:
  static std::vector<std::string> gpt2_split(const std::string& text);
  void bpe(const std::string& piece, std::vector<int32_t>& out) const;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::map<std::pair<std::string, std::string>, int32_t> ranks_;
  std::vector<int32_t> specials_;  // longest text first
  bool individual_digits_ = false;
  std::string source_;
};

}  // namespace tori::models
