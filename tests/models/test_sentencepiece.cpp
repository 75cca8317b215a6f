// SentencePiece: known answers from the `sentencepiece` Python package (tests/models/data/
// make_spm_known_answers.py) through a tokenizer.model and through GGUF "llama" metadata (the
// ModelProto Tori rebuilds from tokens, scores and types), our decode against SentencePiece's,
// control tokens matched literally, and the tokenizer picked from a checkpoint directory.
#include <sentencepiece_processor.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "models/gguf_writer.hpp"
#include "models/sentencepiece_tokenizer.hpp"
#include "tests/support/temp_files.hpp"

using namespace tori::models;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
using tori::test::kModelsData;
const fs::path kModel = kModelsData / "spm_tiny.model";
nlohmann::json answers() {
  std::ifstream in(kModelsData / "spm_known_answers.json");
  return nlohmann::json::parse(in)["answers"];
}
void check_known_answers(const Tokenizer& t) {
  sentencepiece::SentencePieceProcessor sp;
  REQUIRE(sp.Load(kModel.string()).ok());
  for (auto& a : answers()) {
    const std::string text = a["text"];
    INFO(text);
    const auto ids = a["ids"].get<std::vector<int32_t>>();
    CHECK(t.encode(text) == ids);
    CHECK(t.decode(ids) == text);
    CHECK(t.decode(ids) == sp.DecodeIds(std::vector<int>(ids.begin(), ids.end())));
  }
}
fs::path temp(const std::string& what) {
  return fs::temp_directory_path() / ("tori_test_spm_" + std::to_string(::getpid()) + "_" + what);
}
}  // namespace

TEST_CASE("SentencePiece from tokenizer.model matches the sentencepiece package", "[spm]") {
  auto t = SentencePieceTokenizer::from_file(kModel.string());
  CHECK(t->vocab_size() == 400);
  CHECK(t->bos_id == 1);
  CHECK(t->eos_id == 2);
  CHECK(t->add_bos);
  check_known_answers(*t);
  // BOS by default; control tokens' text is matched literally (SentencePiece alone would not), and
  // the text after one gets the dummy prefix space as in llama.cpp and Hugging Face.
  CHECK(t->encode_prompt("Hello").front() == 1);
  const auto ids = t->encode("<s>Hello</s>");
  REQUIRE(ids.size() >= 3);
  CHECK(ids.front() == 1);
  CHECK(ids.back() == 2);
  CHECK(std::vector<int32_t>(ids.begin() + 1, ids.end() - 1) == t->encode("Hello"));
  CHECK(t->find_token("</s>") == 2);
  CHECK(t->find_token("no such piece") == -1);
  CHECK(t->end_ids() == std::vector<int32_t>{2});
}

TEST_CASE("SentencePiece decode gives raw bytes for a prefix and round-trips varied text", "[spm]") {
  auto t = SentencePieceTokenizer::from_file(kModel.string());
  // "日" is E6 97 A5, three byte-fallback tokens: prefixes end mid-character, bytes as they are.
  const auto ids = t->encode("\xe6\x97\xa5");
  REQUIRE(ids.size() == 4);  // "▁" then three <0xNN>
  CHECK(t->decode({ids[0], ids[1]}) == "\xe6");
  CHECK(t->decode({ids[0], ids[1], ids[2]}) == "\xe6\x97");
  for (const char* s : {"plain text", " leading space", "trailing  ", "a\n\nb\tc", "x  y   z", "caf\xc3\xa9 \xf0\x9f\x98\x80",
                        "\xe4\xb8\xad\xe6\x96\x87", "42 + 17 = 59", "!", "<|turn|>user"})
    CHECK(t->decode(t->encode(s)) == s);
  CHECK_THROWS_AS(t->decode({400}), tori::InputError);
}

TEST_CASE("SentencePiece from GGUF llama metadata gives the same ids", "[spm]") {
  sentencepiece::SentencePieceProcessor sp;
  REQUIRE(sp.Load(kModel.string()).ok());
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    tokens.push_back(sp.IdToPiece(i));
    scores.push_back(sp.GetScore(i));
    // GGUF token types (llama.cpp's convert script): 2 unknown, 3 control, 6 byte, 5 unused, 4 user-defined, 1 normal
    types.push_back(sp.IsUnknown(i) ? 2 : sp.IsControl(i) ? 3 : sp.IsByte(i) ? 6 : sp.IsUnused(i) ? 5
                    : tokens.back() == "<|turn|>" ? 4 : 1);
  }
  auto write = [&](const std::vector<int32_t>& ty) {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    GgufValue sv;
    sv.type = GgufType::array;
    sv.elem = GgufType::f32;
    sv.floats.assign(scores.begin(), scores.end());
    w.add("tokenizer.ggml.scores", sv);
    w.add_i32s("tokenizer.ggml.token_type", ty);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_string("tokenizer.chat_template", "{{ bos_token + '[INST] ' + m + ' [/INST]' }}");
    const fs::path p = temp("vocab.gguf");
    w.write(p.string());
    return p;
  };
  const fs::path p = write(types);
  {
    auto t = open_tokenizer(p.string());
    REQUIRE(t);
    CHECK(t->vocab_size() == 400);
    CHECK(t->add_bos);  // llama.cpp's default for SentencePiece vocabularies
    CHECK(t->chat_template.find("[INST]") != std::string::npos);
    check_known_answers(*t);
  }
  // Without the 256 byte pieces there is no byte fallback: an unseen character becomes <unk>.
  std::vector<int32_t> no_bytes = types;
  for (auto& ty : no_bytes)
    if (ty == 6) ty = 5;
  write(no_bytes);
  CHECK(open_tokenizer(p.string())->encode("\xe6\x97\xa5") == std::vector<int32_t>{358, 0});
  std::vector<int32_t> bad = types;
  bad[7] = 9;
  write(bad);
  CHECK_THROWS_WITH(open_tokenizer(p.string()), Contains("tokenizer.ggml.token_type[7] = 9 (allowed: 1..6)"));
  fs::remove(p);
}

TEST_CASE("A checkpoint directory picks tokenizer.model and tokenizer_config.json", "[spm]") {
  const fs::path dir = temp("ckpt");
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "eos_token_id": 2})";
  CHECK(open_tokenizer(dir.string()) == nullptr);  // no tokenizer files
  fs::copy_file(kModel, dir / "tokenizer.model");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"add_bos_token": false, "eos_token": {"content": "</s>"}, "chat_template": "<|user|> ... <|assistant|>"})";
  auto t = open_tokenizer(dir.string());
  REQUIRE(t);
  CHECK(t->source() == (dir / "tokenizer.model").string());
  CHECK_FALSE(t->add_bos);
  CHECK(t->eos_id == 2);
  CHECK(t->encode_prompt("Hello") == t->encode("Hello"));
  CHECK(t->chat_template == "<|user|> ... <|assistant|>");
  // tokenizer.json alone: byte-level BPE, EOS from config.json's eos_token_id.
  fs::remove(dir / "tokenizer.model");
  fs::remove(dir / "tokenizer_config.json");
  fs::copy_file(kModelsData / "bpe_tiny_tokenizer.json", dir / "tokenizer.json");
  auto bpe = open_tokenizer(dir.string());
  REQUIRE(bpe);
  CHECK(bpe->source() == (dir / "tokenizer.json").string());
  CHECK(bpe->vocab_size() == 379);
  CHECK(bpe->eos_id == 2);
  CHECK_FALSE(bpe->add_bos);
  std::ofstream(dir / "tokenizer.model") << "not a model";
  CHECK_THROWS_WITH(open_tokenizer(dir.string()), Contains("tokenizer.model: not a SentencePiece model"));
  fs::remove_all(dir);
  CHECK(open_tokenizer("palm-tiny") == nullptr);
}
