#include "models/chat_template.hpp"

#include "kernels/error.hpp"
#include "models/tokenizer.hpp"

namespace tori::models {

namespace {

bool has(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// ChatML's built-in system turn: the text of a literal '<|im_start|>system\n...<|im_end|>' in the
// template, when it is plain text (no quotes, Jinja expressions or concatenation inside).
std::string chatml_default_system(const std::string& jinja) {
  for (const std::string open : {"<|im_start|>system\\n", "<|im_start|>system\n"}) {
    const size_t a = jinja.find(open);
    if (a == std::string::npos) continue;
    const size_t from = a + open.size(), b = jinja.find("<|im_end|>", from);
    if (b == std::string::npos) continue;
    const std::string text = jinja.substr(from, b - from);
    if (text.find_first_of("'\"{}+") != std::string::npos) continue;
    return text;
  }
  return "";
}

}  // namespace

ChatTemplate ChatTemplate::recognise(const std::string& jinja, const std::string& source) {
  ChatTemplate t;
  if (jinja.empty())
    throw InputError("--chat: " + source + " has no chat template (tokenizer.chat_template / tokenizer_config.json "
                     "chat_template); give the prompt without --chat");
  if (has(jinja, "<|im_start|>")) {
    t.family_ = ChatFamily::chatml;
    t.end_of_turn_ = "<|im_end|>";
    t.default_system_ = chatml_default_system(jinja);
  } else if (has(jinja, "<|start_header_id|>")) {
    t.family_ = ChatFamily::llama3;
    t.end_of_turn_ = "<|eot_id|>";
  } else if (has(jinja, "[INST]")) {
    t.family_ = ChatFamily::llama2;
    t.llama2_sys_block_ = has(jinja, "<<SYS>>");
  } else if (has(jinja, "<|user|>") && has(jinja, "<|assistant|>")) {
    t.family_ = ChatFamily::zephyr;
  } else if (has(jinja, "<start_of_turn>")) {
    t.family_ = ChatFamily::gemma;
    t.end_of_turn_ = "<end_of_turn>";
  } else {
    const std::string first = jinja.substr(0, std::min(jinja.find('\n'), size_t(120)));
    throw InputError("--chat: the chat template of " + source + " is not one Tori knows (first line: '" + first +
                     "'; allowed families: ChatML <|im_start|>, Llama-3 <|start_header_id|>, Llama-2 [INST], Zephyr "
                     "<|user|>, Gemma <start_of_turn>)");
  }
  return t;
}

std::string ChatTemplate::name() const {
  switch (family_) {
    case ChatFamily::chatml: return "chatml";
    case ChatFamily::llama3: return "llama-3";
    case ChatFamily::llama2: return "llama-2";
    case ChatFamily::zephyr: return "zephyr";
    case ChatFamily::gemma: return "gemma";
  }
  return "?";
}

std::string ChatTemplate::render(const std::string& user, const std::string& system, const std::string& bos,
                                 const std::string& eos) const {
  std::vector<ChatMessage> m;
  if (!system.empty()) m.push_back({"system", system});
  m.push_back({"user", user});
  return render(m, bos, eos);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const std::string& bos,
                                 const std::string& eos) const {
  auto where = [](size_t i) { return "messages[" + std::to_string(i) + "]"; };
  if (messages.empty()) throw InputError("messages: a conversation needs at least one user message");
  const bool has_system = messages[0].role == "system";
  const std::string sys = has_system ? messages[0].content : default_system_;
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "user" && role != "assistant")
      throw InputError(where(i) + ": role '" + role + "' here (allowed: a system message first, then user and assistant)");
    if (family_ == ChatFamily::llama2 && (role == "user") != ((i - (has_system ? 1 : 0)) % 2 == 0))
      throw InputError(where(i) + ": the " + name() + " template needs user and assistant messages to alternate, "
                       "starting with user");
  }
  if (messages.back().role != "user")
    throw InputError(where(messages.size() - 1) + ": the last message must be the user's (got " + messages.back().role + ")");
  std::string s;
  const size_t first = has_system ? 1 : 0;
  switch (family_) {
    case ChatFamily::chatml:
      if (!sys.empty()) s += "<|im_start|>system\n" + sys + "<|im_end|>\n";
      for (size_t i = first; i < messages.size(); ++i)
        s += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
      return s + "<|im_start|>assistant\n";
    case ChatFamily::llama3:
      s = bos;
      if (!sys.empty()) s += "<|start_header_id|>system<|end_header_id|>\n\n" + sys + "<|eot_id|>";
      for (size_t i = first; i < messages.size(); ++i)
        s += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + messages[i].content + "<|eot_id|>";
      return s + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFamily::llama2:
      if (!llama2_sys_block_) s = bos;  // Mistral: BOS once
      for (size_t i = first; i < messages.size(); ++i) {
        std::string content = messages[i].content;
        if (i == first && !sys.empty()) content = (llama2_sys_block_ ? "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" : sys + "\n\n") + content;
        if (messages[i].role == "user")
          s += (llama2_sys_block_ ? bos : "") + "[INST] " + content + " [/INST]";
        else
          s += (llama2_sys_block_ ? " " + content + " " : content) + eos;
      }
      return s;
    case ChatFamily::zephyr:
      if (!sys.empty()) s += "<|system|>\n" + sys + eos + "\n";
      for (size_t i = first; i < messages.size(); ++i) s += "<|" + messages[i].role + "|>\n" + messages[i].content + eos + "\n";
      return s + "<|assistant|>\n";
    case ChatFamily::gemma:  // no system role: the system text opens the first user turn
      s = bos;
      for (size_t i = first; i < messages.size(); ++i) {
        const bool user = messages[i].role == "user";
        s += std::string("<start_of_turn>") + (user ? "user" : "model") + "\n" +
             (i == first && !sys.empty() ? sys + "\n\n" : "") + messages[i].content + "<end_of_turn>\n";
      }
      return s + "<start_of_turn>model\n";
  }
  return s;
}

std::vector<int32_t> encode_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::string& user,
                                 const std::string& system) {
  std::vector<ChatMessage> m;
  if (!system.empty()) m.push_back({"system", system});
  m.push_back({"user", user});
  return encode_chat(tok, chat, m);
}

std::vector<int32_t> encode_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ChatMessage>& messages) {
  const std::string bos = tok.bos_id >= 0 ? tok.decode({tok.bos_id}) : "";
  const std::string eos = tok.eos_id >= 0 ? tok.decode({tok.eos_id}) : "";
  std::vector<int32_t> ids = tok.encode(chat.render(messages, bos, eos));
  if (tok.add_bos && tok.bos_id >= 0 && (ids.empty() || ids[0] != tok.bos_id)) ids.insert(ids.begin(), tok.bos_id);
  return ids;
}

}  // namespace tori::models
