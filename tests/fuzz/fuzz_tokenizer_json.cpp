// libFuzzer target: loading a Hugging Face tokenizer.json (models/bpe_tokenizer.*:
// BpeTokenizer::from_tokenizer_json), then encoding and decoding a little text with what loaded.
#include "models/bpe_tokenizer.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".json");
  const std::string& path = file.write(data, size);
  fuzz::expected([&] {
    const BpeTokenizer t = BpeTokenizer::from_tokenizer_json(path);
    fuzz::expected([&] { t.decode(t.encode("Hello, world! It's 2024 <|im_start|>caf\xc3\xa9 \xff")); });
    for (int32_t id = 0; id < std::min<int64_t>(t.vocab_size(), 512); ++id) fuzz::expected([&] { t.decode({id}); });
  });
  return 0;
}
