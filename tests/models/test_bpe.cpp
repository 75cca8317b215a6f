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
#include "tests/support/temp_files.hpp"

using namespace tori::models;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
using tori::test::kModelsData;
nlohmann::json load_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}
void check_known_answers(const BpeTokenizer& t) {
  // The document must outlive the loop: a range-for over load_json(...)["answers"] iterates a
  // temporary that is destroyed before the first iteration (AddressSanitizer: heap-use-after-free).
  const nlohmann::json known = load_json(kModelsData / "bpe_known_answers.json");
  for (auto& a : known["answers"]) {
    const std::string text = a["text"];
    INFO(text);
    CHECK(t.encode(text) == a["ids"].get<std::vector<int32_t>>());
    CHECK(t.decode(t.encode(text)) == text);
  }
}
}  // namespace

TEST_CASE("BPE from tokenizer.json matches Hugging Face tokenizers", "[bpe]") {
  BpeTokenizer t = BpeTokenizer::from_tokenizer_json((kModelsData / "bpe_tiny_tokenizer.json").string());
  CHECK(t.vocab_size() == 379);
  check_known_answers(t);
  for (const char* s : {"a\xff\xfe b", "\n\n\n", " ", "''s", "x\r\n\ty", "1+1=2"}) CHECK(t.decode(t.encode(s)) == s);
}

TEST_CASE("BPE from GGUF metadata gives the same ids", "[bpe]") {
  const auto j = load_json(kModelsData / "bpe_tiny_tokenizer.json");
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

TEST_CASE("tokenizer.json: token ids that are not integers are clear errors", "[bpe]") {
  // Found by the tokenizer_json fuzz target: an id past int64 (JSON reads 1e83 as a float) was
  // converted with undefined behaviour.
  const fs::path p = tori::test::temp_dir("bpe_ids") / "tokenizer.json";
  auto load = [&](const std::string& vocab, const std::string& added) {
    tori::test::spit(p, R"({"added_tokens": [)" + added + R"(], "model": {"type": "BPE", "vocab": {)" + vocab +
                            R"(}, "merges": []}})");
    return BpeTokenizer::from_tokenizer_json(p.string());
  };
  CHECK(load(R"("a": 0, "b": 1)", R"({"id": 2, "content": "<s>"})").vocab_size() == 3);
  CHECK_THROWS_AS(load(R"("a": 3.88889e+83)", ""), tori::InputError);
  CHECK_THROWS_WITH(load(R"("a": 0, "b": 1.5)", ""), Contains("tokenizer.json: token id 1.5 is not an integer"));
  CHECK_THROWS_WITH(load(R"("a": 0)", R"({"id": 1e30, "content": "<s>"})"), Contains("is not an integer"));
  CHECK_THROWS_WITH(load(R"("a": 0)", R"({"id": "1", "content": "<s>"})"), Contains("token id \"1\" is not an integer"));
}
