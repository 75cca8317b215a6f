#pragma once
// TextStream: one generated sequence as text, token by token. It decodes the ids so far (minus
// end tokens such as EOS / end-of-turn, which end the sequence but are not text), watches for stop
// strings, and hands out the text that is final:
//   - never half a multi-byte UTF-8 character (a token may hold only the first bytes of one);
//   - never text that could still turn out to be the start of a stop string;
//   - once a stop string appears, the text is cut just before it and the sequence is finished.
// The tokenizers' decode() is prefix-stable (more ids only append bytes), so what was handed out
// never changes.
#include <cstdint>
#include <string>
#include <vector>

#include "models/tokenizer.hpp"

namespace tori::models {

class TextStream {
 public:
  TextStream(const Tokenizer& tok, std::vector<std::string> stop_strings, std::vector<int32_t> end_ids);
  // Adds one token; true when this sequence is now finished by a stop string.
  bool push(int32_t id);
  // The final text not handed out yet (see above); at_end: the sequence is over, so an incomplete
  // trailing character is handed out too.
  std::string take(bool at_end = false);
  // All the text: cut before the first stop string, end tokens left out.
  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  const Tokenizer* tok_;
  std::vector<std::string> stops_;
  std::vector<int32_t> end_ids_;
  std::vector<int32_t> ids_, text_ids_;
  std::string text_;
  size_t taken_ = 0, searched_ = 0;
  bool stopped_ = false;
};

// Bytes of `s` that form complete UTF-8 characters from the start (an incomplete character at the
// end is left out; invalid bytes count as complete single characters).
size_t utf8_complete_prefix(const std::string& s);
// `s` with every byte that is not part of a valid UTF-8 character replaced by U+FFFD (for JSON).
std::string utf8_repaired(const std::string& s);

}  // namespace tori::models
