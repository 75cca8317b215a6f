// The tokenizer metadata `tori export --format gguf` writes (models/gguf_vocabulary.hpp): a
// tokenizer.json or tokenizer.model written as GGUF metadata and read back gives the known answers
// of Hugging Face `tokenizers` / the `sentencepiece` package (so llama.cpp, which reads the same
// keys, gets the same vocabulary); padding to the model's vocabulary; the placeholder vocabulary
// of synthetic weights, which Tori itself treats as no text vocabulary.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "models/bpe_tokenizer.hpp"
#include "models/gguf_vocabulary.hpp"
#include "models/gguf_writer.hpp"
#include "models/sentencepiece_tokenizer.hpp"
#include "tests/support/temp_files.hpp"

using namespace tori::models;
using tori::test::temp_dir;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
using tori::test::kModelsData;

nlohmann::json answers(const std::string& file) {
  std::ifstream in(kModelsData / file);
  return nlohmann::json::parse(in)["answers"];
}
void check_answers(const Tokenizer& t, const std::string& file) {
  for (auto& a : answers(file)) {
    const std::string text = a["text"];
    INFO(text);
    CHECK(t.encode(text) == a["ids"].get<std::vector<int32_t>>());
  }
}
// Writes `kv` as a tensor-less GGUF and opens its tokenizer as `tori generate` would.
std::unique_ptr<Tokenizer> through_gguf(const GgufMetadata& kv, const fs::path& p) {
  GgufWriter w;
  for (const auto& [k, v] : kv) w.add(k, v);
  w.write(p.string());
  return open_tokenizer(p.string());
}
}  // namespace

TEST_CASE("GGUF vocabulary: tokenizer.json exported as gpt2 metadata keeps its ids and specials", "[gguf_vocab]") {
  const fs::path d = temp_dir("gguf_vocab_bpe");
  const BpeTokenizer src = BpeTokenizer::from_tokenizer_json((kModelsData / "bpe_tiny_tokenizer.json").string());
  auto t = through_gguf(gguf_tokenizer_metadata(src, src.vocab_size()), d / "bpe.gguf");
  REQUIRE(t);
  CHECK(t->vocab_size() == src.vocab_size());
  check_answers(*t, "bpe_known_answers.json");
  GgufFile f((d / "bpe.gguf").string());
  CHECK(f.get_string("tokenizer.ggml.model") == "gpt2");
  CHECK(f.get_string("tokenizer.ggml.pre") == "gpt-2");
  const auto& types = f.get_array("tokenizer.ggml.token_type", GgufType::i32).ints;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(kModelsData / "bpe_tiny_tokenizer.json"));
  for (auto& a : j["added_tokens"]) CHECK(types[a["id"].get<size_t>()] == 3);  // specials: control tokens

  SECTION("padded to a larger embedding with unused [PAD] tokens, which encode() never produces") {
    auto p = through_gguf(gguf_tokenizer_metadata(src, src.vocab_size() + 5), d / "padded.gguf");
    CHECK(p->vocab_size() == src.vocab_size() + 5);
    CHECK(p->find_token("[PAD" + std::to_string(src.vocab_size() + 4) + "]") == src.vocab_size() + 4);
    check_answers(*p, "bpe_known_answers.json");
  }
  SECTION("a vocabulary longer than the embedding is refused, naming the tokenizer") {
    CHECK_THROWS_WITH(gguf_tokenizer_metadata(src, 100),
                      Contains("bpe_tiny_tokenizer.json: the tokenizer has 379 tokens but the model's embedding has 100 rows"));
  }
  fs::remove_all(d);
}

TEST_CASE("GGUF vocabulary: tokenizer.model exported as llama metadata keeps its ids", "[gguf_vocab]") {
  const fs::path d = temp_dir("gguf_vocab_spm");
  auto src = SentencePieceTokenizer::from_file((kModelsData / "spm_tiny.model").string());
  auto t = through_gguf(gguf_tokenizer_metadata(*src, src->vocab_size()), d / "spm.gguf");
  REQUIRE(t);
  CHECK(t->vocab_size() == src->vocab_size());
  CHECK(t->bos_id == src->bos_id);
  CHECK(t->eos_id == src->eos_id);
  CHECK(t->add_bos == src->add_bos);
  check_answers(*t, "spm_known_answers.json");
  fs::remove_all(d);
}

TEST_CASE("GGUF vocabulary: synthetic weights get a placeholder that encodes any text byte by byte", "[gguf_vocab]") {
  const GgufVocabulary v = placeholder_vocabulary(300);
  REQUIRE(v.tokens.size() == 300);
  CHECK(v.tokens[0] == "<unk>");
  CHECK(v.types[0] == 2);
  CHECK(v.tokens[2] == "</s>");
  CHECK(v.tokens[3] == "<0x00>");
  CHECK(v.tokens[3 + 0x41] == "<0x41>");
  CHECK(v.types[258] == 6);
  CHECK(v.tokens[259] == "<tori_placeholder_259>");
  CHECK(v.types[259] == 5);
  CHECK(placeholder_vocabulary(10).tokens.size() == 10);  // as many byte pieces as fit
  CHECK_THROWS_WITH(placeholder_vocabulary(2), Contains("at least 3 tokens"));

  // As a SentencePiece model it encodes text to byte pieces (what llama.cpp does with it too).
  const fs::path d = temp_dir("gguf_vocab_placeholder");
  GgufMetadata kv = gguf_tokenizer_metadata("llama-tiny", 512);
  GgufWriter w;
  for (const auto& [k, val] : kv) w.add(k, val);
  w.write((d / "p.gguf").string());
  GgufFile f((d / "p.gguf").string());
  CHECK(f.get_string("tori.vocabulary").rfind("placeholder", 0) == 0);
  CHECK(f.get_array("tokenizer.ggml.tokens", GgufType::string).strings.size() == 512);
  auto spm = SentencePieceTokenizer::from_gguf(f);
  CHECK(spm->encode("A") == std::vector<int32_t>{3 + 0xE2, 3 + 0x96, 3 + 0x81, 3 + 0x41});  // "▁A", bytes
  // Tori itself treats a placeholder as no vocabulary: prompts stay token ids, no EOS stops.
  CHECK(open_tokenizer((d / "p.gguf").string()) == nullptr);
  fs::remove_all(d);
}

TEST_CASE("GGUF vocabulary: a GGUF source's tokenizer keys are copied verbatim", "[gguf_vocab]") {
  const fs::path d = temp_dir("gguf_vocab_copy");
  const BpeTokenizer src = BpeTokenizer::from_tokenizer_json((kModelsData / "bpe_tiny_tokenizer.json").string());
  GgufWriter w;
  for (const auto& [k, v] : gguf_tokenizer_metadata(src, src.vocab_size())) w.add(k, v);
  w.add_string("tokenizer.chat_template", "{{ messages }}");
  w.add_u32("tokenizer.ggml.padding_token_id", 7);
  w.add_string("general.name", "not copied");
  w.write((d / "src.gguf").string());
  const GgufMetadata kv = gguf_tokenizer_metadata((d / "src.gguf").string(), src.vocab_size());
  GgufFile f((d / "src.gguf").string());
  size_t n = 0;
  for (const auto& [k, v] : kv) {
    INFO(k);
    CHECK(k.rfind("tokenizer.", 0) == 0);
    CHECK(f.find(k) != nullptr);
    ++n;
  }
  CHECK(n == f.metadata().size() - 1);  // everything but general.name
  fs::remove_all(d);
}
