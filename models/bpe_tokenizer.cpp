#include "models/bpe_tokenizer.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "models/json_file.hpp"
#include "models/gguf_file.hpp"
#include "models/gguf_vocabulary.hpp"

namespace tori::models {

namespace {

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | cp >> 6), s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | cp >> 12), s += char(0x80 | ((cp >> 6) & 0x3F)), s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | cp >> 18), s += char(0x80 | ((cp >> 12) & 0x3F)), s += char(0x80 | ((cp >> 6) & 0x3F)),
        s += char(0x80 | (cp & 0x3F));
  }
}

// Decodes UTF-8 into code points with the byte length of each; invalid bytes become U+FFFD of
// length 1 (their bytes still go through the byte-level mapping unchanged).
void utf8_decode(const std::string& s, std::vector<uint32_t>& cps, std::vector<size_t>& at) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    uint32_t cp = n == 1 ? b : n == 2 ? b & 0x1F : n == 3 ? b & 0x0F : b & 0x07;
    if (n == 0 || i + size_t(n) > s.size()) n = 0;
    for (int k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + size_t(k)]);
      if ((c & 0xC0) != 0x80) n = 0;
      else cp = cp << 6 | (c & 0x3F);
    }
    if (n == 0) n = 1, cp = 0xFFFD;
    cps.push_back(cp);
    at.push_back(i);
    i += size_t(n);
  }
  at.push_back(s.size());
}

bool is_space(uint32_t c) {
  return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
bool is_number(uint32_t c) { return (c >= '0' && c <= '9') || c == 0xB2 || c == 0xB3 || c == 0xB9 || (c >= 0xBC && c <= 0xBE); }
bool is_letter(uint32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  if (c == 0xAA || c == 0xB5 || c == 0xBA) return true;
  if (c < 0xC0) return false;
  if (c <= 0x24F) return c != 0xD7 && c != 0xF7;
  if (c < 0x370) return false;
  if (is_space(c) || c == 0xFFFD) return false;
  if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE30 && c <= 0xFE4F) ||
      (c >= 0xFF00 && c <= 0xFF20) || (c >= 0x1F000 && c <= 0x1FAFF))
    return false;
  return true;
}

// GPT-2's byte <-> printable code point table.
struct ByteMap {
  std::array<std::string, 256> to;  // byte -> UTF-8 of its code point
  std::unordered_map<uint32_t, uint8_t> from;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
      append_utf8(to[size_t(b)], cp);
      from[cp] = uint8_t(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges,
                           std::vector<int32_t> special_ids, bool individual_digits, std::string source)
    : tokens_(std::move(tokens)), specials_(std::move(special_ids)), individual_digits_(individual_digits),
      source_(std::move(source)) {
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], int32_t(i));
  for (size_t r = 0; r < merges.size(); ++r) {
    const size_t sp = merges[r].find(' ', 1);
    if (sp == std::string::npos)
      throw InputError(source_ + ": merge " + std::to_string(r) + " '" + merges[r] + "' is not two tokens separated by a space");
    ranks_.emplace(std::make_pair(merges[r].substr(0, sp), merges[r].substr(sp + 1)), int32_t(r));
  }
  for (int32_t id : specials_)
    if (id < 0 || id >= int32_t(tokens_.size()))
      throw InputError(source_ + ": special token id " + std::to_string(id) + " outside the vocabulary");
  std::sort(specials_.begin(), specials_.end(),
            [&](int32_t a, int32_t b) { return tokens_[size_t(a)].size() > tokens_[size_t(b)].size(); });
  specials_.erase(std::remove_if(specials_.begin(), specials_.end(), [&](int32_t id) { return tokens_[size_t(id)].empty(); }),
                  specials_.end());
}

BpeTokenizer BpeTokenizer::from_gguf(const GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw InputError(f.path() + ": tokenizer.ggml.model = '" + model + "' is not supported (allowed: gpt2)");
  const std::string pre = f.get_string("tokenizer.ggml.pre", "default");
  bool digits = false;
  if (pre == "smollm") digits = true;
  else if (pre != "default" && pre != "gpt-2" && pre != "gpt2")
    throw InputError(f.path() + ": tokenizer.ggml.pre = '" + pre + "' is not supported (allowed: default, gpt-2, smollm)");
  auto tokens = f.get_array("tokenizer.ggml.tokens", GgufType::string).strings;
  std::vector<std::string> merges;
  if (f.find("tokenizer.ggml.merges")) merges = f.get_array("tokenizer.ggml.merges", GgufType::string).strings;
  std::vector<int32_t> specials;
  if (f.find("tokenizer.ggml.token_type")) {
    const auto& types = f.get_array("tokenizer.ggml.token_type", GgufType::i32).ints;
    for (size_t i = 0; i < types.size() && i < tokens.size(); ++i)
      if (types[i] == 3 || types[i] == 4) specials.push_back(int32_t(i));
  }
  BpeTokenizer t(std::move(tokens), merges, std::move(specials), digits, f.path());
  read_gguf_specials(f, t);
  return t;
}

BpeTokenizer BpeTokenizer::from_tokenizer_json(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  try {
    const auto& m = j.at("model");
    if (m.value("type", "BPE") != "BPE")
      throw InputError(path + ": model.type = '" + m.value("type", "") + "' is not supported (allowed: BPE)");
    std::vector<std::string> tokens;
    auto put = [&](const std::string& s, int64_t id) {
      if (id < 0 || id > (1 << 24)) throw InputError(path + ": token id " + std::to_string(id) + " out of range");
      if (size_t(id) >= tokens.size()) tokens.resize(size_t(id) + 1);
      tokens[size_t(id)] = s;
    };
    // Integer ids only: converting a JSON float outside int64's range (1e83) is undefined behaviour.
    auto id_of = [&](const nlohmann::json& v) {
      if (!v.is_number_integer()) throw InputError(path + ": token id " + v.dump().substr(0, 40) + " is not an integer");
      return v.get<int64_t>();
    };
    for (auto& [s, id] : m.at("vocab").items()) put(s, id_of(id));
    std::vector<int32_t> specials;
    if (j.contains("added_tokens"))
      for (auto& a : j["added_tokens"]) {
        const int64_t id = id_of(a.at("id"));
        put(a.at("content").get<std::string>(), id);
        specials.push_back(int32_t(id));
      }
    std::vector<std::string> merges;
    for (auto& mg : m.at("merges"))
      merges.push_back(mg.is_string() ? mg.get<std::string>() : mg.at(0).get<std::string>() + " " + mg.at(1).get<std::string>());
    // Digits(individual_digits = true) anywhere in the pre-tokenizer means one piece per digit;
    // a Split (another regex, e.g. Llama-3's) or Metaspace (SentencePiece-style) is not GPT-2's.
    const std::string pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"].dump() : "";
    for (const char* other : {"\"Split\"", "\"Metaspace\""})
      if (pre.find(other) != std::string::npos)
        throw InputError(path + ": pre_tokenizer uses " + std::string(other) +
                         ", which is not supported (allowed: ByteLevel with the GPT-2 regex, optionally after Digits)");
    const bool digits = pre.find("\"individual_digits\":true") != std::string::npos;
    return BpeTokenizer(std::move(tokens), merges, std::move(specials), digits, path);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not a byte-level BPE tokenizer.json (" + e.what() + ")");
  }
}

int32_t BpeTokenizer::find_token(const std::string& text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::token(int32_t id) const {
  if (id < 0 || id >= int32_t(tokens_.size()))
    throw InputError(source_ + ": token id " + std::to_string(id) + " outside the vocabulary (0.." +
                     std::to_string(tokens_.size() - 1) + ")");
  return tokens_[size_t(id)];
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& text) const {
  if (!individual_digits_) return gpt2_split(text);
  // Digits are isolated first (llama.cpp "smollm": \p{N} then the GPT-2 regex; HF: Digits then
  // ByteLevel), so " 12" is " ", "1", "2".
  std::vector<std::string> out;
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] >= '0' && text[i] <= '9') {
      for (auto& p : gpt2_split(text.substr(run, i - run))) out.push_back(std::move(p));
      out.push_back(text.substr(i, 1));
      run = i + 1;
    }
  for (auto& p : gpt2_split(text.substr(run))) out.push_back(std::move(p));
  return out;
}

std::vector<std::string> BpeTokenizer::gpt2_split(const std::string& text) {
  std::vector<uint32_t> cp;
  std::vector<size_t> at;
  utf8_decode(text, cp, at);
  const size_t n = cp.size();
  std::vector<std::string> out;
  auto emit = [&](size_t a, size_t b) { out.push_back(text.substr(at[a], at[b] - at[a])); };
  auto other = [](uint32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); };
  for (size_t i = 0; i < n;) {
    // 's 't 're 've 'm 'll 'd
    if (cp[i] == '\'' && i + 1 < n) {
      const uint32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') { emit(i, i + 2); i += 2; continue; }
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) { emit(i, i + 3); i += 3; continue; }
    }
    // ' ?\p{L}+', ' ?\p{N}+' (one digit when individual), ' ?[^\s\p{L}\p{N}]+'
    const size_t s = cp[i] == ' ' && i + 1 < n && !is_space(cp[i + 1]) ? i + 1 : i;
    if (s < n && !is_space(cp[s])) {
      size_t e = s + 1;
      if (is_letter(cp[s])) while (e < n && is_letter(cp[e])) ++e;
      else if (is_number(cp[s])) while (e < n && is_number(cp[e])) ++e;
      else while (e < n && other(cp[e])) ++e;
      emit(i, e);
      i = e;
      continue;
    }
    // '\s+(?!\S)' then '\s+'
    size_t e = i;
    while (e < n && is_space(cp[e])) ++e;
    if (e < n && e - i > 1) --e;  // leave the last space to the next piece
    emit(i, e);
    i = e;
  }
  return out;
}

void BpeTokenizer::bpe(const std::string& piece, std::vector<int32_t>& out) const {
  std::vector<std::string> sym;
  for (unsigned char b : piece) sym.push_back(byte_map().to[b]);
  while (sym.size() > 1) {
    int32_t best = INT32_MAX;
    size_t where = 0;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      auto it = ranks_.find({sym[k], sym[k + 1]});
      if (it != ranks_.end() && it->second < best) best = it->second, where = k;
    }
    if (best == INT32_MAX) break;
    const std::string a = sym[where], b = sym[where + 1];
    std::vector<std::string> next;
    for (size_t k = 0; k < sym.size(); ++k) {
      if (k + 1 < sym.size() && sym[k] == a && sym[k + 1] == b) next.push_back(a + b), ++k;
      else next.push_back(sym[k]);
    }
    sym.swap(next);
  }
  for (const std::string& s : sym) {
    auto it = ids_.find(s);
    if (it == ids_.end()) throw InputError(source_ + ": BPE symbol '" + s + "' is not in the vocabulary");
    out.push_back(it->second);
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  size_t i = 0, start = 0;
  auto flush = [&](size_t end) {
    for (const std::string& p : pre_tokenize(text.substr(start, end - start))) bpe(p, out);
  };
  while (i < text.size()) {
    int32_t hit = -1;
    for (int32_t id : specials_)
      if (text.compare(i, tokens_[size_t(id)].size(), tokens_[size_t(id)]) == 0) { hit = id; break; }
    if (hit < 0) { ++i; continue; }
    flush(i);
    out.push_back(hit);
    i += tokens_[size_t(hit)].size();
    start = i;
  }
  flush(text.size());
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    const std::string& t = token(id);
    if (std::find(specials_.begin(), specials_.end(), id) != specials_.end()) {
      out += t;
      continue;
    }
    std::vector<uint32_t> cp;
    std::vector<size_t> at;
    utf8_decode(t, cp, at);
    for (uint32_t c : cp) {
      auto it = byte_map().from.find(c);
      if (it == byte_map().from.end())
        throw InputError(source_ + ": token " + std::to_string(id) + " holds a code point outside the byte-level alphabet");
      out += char(it->second);
    }
  }
  return out;
}

GgufVocabulary BpeTokenizer::gguf_vocabulary() const {
  GgufVocabulary v;
  v.model = "gpt2";
  v.pre = individual_digits_ ? "smollm" : "gpt-2";
  v.tokens = tokens_;
  v.types.assign(tokens_.size(), 1);
  for (int32_t id : specials_) v.types[size_t(id)] = 3;
  std::vector<std::pair<int32_t, std::string>> by_rank;  // ranks keep their order (a repeated merge has none)
  for (const auto& [pair, rank] : ranks_) by_rank.emplace_back(rank, pair.first + " " + pair.second);
  std::sort(by_rank.begin(), by_rank.end());
  for (auto& [rank, merge] : by_rank) v.merges.push_back(std::move(merge));
  return v;
}

}  // namespace tori::models
