#include "serve/request.hpp"

#include <chrono>

#include "kernels/error.hpp"
#include "models/text_stream.hpp"
#include "serve/api_error.hpp"

namespace tori::serve {

using nlohmann::json;

namespace {

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError(400, param + ": " + message, param); }

// body[key] if present and not null.
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) bad(param, "must be a number, got " + type_name(v));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) bad(param, "must be in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " + v.dump());
  return x;
}

int64_t integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(param, "must be an integer, got " + (v.is_number() ? v.dump() : type_name(v)));
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi))
    bad(param, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) bad(param, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
  return x;
}

bool boolean(const json& v, const std::string& param) {
  if (!v.is_boolean()) bad(param, "must be a boolean, got " + type_name(v));
  return v.get<bool>();
}

std::string text(const json& v, const std::string& param) {
  if (!v.is_string()) bad(param, "must be a string, got " + type_name(v));
  const std::string s = v.get<std::string>();
  if (models::utf8_repaired(s) != s) bad(param, "is not valid UTF-8");
  return s;
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string content(const json& v, const std::string& param) {
  if (v.is_string()) return text(v, param);
  if (!v.is_array()) bad(param, "must be a string or an array of text parts, got " + type_name(v));
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!v[i].is_object() || v[i].value("type", "") != "text" || !v[i].contains("text"))
      bad(p, "only {\"type\": \"text\", \"text\": ...} parts are supported");
    out += text(v[i]["text"], p + ".text");
  }
  return out;
}

// messages: an optional system (or developer) message, then user and assistant turns ending with a
// user turn, rendered with the model's chat template (models/chat_template.hpp).
models::TokenIds chat_prompt(const json& body, const ModelInfo& m) {
  if (!m.chat) throw ApiError(400, "model '" + m.id + "' has no chat template: use /v1/completions", "messages");
  const json* msgs = field(body, "messages");
  if (!msgs) bad("messages", "is required");
  if (!msgs->is_array() || msgs->empty()) bad("messages", "must be a non-empty array of messages");
  std::vector<models::ChatMessage> conversation;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& msg = (*msgs)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) bad(p, "must be an object with role and content, got " + type_name(msg));
    if (!msg.contains("role")) bad(p + ".role", "is required");
    std::string role = text(msg["role"], p + ".role");
    if (role != "system" && role != "developer" && role != "user" && role != "assistant")
      bad(p + ".role", role == "tool" || role == "function"
                           ? "'" + role + "' messages are not supported (this server does not call tools)"
                           : "'" + role + "' (allowed: system, developer, user, assistant)");
    if (role == "developer") role = "system";
    if (role == "system" && i > 0) bad(p, "a system message is allowed only first");
    if (!msg.contains("content") || msg["content"].is_null()) bad(p + ".content", "is required");
    conversation.push_back({role, content(msg["content"], p + ".content")});
  }
  try {
    return models::encode_chat(*m.tokenizer, *m.chat, conversation);
  } catch (const InputError& e) {  // the template's rules (chat_template.hpp): the message named first
    const std::string what = e.what();
    throw ApiError(400, what, what.substr(0, what.find(':')));
  }
}

// prompt: a string, an array holding one string, or an array of token ids.
models::TokenIds completion_prompt(const json& body, const ModelInfo& m) {
  const json* p = field(body, "prompt");
  if (!p) bad("prompt", "is required");
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (p->is_string()) {
    if (!m.tokenizer) bad("prompt", "model '" + m.id + "' has no tokenizer: give token ids");
    return m.tokenizer->encode_prompt(text(*p, "prompt"));
  }
  if (!p->is_array() || p->empty())
    bad("prompt", "must be a string, an array of one string or a non-empty array of token ids");
  models::TokenIds ids;
  for (size_t i = 0; i < p->size(); ++i) {
    if ((*p)[i].is_string()) bad("prompt", "one prompt per request (got an array of " + std::to_string(p->size()) + " strings)");
    ids.push_back(int32_t(integer((*p)[i], "prompt[" + std::to_string(i) + "]", 0, m.vocab - 1)));
  }
  return ids;
}

std::vector<std::string> stop_strings(const json& v) {
  if (v.is_string()) return {text(v, "stop")};
  if (!v.is_array() || v.size() > 4) bad("stop", "must be a string or an array of up to 4 strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(text(v[i], "stop[" + std::to_string(i) + "]"));
    if (out.back().empty()) bad("stop[" + std::to_string(i) + "]", "must not be empty");
  }
  return out;
}

}  // namespace

CompletionRequest parse_completion(const std::string& body_text, bool chat, const ModelInfo& m) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::parse_error& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, "the body must be a JSON object, got " + type_name(body));
  CompletionRequest r;
  r.chat = chat;
  const json* model = field(body, "model");
  if (!model) bad("model", "is required (this server serves '" + m.id + "')");
  if (text(*model, "model") != m.id)
    throw ApiError(404, "The model '" + model->get<std::string>() + "' does not exist (this server serves '" + m.id + "')",
                   "model", "invalid_request_error", "model_not_found");
  if (const json* n = field(body, "n"); n && integer(*n, "n", 1, 1) != 1) bad("n", "must be 1");
  r.prompt = chat ? chat_prompt(body, m) : completion_prompt(body, m);
  const char* prompt_field = chat ? "messages" : "prompt";
  const int64_t len = int64_t(r.prompt.size());
  if (len == 0) bad(prompt_field, "encodes to no tokens");
  if (len >= m.context)
    throw ApiError(400, std::string(prompt_field) + ": the prompt is " + std::to_string(len) +
                            " tokens, the context is " + std::to_string(m.context) + " (room is needed for one new token)",
                   prompt_field, "invalid_request_error", "context_length_exceeded");
  const int64_t room = m.context - len;
  r.max_tokens = std::min(m.default_max_tokens, room);
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (const json* v = field(body, key)) {
      r.max_tokens = integer(*v, key, 1, std::numeric_limits<int64_t>::max());
      if (r.max_tokens > room)
        throw ApiError(400, std::string(key) + ": " + std::to_string(r.max_tokens) + " new tokens after a prompt of " +
                                std::to_string(len) + " need " + std::to_string(len + r.max_tokens) +
                                " positions, more than the context of " + std::to_string(m.context),
                       key, "invalid_request_error", "context_length_exceeded");
    }
  r.sampling.temperature = 1.0;  // the OpenAI default
  if (const json* v = field(body, "temperature")) r.sampling.temperature = number(*v, "temperature", 0, 2);
  if (const json* v = field(body, "top_p")) r.sampling.top_p = number(*v, "top_p", 0, 1);
  if (r.sampling.top_p <= 0) bad("top_p", "must be in (0, 1], got 0");
  if (const json* v = field(body, "top_k")) r.sampling.top_k = integer(*v, "top_k", 0, m.vocab);
  if (const json* v = field(body, "seed"))
    r.sampling.seed = uint64_t(integer(*v, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  else
    r.sampling.seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  if (const json* v = field(body, "stop")) r.stop = stop_strings(*v);
  if (!r.stop.empty() && !m.tokenizer) bad("stop", "model '" + m.id + "' has no tokenizer");
  if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) bad("stream_options", "must be an object");
    if (!r.stream) bad("stream_options", "is only allowed with stream: true");
    if (const json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (m.tokenizer) r.stop_tokens = m.tokenizer->end_ids();
  if (chat && m.end_of_turn >= 0) r.stop_tokens.push_back(m.end_of_turn);
  return r;
}

}  // namespace tori::serve
