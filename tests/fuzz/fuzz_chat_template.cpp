// libFuzzer target: the chat-template recogniser and renderer (models/chat_template.*).
// Input: the template text, then optionally NUL-separated user, system, BOS and EOS texts. A
// rendered prompt must contain the user's text and the system text given (or the template's
// default).
#include "models/chat_template.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string field[5];  // template, user, system, bos, eos
  size_t k = 0;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && k < 4) ++k;
    else field[k] += char(data[i]);
  }
  fuzz::expected([&] {
    const ChatTemplate t = ChatTemplate::recognise(field[0], "fuzz");
    t.name();
    const std::string out = t.render(field[1], field[2], field[3], field[4]);
    const std::string& system = field[2].empty() ? t.default_system() : field[2];
    fuzz::check(out.find(field[1]) != std::string::npos, "the rendered prompt lacks the user's text");
    fuzz::check(out.find(system) != std::string::npos, "the rendered prompt lacks the system text");
  });
  return 0;
}
