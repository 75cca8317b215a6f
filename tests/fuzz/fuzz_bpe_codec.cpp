// libFuzzer target: byte-level BPE encode/decode (models/bpe_tokenizer.*) on arbitrary bytes, with
// the committed tiny tokenizer (tests/models/data/bpe_tiny_tokenizer.json). Byte-level BPE loses
// nothing: decode(encode(x)) must be x for any bytes x, invalid UTF-8 included. The input's bytes
// read as token ids must decode or be refused with tori::Error.
#include <cstring>

#include "models/bpe_tokenizer.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const BpeTokenizer t = BpeTokenizer::from_tokenizer_json(fuzz::test_data("bpe_tiny_tokenizer.json"));
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids;
  if (fuzz::expected([&] { ids = t.encode(text); })) {
    for (int32_t id : ids) fuzz::check(id >= 0 && id < t.vocab_size(), "encode() gave an id outside the vocabulary");
    std::string back;
    fuzz::check(fuzz::expected([&] { back = t.decode(ids); }), "decode() refused the ids encode() gave");
    fuzz::check(back == text, "decode(encode(x)) != x");
  }
  std::vector<int32_t> raw(size / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
  fuzz::expected([&] { t.decode(raw); });
  for (size_t i = 0; i < size; ++i) raw.push_back(data[i]);  // small ids: mostly inside the vocabulary
  fuzz::expected([&] { t.decode(raw); });
  return 0;
}
