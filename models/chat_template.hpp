#pragma once
// Chat templates without Jinja: the model's template (GGUF tokenizer.chat_template or
// tokenizer_config.json chat_template) is recognised by the markers it writes, and a conversation
// (an optional system turn, then user and assistant turns ending with a user turn) is rendered the
// way that family's template renders it, ending with the assistant's generation prompt. One user
// turn (with an optional system turn):
//   ChatML   (<|im_start|>, SmolLM2, Qwen)   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n
//   Llama-3  (<|start_header_id|>)           BOS<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
//   Llama-2  ([INST], Mistral)               BOS[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]   (no <<SYS>> in the template: S\n\nU)
//   Zephyr   (<|user|>, TinyLlama-Chat)      <|system|>\nS EOS\n<|user|>\nU EOS\n<|assistant|>\n   (EOS written without spaces)
//   Gemma    (<start_of_turn>, Gemma 2/3 -it) BOS<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n   (no system role)
// Earlier turns are written as the family writes every turn (ChatML, Llama-3, Zephyr: a header with
// the role, the content, the end of turn; Llama-2: each user turn BOS[INST] U [/INST], each
// assistant turn " A EOS", the system block inside the first user turn; Mistral's [INST] template
// without <<SYS>>: BOS once, [INST] U [/INST]A EOS, the system text before the first user turn's;
// Gemma: <start_of_turn>user or model, the content, <end_of_turn>, the system text opening the
// first user turn).
// A ChatML template that writes a fixed system turn when none is given (SmolLM2's "You are a
// helpful AI assistant named SmolLM, ...") keeps doing so: that default is read from the template.
// Any other template is refused with InputError quoting its first line.
#include <cstdint>
#include <string>
#include <vector>

namespace tori::models {

enum class ChatFamily { chatml, llama3, llama2, zephyr, gemma };

struct ChatMessage {
  std::string role;  // "system" (first only), "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  // `source` names where the template came from (for errors).
  static ChatTemplate recognise(const std::string& jinja, const std::string& source);

  // The prompt text of one user turn; `system` empty = the template's default (if any).
  // bos/eos are the tokenizer's BOS/EOS token texts (the templates write them literally).
  std::string render(const std::string& user, const std::string& system, const std::string& bos,
                     const std::string& eos) const;
  // A conversation: an optional system message first, then user and assistant messages, the last
  // a user message (the Llama-2 family also needs them to alternate, as its template does).
  // Throws InputError naming the message (messages[i]) that breaks these rules.
  std::string render(const std::vector<ChatMessage>& messages, const std::string& bos, const std::string& eos) const;
  ChatFamily family() const { return family_; }
  std::string name() const;
  // The text of the token that ends the assistant's turn ("<|im_end|>", "<|eot_id|>"), or empty
  // when it is the tokenizer's EOS.
  const std::string& end_of_turn() const { return end_of_turn_; }
  const std::string& default_system() const { return default_system_; }

 private:
  ChatFamily family_ = ChatFamily::chatml;
  std::string end_of_turn_, default_system_;
  bool llama2_sys_block_ = true;
};

class Tokenizer;

// One user turn's prompt ids: rendered with `chat` and encoded by `tok`, with BOS first where the
// template does not write it but the tokenizer's metadata asks for it (add_bos).
std::vector<int32_t> encode_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::string& user,
                                 const std::string& system);
std::vector<int32_t> encode_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ChatMessage>& messages);

}  // namespace tori::models
