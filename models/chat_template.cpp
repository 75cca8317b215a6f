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
  const std::string sys = system.empty() ? default_system_ : system;
  std::string s;
  switch (family_) {
    case ChatFamily::chatml:
      if (!sys.empty()) s += "<|im_start|>system\n" + sys + "<|im_end|>\n";
      return s + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
    case ChatFamily::llama3:
      s = bos;
      if (!sys.empty()) s += "<|start_header_id|>system<|end_header_id|>\n\n" + sys + "<|eot_id|>";
      return s + "<|start_header_id|>user<|end_header_id|>\n\n" + user +
             "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFamily::llama2: {
      std::string content = user;
      if (!sys.empty()) content = (llama2_sys_block_ ? "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" : sys + "\n\n") + user;
      return bos + "[INST] " + content + " [/INST]";
    }
    case ChatFamily::zephyr:
      if (!sys.empty()) s += "<|system|>\n" + sys + eos + "\n";
      return s + "<|user|>\n" + user + eos + "\n<|assistant|>\n";
    case ChatFamily::gemma:  // no system role: the system text opens the first user turn
      return bos + "<start_of_turn>user\n" + (sys.empty() ? "" : sys + "\n\n") + user +
             "<end_of_turn>\n<start_of_turn>model\n";
  }
  return s;
}

std::vector<int32_t> encode_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::string& user,
                                 const std::string& system) {
  const std::string bos = tok.bos_id >= 0 ? tok.decode({tok.bos_id}) : "";
  const std::string eos = tok.eos_id >= 0 ? tok.decode({tok.eos_id}) : "";
  std::vector<int32_t> ids = tok.encode(chat.render(user, system, bos, eos));
  if (tok.add_bos && tok.bos_id >= 0 && (ids.empty() || ids[0] != tok.bos_id)) ids.insert(ids.begin(), tok.bos_id);
  return ids;
}

}  // namespace tori::models
