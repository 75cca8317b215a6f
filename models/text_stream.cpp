#include "models/text_stream.hpp"

#include <algorithm>

namespace tori::models {

size_t utf8_complete_prefix(const std::string& s) {
  // Walk back over at most 3 continuation bytes to the last lead byte; keep its character only if
  // all its bytes are there.
  size_t i = s.size(), back = 0;
  while (i > 0 && back < 3 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i, ++back;
  if (i == 0) return s.size();
  const auto lead = static_cast<unsigned char>(s[i - 1]);
  const size_t need = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (lead < 0xC0 || lead >= 0xF8) return s.size();  // ASCII or invalid lead: complete as it is
  return back + 1 >= need ? s.size() : i - 1;
}

std::string utf8_repaired(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : b >= 0xC2 && b < 0xE0 ? 2 : b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xF0 && b < 0xF5 ? 4 : 0;
    for (size_t k = 1; k < n; ++k)
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) n = 0;
    if (n > 1) {  // no overlong forms, surrogates or code points past U+10FFFF
      const auto c = static_cast<unsigned char>(s[i + 1]);
      if ((b == 0xE0 && c < 0xA0) || (b == 0xED && c >= 0xA0) || (b == 0xF0 && c < 0x90) || (b == 0xF4 && c >= 0x90))
        n = 0;
    }
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

TextStream::TextStream(const Tokenizer& tok, std::vector<std::string> stop_strings, std::vector<int32_t> end_ids)
    : tok_(&tok), stops_(std::move(stop_strings)), end_ids_(std::move(end_ids)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

bool TextStream::push(int32_t id) {
  ids_.push_back(id);
  if (stopped_ || std::find(end_ids_.begin(), end_ids_.end(), id) != end_ids_.end()) return false;
  text_ids_.push_back(id);
  text_ = tok_->decode(text_ids_);
  // A stop string can only be new where it overlaps the bytes added since the last search.
  size_t longest = 0;
  for (const std::string& s : stops_) longest = std::max(longest, s.size());
  const size_t from = searched_ > longest ? searched_ - longest : 0;
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, text_.find(s, from));
  searched_ = text_.size();
  if (cut == std::string::npos) return false;
  text_.resize(cut);
  stopped_ = true;
  return true;
}

std::string TextStream::take(bool at_end) {
  size_t ready = text_.size();
  if (!at_end && !stopped_) {
    ready = utf8_complete_prefix(text_);
    // Hold back the longest tail that a stop string starts with.
    for (const std::string& s : stops_)
      for (size_t n = std::min(s.size() - 1, text_.size()); n > 0; --n)
        if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
          ready = std::min(ready, text_.size() - n);
          break;
        }
  }
  if (ready <= taken_) return "";
  std::string out = text_.substr(taken_, ready - taken_);
  taken_ = ready;
  return out;
}

}  // namespace tori::models
