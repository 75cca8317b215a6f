// TextStream: generated ids to text as they arrive — never half a UTF-8 character, never text a
// stop string may still start with, cut at the first stop string; and the UTF-8 helpers.
#include <catch2/catch.hpp>
#include <filesystem>

#include "models/bpe_tokenizer.hpp"
#include "models/text_stream.hpp"
#include "tests/support/temp_files.hpp"

using namespace tori::models;
namespace fs = std::filesystem;

namespace {
using tori::test::kModelsData;
BpeTokenizer tiny() { return BpeTokenizer::from_tokenizer_json((kModelsData / "bpe_tiny_tokenizer.json").string()); }
}  // namespace

TEST_CASE("utf8_complete_prefix keeps whole characters only", "[text_stream]") {
  CHECK(utf8_complete_prefix("") == 0);
  CHECK(utf8_complete_prefix("abc") == 3);
  CHECK(utf8_complete_prefix("a\xc3") == 1);              // first byte of é
  CHECK(utf8_complete_prefix("a\xc3\xa9") == 3);          // é
  CHECK(utf8_complete_prefix("a\xe6\x97") == 1);          // 2 of 3 bytes of 日
  CHECK(utf8_complete_prefix("a\xf0\x9f\x98") == 1);      // 3 of 4 bytes of 😀
  CHECK(utf8_complete_prefix("a\xf0\x9f\x98\x80") == 5);  // 😀
  CHECK(utf8_complete_prefix("a\x80\x80\x80\x80") == 5);  // stray continuation bytes: as they are
  CHECK(utf8_repaired("ok \xc3\xa9") == "ok \xc3\xa9");
  CHECK(utf8_repaired("a\xc3") == "a\xef\xbf\xbd");
  CHECK(utf8_repaired("\xff\xe0\x80\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // bad lead, overlong
}

TEST_CASE("TextStream hands out whole characters as the bytes arrive", "[text_stream]") {
  const BpeTokenizer t = tiny();
  // The tiny tokenizer knows no multi-byte merges for 日本, so they arrive a byte token at a time.
  const std::string text = "ab \xe6\x97\xa5\xe6\x9c\xac!";
  const auto ids = t.encode(text);
  TextStream s(t, {}, {0});
  std::string out, seen;
  for (int32_t id : ids) {
    CHECK_FALSE(s.push(id));
    const std::string got = s.take();
    out += got;
    CHECK(utf8_complete_prefix(out) == out.size());  // never half a character
    seen += got.empty() ? "." : "+";
  }
  CHECK(out == text);
  CHECK(seen.find('.') != std::string::npos);  // some token did end mid-character
  s.push(0);  // an end token: not text
  CHECK(s.text() == text);
  CHECK(s.ids().back() == 0);
}

TEST_CASE("TextStream cuts at the first stop string and holds back its possible start", "[text_stream]") {
  const BpeTokenizer t = tiny();
  const std::string text = "hello world. Next line\nmore";
  const auto ids = t.encode(text);
  TextStream s(t, {"line\n", ". N"}, {});
  std::string out;
  size_t pushed = 0;
  for (int32_t id : ids) {
    ++pushed;
    const bool stop = s.push(id);
    out += s.take();
    // What has been handed out never contains or ends inside a stop string.
    CHECK(out.find(". N") == std::string::npos);
    CHECK((out.empty() || out.back() != '.'));
    if (stop) break;
  }
  CHECK(s.stopped());
  CHECK(pushed < ids.size());
  CHECK(s.text() == "hello world");
  CHECK(out + s.take(true) == "hello world");
  // A stop string split over tokens, and one that never comes: everything is handed out at the end.
  TextStream never(t, {"zzz"}, {});
  for (int32_t id : t.encode("a z zz b zz")) never.push(id);
  CHECK(never.take() == "a z zz b ");  // "zz" may still become "zzz"
  CHECK(never.take(true) == "zz");
}
