#pragma once
// SentencePiece tokenizer (Llama-2 / TinyLlama / Mistral style) over libsentencepiece, from a
// Hugging Face checkpoint's tokenizer.model or from a GGUF's tokenizer.ggml.* metadata
// (tokenizer.ggml.model = "llama": tokens, scores, token types).
//
// GGUF: llama.cpp keeps the vocabulary but not the SentencePiece ModelProto, so we rebuild one
// (protobuf wire format, written by hand: libsentencepiece-dev ships no .proto header) as llama.cpp
// tokenises it: a BPE model merged by piece score, byte fallback when the 256 <0xNN> byte pieces are
// present, identity normalisation, spaces escaped as U+2581, a dummy prefix space unless
// tokenizer.ggml.add_space_prefix is false, extra whitespace kept.
//
// encode(): control tokens (<s>, </s>, chat markers of type CONTROL), and user-defined tokens that
// hold a raw space (Gemma 3's whitespace runs), are matched literally first, longest first, as
// llama.cpp and Hugging Face do; the text between them goes to SentencePiece
// (which itself matches user-defined symbols). decode() is ours rather than SentencePiece's so that
// a prefix of a sequence gives raw bytes (SentencePiece would turn an incomplete character into
// U+FFFD): U+2581 -> space, <0xNN> -> that byte, the dummy prefix space of the first piece dropped,
// <unk> -> " \u2047 ", control tokens -> their literal text.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/tokenizer.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tori::models {

class GgufFile;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::string& path);  // tokenizer.model
  static std::unique_ptr<SentencePieceTokenizer> from_gguf(const GgufFile& f);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override;
  int32_t find_token(const std::string& text) const override;
  const std::string& source() const override { return source_; }
  // "llama": pieces, scores, types (read from the serialized model proto) and add_space_prefix.
  GgufVocabulary gguf_vocabulary() const override;

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, std::string source);
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string source_;
  std::vector<int32_t> controls_;  // control (and spaced user-defined) tokens with text, longest first
  bool dummy_prefix_ = true;
};

// The serialized SentencePiece ModelProto of a llama.cpp "llama" vocabulary (exposed for tests).
// types use SentencePiece's numbering, which GGUF shares: 1 normal, 2 unknown, 3 control,
// 4 user-defined, 5 unused, 6 byte.
std::string sentencepiece_model_proto(const std::vector<std::string>& pieces, const std::vector<double>& scores,
                                      const std::vector<int64_t>& types, bool add_dummy_prefix, int32_t unk_id,
                                      int32_t bos_id, int32_t eos_id);

}  // namespace tori::models
