#pragma once
// Prompts given as token ids on the command line: "1,2,3;4,5" is two prompts, separated by ';',
// tokens by ',' (spaces ignored).
#include <string>
#include <vector>

#include "models/reference_model.hpp"

namespace tori::models {

// Throws InputError naming `flag` for empty prompts, non-integers or ids outside [0, vocab).
std::vector<TokenIds> parse_prompt_tokens(const std::string& text, int64_t vocab,
                                          const std::string& flag);
std::string format_tokens(const TokenIds& t);

}  // namespace tori::models
