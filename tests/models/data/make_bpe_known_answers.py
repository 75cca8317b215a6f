# Makes bpe_tiny_tokenizer.json (a byte-level BPE, GPT-2 pre-tokenisation, trained on a fixed text)
# and bpe_known_answers.json (ids for fixed strings, from Hugging Face `tokenizers`), the
# independent reference for Tori's BpeTokenizer. Not needed by the build or the tests. Regenerate:
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install tokenizers==0.23.3
#   /tmp/v/bin/python tests/models/data/make_bpe_known_answers.py
import json, os
import tokenizers
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

here = os.path.dirname(os.path.abspath(__file__))
text = ("The quick brown fox jumps over the lazy dog. It's 2024, and we'll see 123 foxes!\n"
        "Don't stop: the café serves crème brûlée; naïve résumé.  Tabs\tand\nnewlines\n\n"
        "def f(x):\n    return x * 42  # comment\n") * 20
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator([text], trainer)
tok.add_special_tokens(["<|im_start|>"])
tok.save(os.path.join(here, "bpe_tiny_tokenizer.json"))
strings = ["Hello world", "The quick brown fox.", "It's 2024, we'll see!", "  leading and trailing  ",
           "line one\nline two\n\n", "tabs\tand   spaces", "café crème brûlée naïve", "x * 42 # ok?",
           "<|im_start|>user\nhi<|endoftext|>", "don't STOP'S they're I've I'm you'd",
           "\u00e9t\u00e9 \u00fcber 12345 ab12cd", "emoji \U0001F600 end", ""]
answers = [{"text": s, "ids": tok.encode(s).ids} for s in strings]
json.dump({"made_by": "tokenizers " + tokenizers.__version__, "answers": answers},
          open(os.path.join(here, "bpe_known_answers.json"), "w"), ensure_ascii=False, indent=1)
for a in answers: print(repr(a["text"]), a["ids"])
