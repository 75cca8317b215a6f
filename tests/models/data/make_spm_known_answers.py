# Makes spm_tiny.model (a SentencePiece BPE model set up like Llama's tokenizer.model: byte
# fallback, identity normalisation, a dummy prefix space, digits split, <unk>=0 <s>=1 </s>=2, plus
# one user-defined symbol) trained on a fixed text, and spm_known_answers.json (ids for fixed
# strings from the `sentencepiece` Python package), the independent reference for Tori's
# SentencePiece tokenizer. Not needed by the build or the tests. Regenerate:
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install sentencepiece==0.2.3
#   /tmp/v/bin/python make_spm_known_answers.py
import io, json, os

import sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))
text = """The quick brown fox jumps over the lazy dog. A tokenizer splits text into pieces.
Sharded inference runs each layer on a torus of chips; the weights stay where they are.
Prefill processes the whole prompt at once, decode produces one token per step.
Attention reads the key and value cache; multiquery attention shares one head of keys.
In 2022 the paper measured 540 billion parameters on 64 chips with 29 ms per token.
Hello world, hello tokens, hello pieces. The dog and the fox are friends now.
"""
lines = [l for l in text.splitlines() if l] * 4
model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=400,
    byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=True,
    remove_extra_whitespaces=False, split_digits=True, character_coverage=1.0,
    user_defined_symbols=["<|turn|>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    minloglevel=2)
with open(os.path.join(here, "spm_tiny.model"), "wb") as f:
    f.write(model.getvalue())
sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

texts = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "12345 and 540 billion",
    "  two leading spaces,   runs   and trailing  ",
    "tabs\tand\nnewlines\n\nhere",
    "caf\u00e9 na\u00efve \u00fcber",
    "\u65e5\u672c\u8a9e \U0001F600 unseen bytes",
    "<|turn|>user text<|turn|>",
    "zzz qqq xyzzy",
]
answers = [{"text": t, "ids": sp.encode(t)} for t in texts]
for a in answers:
    assert sp.decode(a["ids"]) == a["text"], a["text"]
with open(os.path.join(here, "spm_known_answers.json"), "w") as f:
    head = {"made_by": "sentencepiece " + spm.__version__, "vocab_size": sp.get_piece_size()}
    f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "answers": [\n')  # one answer per line
    f.write(",\n".join(json.dumps(a, ensure_ascii=False) for a in answers) + "\n]}\n")
print(f"{len(answers)} answers, model {len(model.getvalue())} bytes")
