#include "models/prompts.hpp"

#include <charconv>

#include "kernels/error.hpp"

namespace tori::models {

std::vector<TokenIds> parse_prompt_tokens(const std::string& text, int64_t vocab,
                                          const std::string& flag) {
  std::vector<TokenIds> prompts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string part = text.substr(start, end - start);
    TokenIds ids;
    size_t p = 0;
    while (p <= part.size()) {
      size_t q = part.find(',', p);
      if (q == std::string::npos) q = part.size();
      std::string tok = part.substr(p, q - p);
      tok.erase(0, tok.find_first_not_of(" \t"));
      tok.erase(tok.find_last_not_of(" \t") + 1);
      if (!tok.empty()) {
        long long v = 0;
        auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
        if (ec != std::errc() || ptr != tok.data() + tok.size())
          throw InputError(flag + ": '" + tok + "' is not a token id (expected integers like \"1,2,3;4,5\")");
        if (v < 0 || v >= vocab)
          throw InputError(flag + ": token id " + tok + " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
        ids.push_back(static_cast<int32_t>(v));
      } else if (q != part.size() || p != 0) {
        throw InputError(flag + ": empty token in prompt " + std::to_string(prompts.size()) +
                         " ('" + part + "')");
      }
      p = q + 1;
    }
    if (ids.empty())
      throw InputError(flag + ": prompt " + std::to_string(prompts.size()) +
                       " is empty (prompts are separated by ';', tokens by ',')");
    prompts.push_back(std::move(ids));
    start = end + 1;
  }
  return prompts;
}

std::string format_tokens(const TokenIds& t) {
  std::string s;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(t[i]);
  }
  return s;
}

}  // namespace tori::models
