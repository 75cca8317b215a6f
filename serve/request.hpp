#pragma once
// A completion request, parsed and validated: the body of POST /v1/completions or
// /v1/chat/completions turned into prompt tokens, sampling settings and stop rules. Everything a
// request can get wrong is refused here with an ApiError (400) naming the field, before it reaches
// the scheduler; what is accepted can run (its prompt plus max_tokens fits the context).
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/chat_template.hpp"
#include "models/reference_model.hpp"
#include "models/tokenizer.hpp"
#include "runtime/sampling.hpp"

namespace tori::serve {

// What requests are checked against: the served model.
struct ModelInfo {
  std::string id;                          // the name clients give as "model"
  const models::Tokenizer* tokenizer = nullptr;
  std::optional<models::ChatTemplate> chat;  // none: /v1/chat/completions is refused
  int32_t end_of_turn = -1;                // the chat template's end-of-turn token (-1: none)
  int64_t vocab = 0, context = 0;          // context: positions per sequence (max_seq)
  int64_t default_max_tokens = 256;
};

struct CompletionRequest {
  bool chat = false;
  bool stream = false, include_usage = false;
  models::TokenIds prompt;
  int64_t max_tokens = 16;
  runtime::SamplingOptions sampling;
  std::vector<std::string> stop;     // stop strings
  std::vector<int32_t> stop_tokens;  // the tokenizer's end tokens, and the end of turn for chat
};

// Throws ApiError (400 naming the field; 404 for an unknown model).
CompletionRequest parse_completion(const std::string& body, bool chat, const ModelInfo& model);

}  // namespace tori::serve
