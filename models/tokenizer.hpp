#pragma once
// Tokenizer: text <-> token ids for a real model, and the special ids generation needs. Two
// implementations: byte-level BPE (bpe_tokenizer.hpp: GPT-2 / SmolLM style, from tokenizer.json
// or GGUF tokenizer.ggml.model = "gpt2") and SentencePiece (sentencepiece_tokenizer.hpp: a
// tokenizer.model, or GGUF tokenizer.ggml.model = "llama").
//
// open_tokenizer() picks one from what `--model` names:
//   Hugging Face directory -> tokenizer.model (SentencePiece) if present, else tokenizer.json (BPE);
//                             tokenizer_config.json adds bos/eos tokens, add_bos_token and the
//                             chat template
//   .gguf file             -> its tokenizer.ggml.* metadata and tokenizer.chat_template; none
//                             when it has none or its tori.vocabulary says "placeholder"
//   preset / model YAML    -> none (synthetic weights have no vocabulary of text)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tori::models {

class GgufFile;
struct GgufVocabulary;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text -> ids, no BOS. The literal text of a special token (e.g. "<|im_end|>") becomes its id.
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // Ids -> bytes. Special tokens come out as their literal text. The bytes are exactly what the
  // tokens hold, so a prefix of a sequence may end inside a multi-byte UTF-8 character.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  // The id of the token whose text is exactly `text`, or -1.
  virtual int32_t find_token(const std::string& text) const = 0;
  // Where it came from (a path), for messages.
  virtual const std::string& source() const = 0;
  // The vocabulary as llama.cpp's GGUF metadata holds it (gguf_vocabulary.hpp), for export.
  virtual GgufVocabulary gguf_vocabulary() const = 0;

  // The ids of a prompt: BOS first when the model's metadata asks for it (add_bos).
  std::vector<int32_t> encode_prompt(const std::string& text) const;
  // The ids that end a generated sequence by default: EOS and the end-of-turn token, where known.
  std::vector<int32_t> end_ids() const;

  int32_t bos_id = -1, eos_id = -1, eot_id = -1;
  bool add_bos = false;
  std::string chat_template;  // Jinja text from the metadata, empty if none
};

// Sets t's bos/eos/eot ids, add_bos and chat template from GGUF metadata (tokenizer.ggml.
// bos_token_id, eos_token_id, eot_token_id, add_bos_token, tokenizer.chat_template). add_bos
// defaults to llama.cpp's choice: true for SentencePiece ("llama") vocabularies, else false.
void read_gguf_specials(const GgufFile& f, Tokenizer& t);

// The tokenizer of the model named by `--model` (see above), or nullptr when it has none. Throws
// InputError for a tokenizer file or metadata that cannot be used, naming the file and the key.
std::unique_ptr<Tokenizer> open_tokenizer(const std::string& model);

}  // namespace tori::models
