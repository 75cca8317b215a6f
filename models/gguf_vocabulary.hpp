#pragma once
// The tokenizer.* metadata of a GGUF file Tori writes (`tori export --format gguf`), so that
// llama.cpp, which refuses a file without tokenizer.ggml.model, loads and runs it:
//   - a .gguf source: its own tokenizer.* keys, copied verbatim (nothing is lost);
//   - a source with a Tokenizer (a Hugging Face directory): its vocabulary as llama.cpp's
//     convert_hf_to_gguf.py writes it: tokenizer.json -> "gpt2" (tokens, merges by rank, token
//     types, tokenizer.ggml.pre "gpt-2" or "smollm" for digit-splitting vocabularies),
//     tokenizer.model -> "llama" (pieces, scores, types, add_space_prefix); then the special ids,
//     add_bos_token and the chat template;
//   - no tokenizer (synthetic weights): a placeholder SentencePiece ("llama") vocabulary of <unk>,
//     <s>, </s>, the 256 byte pieces <0x00>..<0xFF> (as many as fit) and unused
//     "<tori_placeholder_i>" pieces, so any text encodes (byte by byte) and generation runs; the key
//     tori.vocabulary = "placeholder" says the vocabulary carries no meaning.
// A vocabulary shorter than the model's is padded with unused "[PAD<i>]" tokens (as
// convert_hf_to_gguf.py does), since llama.cpp sizes the embedding by the token count; a longer one
// is an InputError.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/gguf_file.hpp"

namespace tori::models {

class Tokenizer;

// A vocabulary in llama.cpp's terms. types use GGUF's (and SentencePiece's) numbering:
// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
struct GgufVocabulary {
  std::string model;                // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre;                  // tokenizer.ggml.pre, "gpt2" only
  std::vector<std::string> tokens;  // by id
  std::vector<int32_t> types;       // by id
  std::vector<float> scores;        // by id, "llama" only
  std::vector<std::string> merges;  // "a b" by rank, "gpt2" only
  bool add_space_prefix = true;     // "llama" only
};

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// The tokenizer.* (and tori.vocabulary) metadata for a model named by `--model` whose embedding has
// `vocab` rows (see above).
GgufMetadata gguf_tokenizer_metadata(const std::string& model, int64_t vocab);

// The metadata of one Tokenizer's vocabulary (its GgufVocabulary, specials, add_bos, chat template),
// padded to `vocab` tokens.
GgufMetadata gguf_tokenizer_metadata(const Tokenizer& t, int64_t vocab);

// The placeholder vocabulary of `vocab` tokens (see above).
GgufVocabulary placeholder_vocabulary(int64_t vocab);

}  // namespace tori::models
