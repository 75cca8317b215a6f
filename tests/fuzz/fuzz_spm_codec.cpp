// libFuzzer target: SentencePiece encode/decode (models/sentencepiece_tokenizer.*) on arbitrary
// bytes, with the committed tiny model (tests/models/data/spm_tiny.model). The ids encode() gives
// must be in the vocabulary and decode; the input's bytes read as token ids must decode or be
// refused with tori::Error.
#include <cstring>

#include "models/sentencepiece_tokenizer.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<SentencePieceTokenizer> t =
      SentencePieceTokenizer::from_file(fuzz::test_data("spm_tiny.model"));
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids;
  if (fuzz::expected([&] { ids = t->encode_prompt(text); })) {
    for (int32_t id : ids) fuzz::check(id >= 0 && id < t->vocab_size(), "encode() gave an id outside the vocabulary");
    fuzz::check(fuzz::expected([&] { t->decode(ids); }), "decode() refused the ids encode() gave");
  }
  t->find_token(text);
  std::vector<int32_t> raw(size / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
  fuzz::expected([&] { t->decode(raw); });
  for (size_t i = 0; i < size; ++i) raw.push_back(data[i]);
  fuzz::expected([&] { t->decode(raw); });
  return 0;
}
