// Chat templates by family: recognised from the markers of real templates (SmolLM2's text is the
// GGUF's tokenizer.chat_template verbatim), rendered as each family's Jinja renders one user turn.
#include <catch2/catch.hpp>

#include "kernels/error.hpp"
#include "models/chat_template.hpp"

using namespace tori::models;
using Catch::Contains;

namespace {
const std::string kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou "
    "are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const std::string kQwen =  // ChatML whose system turn is not a fixed text
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const std::string kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
const std::string kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] | trim + "
    "'\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in loop_messages %}{% if message['role'] == 'user' %}{{ "
    "bos_token + '[INST] ' + content | trim + ' [/INST]' }}{% endif %}{% endfor %}";
const std::string kMistral = "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}";
const std::string kZephyr =
    "{% for message in messages %}\\n{% if message['role'] == 'user' %}\\n{{ '<|user|>\\n' + message['content'] + "
    "eos_token }}\\n{% elif message['role'] == 'assistant' %}\\n{{ '<|assistant|>\\n'  + message['content'] + eos_token "
    "}}\\n{% endif %}{% if loop.last and add_generation_prompt %}\\n{{ '<|assistant|>' }}\\n{% endif %}\\n{% endfor %}";
}  // namespace

TEST_CASE("ChatML: SmolLM2's template and its default system turn", "[chat]") {
  const ChatTemplate t = ChatTemplate::recognise(kSmolLM2, "smollm2.gguf");
  CHECK(t.family() == ChatFamily::chatml);
  CHECK(t.end_of_turn() == "<|im_end|>");
  CHECK(t.default_system() == "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  CHECK(t.render("Hi?", "", "<s>", "</s>") ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n");
  CHECK(t.render("Hi?", "Be terse.", "", "") ==
        "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n");
  const ChatTemplate q = ChatTemplate::recognise(kQwen, "qwen");
  CHECK(q.default_system().empty());
  CHECK(q.render("Hi?", "", "", "") == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("Llama-3, Llama-2, Mistral and Zephyr templates", "[chat]") {
  const ChatTemplate l3 = ChatTemplate::recognise(kLlama3, "l3");
  CHECK(l3.family() == ChatFamily::llama3);
  CHECK(l3.end_of_turn() == "<|eot_id|>");
  CHECK(l3.render("Hi?", "S", "<|begin_of_text|>", "") ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  const ChatTemplate l2 = ChatTemplate::recognise(kLlama2, "l2");
  CHECK(l2.family() == ChatFamily::llama2);
  CHECK(l2.end_of_turn().empty());  // the EOS ends the turn
  CHECK(l2.render("Hi?", "", "<s>", "</s>") == "<s>[INST] Hi? [/INST]");
  CHECK(l2.render("Hi?", "S", "<s>", "</s>") == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi? [/INST]");
  CHECK(ChatTemplate::recognise(kMistral, "m").render("Hi?", "S", "<s>", "</s>") == "<s>[INST] S\n\nHi? [/INST]");
  const ChatTemplate z = ChatTemplate::recognise(kZephyr, "z");
  CHECK(z.family() == ChatFamily::zephyr);
  CHECK(z.render("Hi?", "S", "<s>", "</s>") == "<|system|>\nS</s>\n<|user|>\nHi?</s>\n<|assistant|>\n");
}

// Conversations: each expected text is what the family's Jinja template (SmolLM2's above; Meta's
// Llama-2 and Llama-3, Mistral-7B-Instruct-v0.2, TinyLlama's Zephyr) renders for these messages
// with add_generation_prompt (checked with jinja2 when written).
TEST_CASE("Conversations with earlier assistant turns, each family", "[chat]") {
  const std::vector<ChatMessage> conv{{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  const std::vector<ChatMessage> no_system(conv.begin() + 1, conv.end());
  const ChatTemplate smol = ChatTemplate::recognise(kSmolLM2, "smollm2");
  CHECK(smol.render(conv, "", "") ==
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
        "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
  CHECK(smol.render(no_system, "", "") ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
        "<|im_start|>assistant\n");
  CHECK(ChatTemplate::recognise(kLlama3, "l3").render(conv, "<|begin_of_text|>", "") ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>"
        "\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user"
        "<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(ChatTemplate::recognise(kLlama2, "l2").render(conv, "<s>", "</s>") ==
        "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
  CHECK(ChatTemplate::recognise(kMistral, "m").render(no_system, "<s>", "</s>") == "<s>[INST] U1 [/INST]A1</s>[INST] U2 [/INST]");
  CHECK(ChatTemplate::recognise(kZephyr, "z").render(conv, "<s>", "</s>") ==
        "<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n<|assistant|>\n");
  // What no template renders: the message is named.
  CHECK_THROWS_WITH(smol.render({{"user", "U"}, {"assistant", "A"}}, "", ""), Contains("messages[1]: the last message must be the user's"));
  CHECK_THROWS_WITH(smol.render({{"user", "U"}, {"system", "S"}, {"user", "U"}}, "", ""), Contains("messages[1]: role 'system'"));
  CHECK_THROWS_WITH(smol.render({}, "", ""), Contains("at least one user message"));
  CHECK(smol.render({{"user", "U1"}, {"user", "U2"}}, "", "").find("U1<|im_end|>\n<|im_start|>user\nU2") != std::string::npos);
  CHECK_THROWS_WITH(ChatTemplate::recognise(kLlama2, "l2").render({{"user", "U1"}, {"user", "U2"}}, "<s>", "</s>"),
                    Contains("messages[1]: the llama-2 template needs user and assistant messages to alternate"));
}

TEST_CASE("Gemma's template: <start_of_turn> turns, the system text inside the user turn", "[chat]") {
  // The shape of Gemma 3 -it's template (a model turn is "model", there is no system role).
  const std::string jinja =
      "{{ bos_token }}{%- for message in messages -%}{{ '<start_of_turn>' + role + '\\n' }}"
      "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}{%- endfor -%}"
      "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}";
  const ChatTemplate g = ChatTemplate::recognise(jinja, "g");
  CHECK(g.family() == ChatFamily::gemma);
  CHECK(g.name() == "gemma");
  CHECK(g.end_of_turn() == "<end_of_turn>");
  CHECK(g.render("Hi?", "", "<bos>", "<eos>") == "<bos><start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n");
  CHECK(g.render("Hi?", "S", "<bos>", "<eos>") ==
        "<bos><start_of_turn>user\nS\n\nHi?<end_of_turn>\n<start_of_turn>model\n");
  const std::vector<ChatMessage> conv{{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  CHECK(g.render(conv, "<bos>", "<eos>") ==
        "<bos><start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
        "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n");
}

TEST_CASE("Unknown or missing chat templates are refused", "[chat]") {
  CHECK_THROWS_WITH(ChatTemplate::recognise("{% for m in messages %}<turn>{{ m }}\nmore", "odd.gguf"),
                    Contains("odd.gguf is not one Tori knows (first line: '{% for m in messages %}<turn>{{ m }}'"));
  CHECK_THROWS_AS(ChatTemplate::recognise("", "x"), tori::InputError);
  CHECK_THROWS_WITH(ChatTemplate::recognise("", "x.gguf"), Contains("x.gguf has no chat template"));
}
