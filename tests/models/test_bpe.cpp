// Byte-level BPE: known answers from Hugging Face `tokenizers` (tests/models/data/
// make_bpe_known_answers.py) through tokenizer.json and through GGUF metadata, round trips, and
// the pre-tokeniser's GPT-2 splits.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "models/bpe_tokenizer.hpp"
#include "models/gguf_writer.hpp"

using namespace tori::models;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
const fs::path kData = fs::path(__FILE__).parent_path() / "data";
nlohmann::json load_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}
void check_known_answers(const BpeTokenizer& t) {
  for (auto& a : load_json(kData / "bpe_known_answers.json")["answers"]) {
    const std::string text = a["text"];
    INFO(text);
    CHECK(t.encode(text) == a["ids"].get<std::vector<int32_t>>());
    CHECK(t.decode(t.encode(text)) == text);
  }
}
}  // namespace

TEST_CASE("BPE from tokenizer.json matches Hugging Face tokenizers", "[bpe]") {
  BpeTokenizer t = BpeTokenizer::from_tokenizer_json((kData / "bpe_tiny_tokenizer.json").string());
  CHECK(t.vocab_size() == 379);
  check_known_answers(t);
  for (const char* s : {"a\xff\xfe b", "\n\n\n", " ", "''s", "x\r\n\ty", "1+1=2"}) CHECK(t.decode(t.encode(s)) == s);
}

TEST_CASE("BPE from GGUF metadata gives the same ids", "[bpe]") {
  const auto j = load_json(kData / "bpe_tiny_tokenizer.json");
  std::vector<std::string> tokens(379), merges;
  std::vector<int32_t> types(379, 1);
  for (auto& [s, id] : j["model"]["vocab"].items()) tokens[id.get<size_t>()] = s;
  for (auto& a : j["added_tokens"]) tokens[a["id"].get<size_t>()] = a["content"], types[a["id"].get<size_t>()] = 3;
  for (auto& m : j["model"]["merges"]) merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "gpt-2");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_strings("tokenizer.ggml.merges", merges);
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.bos_token_id", 0);
  w.add_u32("tokenizer.ggml.eos_token_id", 0);
  const fs::path p = fs::temp_directory_path() / ("tori_test_bpe_" + std::to_string(::getpid()) + ".gguf");
  w.write(p.string());
  GgufFile f(p.string());
  BpeTokenizer t = BpeTokenizer::from_gguf(f);
  CHECK(t.eos_id == 0);
  check_known_answers(t);
  fs::remove(p);
}

TEST_CASE("BPE pre-tokenisation follows the GPT-2 regex", "[bpe]") {
  BpeTokenizer t({}, {}, {}, false, "test");
  using V = std::vector<std::string>;
  CHECK(t.pre_tokenize("Hello world's 123 !!  x\n\ny  ") == V{"Hello", " world", "'s", " 123", " !!", " ", " x", "\n", "\n", "y", "  "});
  CHECK(t.pre_tokenize("caf\xc3\xa9 na\xc3\xafve") == V{"caf\xc3\xa9", " na\xc3\xafve"});
  BpeTokenizer d({}, {}, {}, true, "test");
  CHECK(d.pre_tokenize("a 123x") == V{"a", " ", "1", "2", "3", "x"});
  CHECK_THROWS_AS(t.decode({5}), tori::InputError);
}
